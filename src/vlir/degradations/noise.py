"""Sensor noise: additive white Gaussian noise and signal-dependent shot noise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from vlir.degradations.base import Op, ParamRange, noise_shape, one_plane, rng_for


@dataclass(frozen=True)
class GaussianNoiseParams:
    sigma: float
    """Standard deviation on the 0-255 scale."""
    seed: int = 0


class GaussianNoise(Op[GaussianNoiseParams]):
    """AWGN as the denoising protocol defines it: added in float, never clipped."""

    name = "noise"
    params_type = GaussianNoiseParams
    ranges = (ParamRange("sigma", 0.0, 75.0, 0, "std on the 0-255 scale"),)
    order = 90
    family = "noise"
    strength = "sigma"
    verb = "denoise"
    numbers = " with sigma {sigma}"
    stochastic = True

    def apply(self, image: np.ndarray, params: GaussianNoiseParams) -> np.ndarray:
        noise = rng_for(params.seed).standard_normal(noise_shape(image), dtype=np.float32)
        return image + noise * np.float32(params.sigma / 255.0)

    def residual(
        self, params: GaussianNoiseParams, stated: Mapping[str, float]
    ) -> GaussianNoiseParams | None:
        # Independent noise variances add, so removing sigma_s of sigma leaves
        # sqrt(sigma^2 - sigma_s^2); the same seed keeps the same noise pattern.
        if "sigma" not in stated or stated["sigma"] >= params.sigma:
            return None
        return replace(params, sigma=math.sqrt(params.sigma**2 - stated["sigma"] ** 2))


@dataclass(frozen=True)
class ShotNoiseParams:
    peak: float
    """Photons collected at white: lower means noisier."""
    seed: int = 0


class ShotNoise(Op[ShotNoiseParams]):
    """Poisson photon noise, whose variance grows with brightness."""

    name = "shot_noise"
    params_type = ShotNoiseParams
    ranges = (ParamRange("peak", 5.0, 300.0, 0, "photons at white; lower is noisier"),)
    order = 85
    family = "noise"
    strength = "peak"
    verb = "remove shot noise"
    numbers = " with peak {peak}"
    stochastic = True

    def apply(self, image: np.ndarray, params: ShotNoiseParams) -> np.ndarray:
        grey = one_plane(image)  # (its photons counted once, for every channel alike)
        photons = np.clip(image[..., :1] if grey else image, 0.0, 1.0) * params.peak
        counts = rng_for(params.seed).poisson(photons).astype(np.float32)
        noisy = counts / np.float32(params.peak)
        return np.repeat(noisy, 3, axis=2) if grey else noisy
