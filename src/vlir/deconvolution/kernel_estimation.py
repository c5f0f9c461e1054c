"""Blind estimation of a blur kernel (camera shake, defocus, Gaussian) from the photo alone.

Cho & Lee's "Fast motion deblurring" (2009), coarse to fine: at each scale, guess the
sharp photo's strong edges (bilateral smoothing, a shock filter, the strongest
gradients kept), fit the kernel that blurs those edges into the photo's own (a
least-squares fit in the Fourier domain), then deconvolve with it for the next guess.
Only gradients enter the fit: a photo's flat regions say nothing about the kernel.

Settings were chosen on 12 BSD400 training photos with the engine's motion blur
(lengths 3-31): Wiener deconvolution with the estimate came within 1 dB of the true
kernel's (28.42 vs 29.40 dB; the input 24.64). Nothing in the fit assumes a path: on the
13 photos of ``benchmarks/deconvolution.py --dataset BSD400 --stride 33 --task OP`` the
estimate's Wiener inverse gave 29.04 dB for the engine's defocus (the true disk's 28.97,
the input 25.16) and 31.08 for its Gaussian blur (the true kernel's 32.36, the input 29.13).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vlir.deconvolution.fourier import centre_of_mass, psf_to_otf
from vlir.tiling import window_starts

LARGEST_KERNEL = 35
"""Kernel side when nothing says how long the blur is: the engine's longest path (31
pixels) with its margin."""
ESTIMATION_SIDE = 512
"""Larger photos are read through the window of this side with the most edges."""
SHARP_SPREAD = 0.85
"""An estimate spread less than this (pixels, root-mean-square about its centre) is the
photo's own softness, not a blur to undo: 20 sharp BSD400 photos read 0.49-0.80 (and,
deconvolved with it, came back 26-40 dB from themselves); of 39 blurred ones (13 photos
with the engine's camera shake, defocus and Gaussian blur) all but a Gaussian of sigma
0.3 (0.60; 65 dB from the sharp photo already) read 0.92 or more."""

IMPLAUSIBLE_SPREAD = 2.5
"""An estimate spread more than this many times what the blur's stated or read size
implies (``blur_spread``) is not that blur but the photo's own pattern: a brick wall's
stripes read as a 7.5-px camera shake where the analyzer read defocus of radius 1.8
(1.27 px; scikit-image's ``brick``), and dividing it out left the photo 15.2 dB from
itself where the restorer, given the same request, moved it 0.9 dB (40.1). On the 101
BSD400 training photos blurred by the engine where the pipeline divides out an estimate
(``benchmarks/deconvolution.py --dataset BSD400 --stride 8`` for each of defocus, camera
shake and Gaussian blur), the estimates spread at most 1.68 times what the reading
implies; as a check, on the 133 such photos of CBSD68's three blur tasks at most 1.88, so
the rule changes none of the benchmark's photos (their rows came out as before)."""

_DX = np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], np.float32)  # forward differences
_DY = np.ascontiguousarray(_DX.T)


def kernel_size_for(length: float | None) -> int:
    """The (odd) kernel side to search for a blur path of about ``length`` pixels: room
    for an estimate a quarter too short, never below the engine's longest path."""
    if length is None:
        return LARGEST_KERNEL
    side = max(LARGEST_KERNEL, round(1.25 * length) + 4)
    return side | 1


