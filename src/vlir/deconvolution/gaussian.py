"""A Gaussian blur's width, from two readings of it, and the kernel it makes.

A Gaussian blur is one number. On the 16 held-out BSD400 photos with the engine's
Gaussian blur, the Wiener inverse of the true Gaussian beat that of the free-form
estimate (``estimate_blur_kernel``) by 0.2-2.2 dB (29.50 against 27.46), so the
number is worth reading. Two readings of it err differently: the analyzer's strength
was within 0.2 of the truth on 13 of the 15 photos it read as blurred (0.3 off on
two), but can be far too wide (a CBSD68 sigma 1.7 read as 2.5), and a Gaussian fitted
to the free-form estimate is steadily narrower than the truth (``FIT_NARROWING``).
Too wide a Gaussian rings and loses more than too narrow a one leaves (that CBSD68
photo: 33.8 dB at the true width, 29.4 at the reading), so the pipeline takes the
narrower of the two: 28.07 dB on those 16 photos, none worse than the estimate's by
more than 0.2 (``benchmarks/deconvolution.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from vlir.deconvolution.kernel_estimation import kernel_spread
from vlir.degradations.blur import gaussian_kernel

FIT_NARROWING = 0.9
"""How much narrower the Gaussian fitted to the free-form estimate reads than the true
one: 0.85-1.0 of it (median 0.90) on the 16 held-out BSD400 photos with the engine's
Gaussian blur, sigma 0.9-3.6 (measured by script; of 0.8-1.0 it also gave the rule its
best PSNR there, which ``benchmarks/deconvolution.py --task blur --dataset BSD400
--stride 25`` reports); fits are divided by it before they are compared with readings."""
POINT_SIGMA = 0.2
"""A width below this is no blur: such a Gaussian leaves its neighbours under 1e-5 of a
pixel's weight, so its kernel is a point (the photo is kept). The engine blurs from 0.3."""


def gaussian_width(kernel: np.ndarray) -> float:
    """The sigma (pixels) of the isotropic Gaussian, sampled on the kernel's grid and
    centred on its middle, closest to ``kernel`` in least squares."""
    total = float(kernel.sum())
    if kernel.ndim != 2 or not total > 0:
        raise ValueError("a blur kernel is a 2-D array of non-negative weights summing above 0")
    rows = np.arange(kernel.shape[0], dtype=np.float64) - kernel.shape[0] // 2
    cols = np.arange(kernel.shape[1], dtype=np.float64) - kernel.shape[1] // 2
    squared = rows[:, None] ** 2 + cols[None, :] ** 2  # [H, W] from the middle
    target = kernel.astype(np.float64) / total

    def misfit(sigma: float) -> float:
        gaussian = np.exp(-0.5 * squared / sigma**2)
        return float(((gaussian / gaussian.sum() - target) ** 2).sum())

    # Far wider than the kernel the misfit is flat (every Gaussian ~0 on the grid), where a
    # bounded search could settle; a Gaussian's spread is sigma * sqrt(2), so stay near it.
    widest = min(max(kernel.shape) / 2, 2 * kernel_spread(kernel) + 1)
    fit = minimize_scalar(misfit, bounds=(POINT_SIGMA / 2, widest), method="bounded")
    return float(fit.x)


def narrowest_gaussian(read: float, estimate: np.ndarray) -> float:
    """The width to deconvolve: the analyzer's reading, or the estimate's fitted width
    (made up for ``FIT_NARROWING``) where that is narrower."""
    return min(read, gaussian_width(estimate) / FIT_NARROWING)


def gaussian_psf(sigma: float) -> np.ndarray:
    """The engine's own Gaussian kernel (``vlir.degradations.blur``); a point under
    ``POINT_SIGMA``."""
    if sigma < POINT_SIGMA:
        return np.ones((1, 1), np.float32)
    return gaussian_kernel(sigma)
