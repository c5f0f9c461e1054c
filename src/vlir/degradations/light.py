"""Exposure and colour: low light with its sensor noise, and a white-balance cast."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlir.degradations.base import Op, ParamRange, noise_shape, rng_for


@dataclass(frozen=True)
class LowLightParams:
    exposure: float
    """Fraction of the light the sensor received (1 = well exposed)."""
    gamma: float
    """Tone curve exponent: above 1 crushes shadows further."""
    noise: float
    """Read-noise std on the 0-255 scale; shot noise grows with it."""
    seed: int = 0


class LowLight(Op[LowLightParams]):
    """An under-exposed capture: scaled, gamma-darkened, with the noise dark frames carry."""

    name = "low_light"
    params_type = LowLightParams
    ranges = (
        ParamRange("exposure", 0.05, 0.5, 2, "fraction of the light received"),
        ParamRange("gamma", 1.0, 2.5, 1, "tone curve exponent"),
        ParamRange("noise", 0.0, 8.0, 1, "read-noise std on 0-255"),
    )
    order = 60
    family = "light"
    strength = "exposure"
    verb = "brighten"
    numbers = " with exposure {exposure} and gamma {gamma}"
    stochastic = True

    def apply(self, image: np.ndarray, params: LowLightParams) -> np.ndarray:
        dark = np.float32(params.exposure) * np.clip(image, 0.0, 1.0) ** np.float32(params.gamma)
        read = params.noise / 255.0
        # Heteroscedastic sensor noise: variance = shot term (grows with signal) + read term.
        std = np.sqrt(4.0 * read**2 * dark / max(params.exposure, 1e-6) + read**2)
        noise = rng_for(params.seed).standard_normal(noise_shape(image), dtype=np.float32)
        return np.clip(dark + noise * std.astype(np.float32), 0.0, 1.0)


@dataclass(frozen=True)
class ColorCastParams:
    temperature: float
    """Negative: blue (cold) cast; positive: orange (warm) cast."""
    tint: float
    """Negative: magenta cast; positive: green cast."""


class ColorCast(Op[ColorCastParams]):
    """A wrong white balance: per-channel gains that keep mean brightness."""

    name = "color_cast"
    keeps_grey = False  # a tinted grey photo is a colour one (sepia, cyanotype)
    params_type = ColorCastParams
    ranges = (
        ParamRange("temperature", -1.0, 1.0, 2, "blue (-) to orange (+)"),
        ParamRange("tint", -0.5, 0.5, 2, "magenta (-) to green (+)"),
    )
    order = 70
    family = "color"
    strength = "temperature"
    verb = "correct the color cast"
    numbers = " with temperature {temperature} and tint {tint}"

    def gains(self, params: ColorCastParams) -> np.ndarray:
        gains = np.array(
            [
                1.0 + 0.35 * params.temperature,
                1.0 + 0.25 * params.tint,
                1.0 - 0.35 * params.temperature,
            ],
            np.float64,
        )
        luma = np.array([0.299, 0.587, 0.114]) @ gains
        return (gains / luma).astype(np.float32)

    def apply(self, image: np.ndarray, params: ColorCastParams) -> np.ndarray:
        return np.clip(np.clip(image, 0.0, 1.0) * self.gains(params), 0.0, 1.0)