def estimate_blur_kernel(
    image: np.ndarray,
    size: int = LARGEST_KERNEL,
    *,
    iterations: int = 6,
    scale_step: float = 1.2,
    kernel_damping: float = 50.0,
    latent_damping: float = 0.01,
    edge_budget: float = 1.0,
    floor: float = 0.1,
) -> np.ndarray:
    """The blur kernel [size, size] that ``image`` ([H, W, 3] or [H, W], float in [0, 1])
    was convolved with: non-negative, summing to one, its centre of mass within half a
    pixel of its middle.

    ``edge_budget`` scales how many of the strongest predicted gradients enter each fit
    (``edge_budget * sqrt(pixels * kernel pixels)``, Cho & Lee's rule); ``floor`` drops
    kernel values below that fraction of its peak (noise of the fit, not the path).
    A sharp, flat or tiny photo gives a point: deconvolving with it keeps the photo.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and at least 3, got {size}")
    grey = image if image.ndim == 2 else cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)
    grey = _window_with_most_edges(grey.astype(np.float32), ESTIMATION_SIDE)
    if float(np.ptp(grey)) < 1e-3:  # a flat photo says nothing about its blur
        return _point(size)
    if min(grey.shape) < size:  # nor does one narrower than the kernel (nothing to fit)
        return _point(size)
    sides = [size]  # the finest scale, then coarser ones down to a 7-pixel kernel
    while (coarser := int(sides[-1] / scale_step) | 1) > 5 and coarser < sides[-1]:
        sides.append(coarser)
    kernel: np.ndarray | None = None
    latent: np.ndarray | None = None
    for side in reversed(sides):  # coarse to fine
        factor = side / size
        blurred = (
            grey
            if factor >= 1
            else cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        )
        if kernel is None or latent is None:
            kernel = _point(side)  # start from "no blur"
            latent = blurred.copy()
        else:
            kernel = _normalised(cv2.resize(kernel, (side, side), interpolation=cv2.INTER_LINEAR))
            latent = cv2.resize(latent, blurred.shape[::-1], interpolation=cv2.INTER_LINEAR)
        # what the fits and deconvolutions at this scale share: the photo's own gradient
        # spectra and the smoothness prior of its padded frame
        blurred_spectra = [np.fft.fft2(g) for g in _gradients(blurred)]
        prior = _smoothness_prior(tuple(n + 2 * side for n in blurred.shape))
        for _ in range(iterations):
            sharp_dx, sharp_dy = _predicted_edges(latent, side, edge_budget)
            kernel = _fit_kernel(sharp_dx, sharp_dy, blurred_spectra, side, kernel_damping, floor)
            latent = _deconvolve_smooth(blurred, kernel, latent_damping, prior)
    assert kernel is not None
    return _point(size) if kernel_spread(kernel) < SHARP_SPREAD else kernel


def blur_spread(op: str, strength: float) -> float:
    """The spread (as ``kernel_spread``) of a blur of this size: a Gaussian of sigma s,
    s * sqrt(2); a disk of radius r, r / sqrt(2); camera shake of length L, at most
    L / sqrt(12), a straight path's (a curled one spreads less)."""
    if op == "blur":
        return strength * math.sqrt(2)
    if op == "defocus":
        return strength / math.sqrt(2)
    if op == "motion_blur":
        return strength / math.sqrt(12)
    raise ValueError(f"{op} is not a blur")


def kernel_spread(kernel: np.ndarray) -> float:
    """Root-mean-square distance (pixels) of the kernel's weight from its centre of mass."""
    rows, cols = np.mgrid[: kernel.shape[0], : kernel.shape[1]]
    centre_y, centre_x = centre_of_mass(kernel)
    squared = (rows - centre_y) ** 2 + (cols - centre_x) ** 2
    return math.sqrt(float((kernel * squared).sum()) / float(kernel.sum()))


