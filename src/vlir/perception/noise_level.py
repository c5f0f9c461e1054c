"""The level of white noise in a colour photo, measured by PCA of its patches.

Perception's learned head reads a noise level to the nearest unit or few (on the 16
held-out BSD400 photos, a mean error of 0.3-0.9 at sigma 3-35, 1.3 at 50, 2.9 at 75),
and the noise expert is sharp about it: two units too many smooth a flat photo by half a
dB (CBSD68's 302008 at sigma 15, read 17).
Chen, Zhu & Heng (ICCV 2015) measure it instead: natural patches span few directions,
white noise adds the same variance to every one, so the smallest eigenvalues of the
patches' covariance are the noise's alone. Which are "the smallest" is the longest tail
whose mean is no more than its median (noise eigenvalues scatter symmetrically; one
image direction among them drags the mean up). Taken over the three channels together,
a colour photo's patches are far from full rank (its channels move together, the noise
does not), and the measure's mean error is 0.03-0.17 (same photos, sigma 1-75, largest
0.42; ``python benchmarks/noise_level.py``). One plane's 5x5 patches are not: a grey
photo's texture fills their smallest directions too (0.5-3 high at sigma 15-50). A grey
photo is measured on its weakly textured patches instead (``grey_noise_sigma``, Liu,
Tanaka & Okutomi, 2013).

Clipping truncates the noise, and with it the variance measured: patches with a value at
exactly 0 or 1 are left out (8-bit files: mean error 0.25 at sigma 25, largest 0.48),
and where most are, as in an 8-bit file of strong noise, the rest are noise cut short
and None is returned; the pipeline then fits the level to the clipped noise against a
first denoised pass (``censored_sigma``). Whether the noise is white or shot noise is
read from how its variance grows with the brightness (``noise_kind``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from scipy.special import log_ndtr
from scipy.stats import gamma

PATCH = 5
"""Patch side: 75 dimensions over three channels (7 measured the same, 2x the cost)."""
MAX_PATCHES = 2**18
"""Patches sampled at most: a larger photo is read on a coarser stride of positions."""
BAND_ROWS = 32
"""Rows of patch positions unfolded at once (bounds memory on a large photo)."""
MIN_PATCHES = 16 * 3 * PATCH * PATCH
"""Unclipped patches needed to trust the covariance (16 per dimension)."""
KIND_PATCHES = 2**16
"""Patches sampled at most for ``noise_kind`` (each half the photo's): a ratio of two
variances needs fewer than the level itself, and it runs beside that measure."""
LEAST_BRIGHTNESS_RATIO = 1.1
"""``noise_kind``: brighter and darker halves closer than this in mean brightness cannot
tell shot noise from white (its variance would differ by under 10%)."""
MIN_UNCLIPPED = 0.25
"""Share of the sampled patches that must be unclipped: with fewer, what is left is noise
cut short near 0 and 1 (an 8-bit file of sigma 35 reads 0.9 low at a fifth unclipped)."""


class PatchCovariance(NamedTuple):
    covariance: torch.Tensor
    """[C*p*p, C*p*p] float64."""
    count: int
    """Patches it was taken over."""
    sampled: int
    """Patches sampled (in the brightness range asked for), clipped ones too."""
    brightness: float
    """The mean value of the patches it was taken over (0 where none)."""


def patch_covariance(
    image: torch.Tensor,
    patch: int = PATCH,
    brightness: tuple[float, float] = (0.0, 2.0),
    most: int | None = None,
) -> PatchCovariance:
    """image [C, H, W] -> the covariance of its p x p patches with no value clipped
    (exactly 0 or 1) and a mean in [``brightness``), at a stride that keeps the count of
    all patches under ``most`` (default ``MAX_PATCHES``)."""
    low, high = brightness
    channels, height, width = image.shape
    positions = (height - patch + 1) * (width - patch + 1)
    most = MAX_PATCHES if most is None else most
    stride = max(1, math.ceil(math.sqrt(positions / most)))
    dims = channels * patch * patch
    total = torch.zeros(dims, dtype=torch.float64)
    products = torch.zeros(dims, dims, dtype=torch.float64)
    count = sampled = 0
    band = BAND_ROWS * stride  # rows of positions per band
    for top in range(0, height - patch + 1, band):
        rows = image[:, top : min(height, top + band + patch - 1)].double()[None]
        columns = F.unfold(rows, patch, stride=stride)[0]  # [dims, positions in the band]
        means = columns.mean(dim=0)
        columns = columns[:, (means >= low) & (means < high)]
        sampled += columns.shape[1]
        columns = columns[:, ((columns != 0) & (columns != 1)).all(dim=0)]
        total += columns.sum(dim=1)
        products += columns @ columns.T
        count += columns.shape[1]
    if count == 0:
        return PatchCovariance(products, 0, sampled, 0.0)
    mean = total / count
    covariance = products / count - torch.outer(mean, mean)
    return PatchCovariance(covariance, count, sampled, float(mean.mean()))


def noise_eigenvalue(eigenvalues: np.ndarray) -> float:
    """Eigenvalues (any order) -> the noise variance: the mean of the longest tail of the
    smallest whose mean is at most its median."""
    ascending = np.sort(np.clip(eigenvalues, 0.0, None))
    for kept in range(len(ascending), 0, -1):
        tail = ascending[:kept]
        if tail.mean() <= np.median(tail):
            return float(tail.mean())
    return float(ascending[0])


def white_noise_sigma(image: torch.Tensor) -> float | None:
    """image [3, H, W] in [0, 1] (float, as loaded) -> the white noise's sigma on the 0-255
    scale; None where it cannot be trusted: too few patches free of clipped values
    (``MIN_PATCHES``, ``MIN_UNCLIPPED``). A grey photo (three equal planes) is measured on
    one (``grey_noise_sigma``)."""
    image = image.detach().float().cpu()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image, got {tuple(image.shape)}")
    if torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]):
        return grey_noise_sigma(image[0])
    variance = _noise_variance(patch_covariance(image))
    return None if variance is None else math.sqrt(variance) * 255.0


def _noise_variance(patches: PatchCovariance) -> float | None:
    """The noise variance (0-1 scale) in ``patches``; None where too few are unclipped."""
    if patches.count < max(MIN_PATCHES, MIN_UNCLIPPED * patches.sampled):
        return None
    return noise_eigenvalue(torch.linalg.eigvalsh(patches.covariance).numpy())


def noise_kind(image: torch.Tensor) -> str | None:
    """image [3, H, W] in [0, 1] -> "shot_noise" where the noise's variance grows with the
    brightness as shot noise's does (in proportion), "noise" (white) where it does not;
    None where it cannot be told (grey, clipped, or too few patches on either side).

    The patches darker and brighter than the photo's median are measured apart: shot
    noise's variance is the brightness over the peak, so the log of the brighter half's
    variance over the darker's is the log of their brightness ratio; white noise's is 0.
    Over half the way to the shot noise's is shot noise. On CBSD68's 3096 (mostly sky,
    read as shot noise at sigma 15) it is 0.02 where shot noise would give 0.26, and
    shot noise of peak 30 and 300 gives 0.23 and 0.29. A photo whose halves differ by
    less than ``LEAST_BRIGHTNESS_RATIO`` is called white: there the two are one noise."""
    image = image.detach().float().cpu()
    if torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]):
        return None
    median = float(image.mean(dim=0).median())
    dark = patch_covariance(image, brightness=(0.0, median), most=KIND_PATCHES)
    bright = patch_covariance(image, brightness=(median, 2.0), most=KIND_PATCHES)
    dark_variance, bright_variance = _noise_variance(dark), _noise_variance(bright)
    if not dark_variance or not bright_variance or not dark.brightness:
        return None
    shot = math.log(bright.brightness / dark.brightness)
    if shot < math.log(LEAST_BRIGHTNESS_RATIO):
        return "noise"
    observed = math.log(bright_variance / dark_variance)
    return "shot_noise" if observed > shot / 2 else "noise"


GREY_PATCH = 7
"""Patch side on one plane (49 dimensions; 5 read a little worse: a mean error of
0.30-0.36 against 0.25-0.31 at sigma 5-25 on 16 BSD400 training photos)."""
GREY_PATCHES = 2**17
"""Patches sampled at most on one plane (kept in memory: 25 MB)."""
WEAK_TEXTURE_CONFIDENCE = 0.99
"""A patch is weakly textured where its gradients' energy is under what noise alone
would give it this often (Liu, Tanaka & Okutomi's choice)."""
WEAK_TEXTURE_ROUNDS = 10
"""Rounds of selecting patches and measuring again, at most (it settles in 3-5)."""


def _plane_patches(plane: torch.Tensor, patch: int) -> tuple[torch.Tensor, int]:
    """plane [H, W] -> (its unclipped p x p patches [p*p, N] float64, at a stride that keeps
    all of them under ``GREY_PATCHES``; how many were sampled, clipped ones too)."""
    height, width = plane.shape
    positions = (height - patch + 1) * (width - patch + 1)
    stride = max(1, math.ceil(math.sqrt(positions / GREY_PATCHES)))
    columns = F.unfold(plane.double()[None, None], patch, stride=stride)[0]
    sampled = columns.shape[1]
    return columns[:, ((columns != 0) & (columns != 1)).all(dim=0)], sampled


def grey_noise_sigma(plane: torch.Tensor, patch: int = GREY_PATCH) -> float | None:
    """plane [H, W] in [0, 1] -> the white noise's sigma (0-255) measured on its weakly
    textured patches; None where too few patches are unclipped (as ``white_noise_sigma``).

    A patch's gradient energy (its squared differences across and down) is, for noise
    alone, sigma^2 times about a Gamma of shape p^2 / 2 with the mean 4 p (p - 1): the
    patches under that Gamma's 99th centile at the current sigma are textured no more
    than noise would make them, and their covariance's smallest eigenvalues
    (``noise_eigenvalue``) give the next sigma; from all patches, a few rounds settle it.
    On 16 BSD400 training photos made grey (float): a mean error of 0.13-0.28 at sigma
    3-35 and 0.41 / 0.51 at 50 / 75, where all patches read 3.2 / 1.3 / 0.5 high at
    sigma 5 / 15 / 25; a clean photo reads 0.35 (all patches: 6.3). In 8 bits as at
    8-bit colour: 0.40 at 25, 0.65 at 35 (0.6 low), and most photos declined at 50."""
    columns, sampled = _plane_patches(plane.detach().float().cpu(), patch)
    dims = patch * patch
    if columns.shape[1] < max(16 * dims, MIN_UNCLIPPED * sampled):
        return None
    square = columns.reshape(patch, patch, -1)
    texture = (square[:, 1:] - square[:, :-1]).pow(2).sum(dim=(0, 1))
    texture += (square[1:] - square[:-1]).pow(2).sum(dim=(0, 1))
    mean_texture = 4 * patch * (patch - 1)  # per unit of noise variance
    centile = gamma.ppf(WEAK_TEXTURE_CONFIDENCE, a=dims / 2, scale=2 * mean_texture / dims)

    def variance_of(selected: torch.Tensor) -> float:
        return noise_eigenvalue(torch.linalg.eigvalsh(torch.cov(selected)).numpy())

    variance = variance_of(columns)
    for _ in range(WEAK_TEXTURE_ROUNDS):
        weak = texture < variance * centile
        if int(weak.sum()) < 4 * dims:  # texture everywhere: the last reading stands
            break
        again = variance_of(columns[:, weak])
        if again == variance:
            break
        variance = again
    return math.sqrt(variance) * 255.0


CENSORED_STEP = 4
"""``censored_sigma`` reads every 4th row and column (a 481x321 photo: 29k values)."""


def clipped_share(image: torch.Tensor) -> float:
    """The share of values exactly 0 or 1: noise cut short where the photo's file ends."""
    return float(((image == 0) | (image == 1)).float().mean())


def censored_sigma(noisy: torch.Tensor, denoised: torch.Tensor) -> float:
    """noisy, denoised [C, H, W] in [0, 1] -> the sigma (0-255) of white noise that,
    added to ``denoised`` and clipped to [0, 1], best explains ``noisy``: a censored
    Gaussian's likelihood (Tobit), where a 0 or 1 says only that the noise reached
    past it. Strong noise in an 8-bit file is cut short at 0 and 1, which the PCA measure
    cannot read (``white_noise_sigma`` gives None) and perception reads low (65 for 75).
    Fitted against the expert's output at perception's reading, on 8 held-out BSD400
    photos clipped and rounded to 8 bits it read 72.7 for 75 (perception 65.1), 48.4
    for 50 (46.8), 33.7 for 35 (33.4); the expert at the fit gave 26.25 / 28.12 / 29.74
    dB where at the reading 25.16 / 27.90 / 29.69 and at the true sigma 26.24 / 28.13 /
    29.78. Unclipped it reads about 5% low (the expert's output keeps a little of the
    noise), so it is for what the PCA measure declines."""
    observed = noisy[:, ::CENSORED_STEP, ::CENSORED_STEP].double().flatten().numpy()
    mean = denoised[:, ::CENSORED_STEP, ::CENSORED_STEP].double().flatten().numpy()
    low, high = observed <= 0.0, observed >= 1.0
    inside = ~(low | high)

    def negative_log_likelihood(sigma: float) -> float:
        scale = sigma / 255.0
        residual = (observed[inside] - mean[inside]) / scale
        return float(
            0.5 * (residual**2).sum()
            + inside.sum() * math.log(scale)
            - log_ndtr(-mean[low] / scale).sum()  # reached below 0
            - log_ndtr((mean[high] - 1.0) / scale).sum()  # reached above 1
        )

    fit = minimize_scalar(negative_log_likelihood, bounds=(0.5, 150.0), method="bounded")
    return float(fit.x)
