"""Things between the scene and the lens: rain streaks and haze."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vlir.degradations.base import Op, ParamRange, rng_for


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A thin anti-aliased line [K, K] of peak 1, ``angle`` degrees from vertical."""
    size = length + 2 + (length + 1) % 2
    canvas = np.zeros((size * 4, size * 4), np.float32)
    centre = size * 2
    dx = 0.5 * (length - 1) * math.sin(math.radians(angle)) * 4
    dy = 0.5 * (length - 1) * math.cos(math.radians(angle)) * 4
    cv2.line(
        canvas,
        (round(centre - dx), round(centre - dy)),
        (round(centre + dx), round(centre + dy)),
        1.0,
        thickness=3,
        lineType=cv2.LINE_AA,
    )
    kernel = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / max(float(kernel.max()), 1e-6)


@dataclass(frozen=True)
class RainParams:
    density: float
    """Fraction of pixels where a streak starts."""
    length: int
    """Streak length in pixels."""
    angle: int
    """Streak slant in degrees from vertical."""
    opacity: float
    """How bright the streaks are, 0 (invisible) to 1."""
    seed: int = 0


class Rain(Op[RainParams]):
    """Rain streaks: random drops smeared along a slanted line, screen-blended (as Rain100L)."""

    name = "rain"
    params_type = RainParams
    ranges = (
        ParamRange("density", 0.002, 0.015, 3, "fraction of pixels starting a streak"),
        ParamRange("length", 8, 40, 0, "streak length in pixels"),
        ParamRange("angle", -40, 40, 0, "slant in degrees from vertical"),
        ParamRange("opacity", 0.3, 0.9, 2, "streak brightness"),
    )
    order = 10
    family = "rain"
    strength = "density"
    verb = "derain"
    numbers = " with density {density}"
    stochastic = True

    def streaks(self, shape: tuple[int, int], params: RainParams) -> np.ndarray:
        """The rain layer [H, W] in [0, 1]."""
        rng = rng_for(params.seed)
        height, width = shape
        drops = np.zeros(height * width, np.float32)
        count = rng.binomial(height * width, params.density)
        where = rng.integers(0, height * width, count)
        drops[where] = rng.uniform(0.6, 1.0, count).astype(np.float32)
        layer = cv2.filter2D(
            drops.reshape(height, width),
            -1,
            line_kernel(params.length, params.angle),
            borderType=cv2.BORDER_CONSTANT,
        )
        layer = cv2.GaussianBlur(layer, (3, 3), 0.6)
        return np.clip(layer, 0.0, 1.0)

    def apply(self, image: np.ndarray, params: RainParams) -> np.ndarray:
        rain = (params.opacity * self.streaks(image.shape[:2], params))[..., None]
        base = np.clip(image, 0.0, 1.0)
        return base + rain * (1.0 - base)  # screen blend: streaks brighten, never clip


def synthetic_depth(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth plausible depth map [H, W] in [0.1, 1]: far at the top, with soft relief."""
    height, width = shape
    tilt = rng.uniform(-0.4, 0.4)
    rows = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ramp = rows + tilt * cols
    coarse = rng.uniform(0.0, 1.0, (4, 4)).astype(np.float32)
    relief = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    depth = 0.7 * ramp + 0.3 * relief
    depth = (depth - depth.min()) / max(float(np.ptp(depth)), 1e-6)
    return 0.1 + 0.9 * depth


@dataclass(frozen=True)
class HazeParams:
    beta: float
    """Scattering coefficient: transmission is exp(-beta * depth)."""
    airlight: float
    """Brightness of the atmospheric light."""
    seed: int = 0
    """Shapes the synthetic depth map."""


class Haze(Op[HazeParams]):
    """The atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d)."""

    name = "haze"
    params_type = HazeParams
    ranges = (
        ParamRange("beta", 0.3, 1.8, 2, "scattering coefficient"),
        ParamRange("airlight", 0.6, 1.0, 2, "atmospheric light"),
    )
    order = 5
    family = "haze"
    strength = "beta"
    verb = "dehaze"
    numbers = " with beta {beta}"
    stochastic = True

    def transmission(self, shape: tuple[int, int], params: HazeParams) -> np.ndarray:
        depth = synthetic_depth(shape, rng_for(params.seed))
        return np.exp(-params.beta * depth).astype(np.float32)

    def apply(self, image: np.ndarray, params: HazeParams) -> np.ndarray:
        t = self.transmission(image.shape[:2], params)[..., None]
        return np.clip(image, 0.0, 1.0) * t + np.float32(params.airlight) * (1.0 - t)