def _window_with_most_edges(grey: np.ndarray, side: int) -> np.ndarray:
    """The ``side`` x ``side`` window (on a half-window grid) whose gradients are strongest."""
    height, width = grey.shape
    if height <= side and width <= side:
        return grey
    energy = np.abs(np.diff(grey, axis=1, append=grey[:, -1:])) + np.abs(
        np.diff(grey, axis=0, append=grey[-1:])
    )
    integral = cv2.integral(energy.astype(np.float64))  # [H+1, W+1]
    window_h, window_w = min(side, height), min(side, width)
    best, best_corner = -1.0, (0, 0)
    for y in window_starts(height, window_h, max(1, window_h // 2)):
        for x in window_starts(width, window_w, max(1, window_w // 2)):
            total = (
                integral[y + window_h, x + window_w]
                - integral[y, x + window_w]
                - integral[y + window_h, x]
                + integral[y, x]
            )
            if total > best:
                best, best_corner = total, (y, x)
    y, x = best_corner
    return grey[y : y + window_h, x : x + window_w]


def _point(side: int) -> np.ndarray:
    kernel = np.zeros((side, side), np.float32)
    kernel[side // 2, side // 2] = 1.0
    return kernel


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences (the same stencils the fit's transfer functions use)."""
    dx = cv2.filter2D(image, -1, _DX, borderType=cv2.BORDER_REFLECT)
    dy = cv2.filter2D(image, -1, _DY, borderType=cv2.BORDER_REFLECT)
    return dx, dy


def _shock_filter(image: np.ndarray, step: float = 0.2) -> np.ndarray:
    """One step of Osher-Rudin shock filtering: edges made steps again."""
    dx = cv2.Sobel(image, -1, 1, 0, ksize=3) / 8
    dy = cv2.Sobel(image, -1, 0, 1, ksize=3) / 8
    return image - step * np.sign(cv2.Laplacian(image, -1)) * np.hypot(dx, dy)


def _predicted_edges(latent: np.ndarray, side: int, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """The sharp photo's strongest gradients, everything weaker zeroed."""
    smooth = cv2.bilateralFilter(latent.astype(np.float32), 5, 0.1, 2.0)
    dx, dy = _gradients(_shock_filter(smooth))
    magnitude = np.hypot(dx, dy)
    keep = int(min(magnitude.size // 2, budget * math.sqrt(magnitude.size) * side))
    threshold = np.partition(magnitude.ravel(), -keep)[-keep]
    mask = magnitude >= threshold
    return dx * mask, dy * mask


def _fit_kernel(
    sharp_dx: np.ndarray,
    sharp_dy: np.ndarray,
    blurred_spectra: list[np.ndarray],
    side: int,
    damping: float,
    floor: float,
) -> np.ndarray:
    """argmin_k sum_d ||k * sharp_d - blurred_d||^2 + damping ||k||^2, then made a kernel:
    cropped, non-negative, small values dropped, one connected path, centred.
    ``blurred_spectra``: the FFTs of the photo's x and y gradients, the same for every fit
    at a scale. (Half spectra, ``rfft2``, halve the work but not bit for bit, and 6
    rounds of thresholds carry the difference to 0.03 in a kernel weight.)"""
    sharp = [np.fft.fft2(g) for g in (sharp_dx, sharp_dy)]
    numerator = sum(np.conj(s) * b for s, b in zip(sharp, blurred_spectra, strict=True))
    denominator = sum(np.abs(s) ** 2 for s in sharp) + damping
    full = np.fft.fftshift(np.real(np.fft.ifft2(numerator / denominator)))  # origin at centre
    cy, cx, radius = full.shape[0] // 2, full.shape[1] // 2, side // 2
    kernel = full[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1].astype(np.float32)
    kernel[kernel < floor * max(float(kernel.max()), 1e-12)] = 0.0
    count, labels = cv2.connectedComponents((kernel > 0).astype(np.uint8), connectivity=8)
    if count > 2:  # a camera path is one stroke: keep the component with the most mass
        masses = [kernel[labels == i].sum() for i in range(1, count)]
        kernel[labels != 1 + int(np.argmax(masses))] = 0.0
    if kernel.sum() <= 1e-6:  # nothing fitted (edges too faint): no blur found
        return _point(side)
    return _centred(_normalised(kernel))


def _normalised(kernel: np.ndarray) -> np.ndarray:
    kernel = np.maximum(kernel, 0)
    return kernel / max(float(kernel.sum()), 1e-12)


def _centred(kernel: np.ndarray) -> np.ndarray:
    """The kernel moved by whole pixels so its centre of mass is within half a pixel of its
    middle (a kernel is only known up to a shift; resampling it to centre it exactly would
    blur it, so ``wiener_deconvolve`` takes the remaining fraction as a phase)."""
    middle = kernel.shape[0] // 2
    centre_y, centre_x = centre_of_mass(kernel)
    dy, dx = middle - round(centre_y), middle - round(centre_x)
    moved = np.zeros_like(kernel)
    size = kernel.shape[0]
    moved[max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = kernel[
        max(-dy, 0) : size + min(-dy, 0), max(-dx, 0) : size + min(-dx, 0)
    ]
    if moved.sum() < 0.5 * kernel.sum():  # mostly shifted out of the frame: keep it as it is
        return kernel
    return _normalised(moved)


def _smoothness_prior(shape: tuple[int, int]) -> np.ndarray:
    """|DX|^2 + |DY|^2 [H, W // 2 + 1]: the gradient energy each frequency carries."""
    return np.abs(psf_to_otf(_DX, shape)) ** 2 + np.abs(psf_to_otf(_DY, shape)) ** 2


def _deconvolve_smooth(
    blurred: np.ndarray, kernel: np.ndarray, damping: float, prior: np.ndarray
) -> np.ndarray:
    """The next guess of the sharp photo: deconvolution under a smooth-gradient prior
    (``_smoothness_prior`` of the padded frame; fast and ringing-free enough for predicting
    edges, not for the final result)."""
    margin = kernel.shape[0]
    padded = np.pad(blurred, margin, mode="symmetric")
    shape = padded.shape
    otf = psf_to_otf(kernel, shape)
    spectrum = np.fft.rfft2(padded) * np.conj(otf) / (np.abs(otf) ** 2 + damping * prior)
    restored = np.fft.irfft2(spectrum, s=shape)
    return restored[margin:-margin, margin:-margin].astype(np.float32)
