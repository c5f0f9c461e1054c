"""Shot noise made white for the noise expert: the Anscombe transform and its inverse.

Poisson (shot) noise grows with brightness; the noise expert knows one level for the
whole photo. Anscombe's square root, 2 sqrt(counts + 3/8), turns Poisson counts into
values of unit variance whatever their mean, so the expert denoises the transformed photo
at one sigma and the transform is undone. The plain algebraic inverse is biased at low
counts (the square root of a mean is not the mean of a square root); Makitalo & Foi's
closed form of the exact unbiased inverse (IEEE TIP 2011) is used instead. On the 16
held-out BSD400 photos this takes shot noise 1.2-1.6 dB further than the restorer at
peaks 10-300 (``python benchmarks/denoiser.py --noise shot``).

Values live in [0, 1] as the engine's ``shot_noise`` op leaves them (counts / peak);
``peak`` is the photon count at white.
"""

from __future__ import annotations

import math

import torch

FLOOR = 2.0 * math.sqrt(3.0 / 8.0)
"""The transform of zero counts: the low end of the transformed range."""


def transformed_range(peak: float) -> float:
    """The span of the transform from black to white, FLOOR to 2 sqrt(peak + 3/8)."""
    return 2.0 * math.sqrt(peak + 3.0 / 8.0) - FLOOR


def stabilised_sigma(peak: float) -> float:
    """The noise's sigma (0-255 scale) in the transformed photo brought back to [0, 1]:
    unit variance over the transformed range (peak 5: 75, the expert's limit; 300: 7.6)."""
    return 255.0 / transformed_range(peak)


def anscombe(image: torch.Tensor, peak: float) -> torch.Tensor:
    """Values counts / peak -> the transform, rescaled so black is 0 and white 1."""
    counts = (image * peak).clamp_min(0)
    return (2.0 * torch.sqrt(counts + 3.0 / 8.0) - FLOOR) / transformed_range(peak)


def inverse_anscombe(transformed: torch.Tensor, peak: float) -> torch.Tensor:
    """The exact unbiased inverse (closed form) of a denoised ``anscombe``: the expected
    counts whose transform's mean it is, / peak. Zero at and below the transform of 0."""
    d = (transformed * transformed_range(peak) + FLOOR).clamp_min(FLOOR)
    root = math.sqrt(1.5)
    counts = 0.25 * d**2 + 0.25 * root / d - 1.375 / d**2 + 0.625 * root / d**3 - 0.125
    return counts.clamp_min(0) / peak


def measured_peak(guess: float, sigma: float) -> float:
    """The peak that explains white noise of ``sigma`` (0-255 scale, measured) left in a
    photo transformed at the ``guess``: to first order the transform's variance is
    guess / peak of its unit, so one measure corrects the guess (within 1-2% at peaks
    10-100 from perception's reads, 8 held-out BSD400 photos)."""
    return guess * (stabilised_sigma(guess) / sigma) ** 2
