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
0.42; ``python benchmarks/noise_level.py``); one plane's 5x5 patches are not (0.5-3
high), so grey photos are left to perception.

Clipping truncates the noise, and with it the variance measured: patches with a value at
exactly 0 or 1 are left out (8-bit files: mean error 0.25 at sigma 25, largest 0.48),
and where most are, as in an 8-bit file of strong noise, the rest are noise cut short
and None is returned (perception, trained on clipped noise, reads it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 5
"""Patch side: 75 dimensions over three channels (7 measured the same, 2x the cost)."""
MAX_PATCHES = 2**18
"""Patches sampled at most: a larger photo is read on a coarser stride of positions."""
BAND_ROWS = 32
"""Rows of patch positions unfolded at once (bounds memory on a large photo)."""
MIN_PATCHES = 16 * 3 * PATCH * PATCH
"""Unclipped patches needed to trust the covariance (16 per dimension)."""
MIN_UNCLIPPED = 0.25
"""Share of the sampled patches that must be unclipped: with fewer, what is left is noise
cut short near 0 and 1 (an 8-bit file of sigma 35 reads 0.9 low at a fifth unclipped)."""


def patch_covariance(image: torch.Tensor, patch: int = PATCH) -> tuple[torch.Tensor, int, int]:
    """image [C, H, W] -> the covariance [C*p*p, C*p*p] (float64) of its p x p patches
    with no value clipped (exactly 0 or 1), at a stride that keeps their count under
    ``MAX_PATCHES``; how many patches that was, and how many were sampled."""
    channels, height, width = image.shape
    positions = (height - patch + 1) * (width - patch + 1)
    stride = max(1, math.ceil(math.sqrt(positions / MAX_PATCHES)))
    dims = channels * patch * patch
    total = torch.zeros(dims, dtype=torch.float64)
    products = torch.zeros(dims, dims, dtype=torch.float64)
    count = sampled = 0
    band = BAND_ROWS * stride  # rows of positions per band
    for top in range(0, height - patch + 1, band):
        rows = image[:, top : min(height, top + band + patch - 1)].double()[None]
        columns = F.unfold(rows, patch, stride=stride)[0]  # [dims, positions in the band]
        sampled += columns.shape[1]
        columns = columns[:, ((columns != 0) & (columns != 1)).all(dim=0)]
        total += columns.sum(dim=1)
        products += columns @ columns.T
        count += columns.shape[1]
    if count == 0:
        return products, 0, sampled
    mean = total / count
    return products / count - torch.outer(mean, mean), count, sampled


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
    scale; None where it cannot be trusted: a grey photo (three equal planes), or too few
    patches free of clipped values (``MIN_PATCHES``, ``MIN_UNCLIPPED``)."""
    image = image.detach().float().cpu()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image, got {tuple(image.shape)}")
    if torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]):
        return None
    covariance, count, sampled = patch_covariance(image)
    if count < max(MIN_PATCHES, MIN_UNCLIPPED * sampled):
        return None
    eigenvalues = torch.linalg.eigvalsh(covariance).numpy()
    return math.sqrt(noise_eigenvalue(eigenvalues)) * 255.0
