"""Optical blur: Gaussian, camera motion along a random trajectory, and defocus.

Each op exposes its ``kernel(params)`` so that deconvolution baselines can use
the true kernel and tests can check that kernels preserve brightness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vlir.degradations.base import Op, ParamRange, rng_for


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True convolution (OpenCV correlates, so flip) with reflected borders."""
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    return cv2.filter2D(
        image.astype(np.float32, copy=False), -1, flipped, borderType=cv2.BORDER_REFLECT_101
    )


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Isotropic Gaussian [K, K], K = 2 ceil(3 sigma) + 1, summing to 1."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    line = np.exp(-0.5 * (x / sigma) ** 2)
    kernel = np.outer(line, line)
    return (kernel / kernel.sum()).astype(np.float32)


@dataclass(frozen=True)
class GaussianBlurParams:
    sigma: float
    """Kernel standard deviation in pixels."""


class GaussianBlur(Op[GaussianBlurParams]):
    name = "blur"
    params_type = GaussianBlurParams
    ranges = (ParamRange("sigma", 0.3, 4.0, 1, "Gaussian std in pixels"),)
    order = 40
    family = "blur"
    strength = "sigma"
    verb = "deblur"
    numbers = " with sigma {sigma}"

    def kernel(self, params: GaussianBlurParams) -> np.ndarray:
        return gaussian_kernel(params.sigma)

    def apply(self, image: np.ndarray, params: GaussianBlurParams) -> np.ndarray:
        # Separable: two 1-D passes cost O(K) instead of O(K^2) per pixel.
        radius = max(1, math.ceil(3.0 * params.sigma))
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        line = np.exp(-0.5 * (x / params.sigma) ** 2)
        line = (line / line.sum()).astype(np.float32)
        return cv2.sepFilter2D(
            image.astype(np.float32, copy=False), -1, line, line, borderType=cv2.BORDER_REFLECT_101
        )

    def residual(
        self, params: GaussianBlurParams, stated: Mapping[str, float]
    ) -> GaussianBlurParams | None:
        # Gaussian blurs compose by adding variances.
        if "sigma" not in stated or stated["sigma"] >= params.sigma:
            return None
        return replace(params, sigma=math.sqrt(params.sigma**2 - stated["sigma"] ** 2))


@dataclass(frozen=True)
class MotionBlurParams:
    length: int
    """Extent of the camera path in pixels."""
    angle: int
    """Main direction of the path in degrees, counter-clockwise from horizontal."""
    seed: int = 0
    """Shapes the random trajectory (its wobble around the main direction)."""


class MotionBlur(Op[MotionBlurParams]):
    """Camera shake: a random-walk trajectory (as in Boracchi & Foi) rasterised to a kernel."""

    name = "motion_blur"
    params_type = MotionBlurParams
    ranges = (
        ParamRange("length", 3, 31, 0, "path extent in pixels"),
        ParamRange("angle", 0, 179, 0, "main direction in degrees"),
    )
    order = 35
    family = "blur"
    strength = "length"
    verb = "remove motion blur"
    numbers = " with length {length} and angle {angle}"
    stochastic = True

    def kernel(self, params: MotionBlurParams) -> np.ndarray:
        rng = rng_for(params.seed)
        steps = 4 * params.length + 8
        # Heading wobbles around the main direction: a damped random walk.
        wobble = np.cumsum(rng.normal(0.0, 0.08, steps))
        heading = math.radians(params.angle) + np.clip(wobble - wobble.mean(), -0.6, 0.6)
        speed = rng.uniform(0.5, 1.5, steps)
        xs = np.cumsum(speed * np.cos(heading))
        ys = -np.cumsum(speed * np.sin(heading))  # image rows grow downwards
        main = np.array(
            [math.cos(math.radians(params.angle)), -math.sin(math.radians(params.angle))]
        )
        extent = np.ptp(xs * main[0] + ys * main[1])
        scale = (params.length - 1) / max(extent, 1e-6)
        xs, ys = xs * scale, ys * scale
        size = params.length + 2 + (params.length + 1) % 2  # odd, with a margin
        centre = size // 2
        xs += centre - xs.mean()
        ys += centre - ys.mean()
        kernel = np.zeros((size, size), np.float64)
        x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
        fx, fy = xs - x0, ys - y0
        for dx, dy, w in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            xi, yi = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
            np.add.at(kernel, (yi, xi), w)
        return (kernel / kernel.sum()).astype(np.float32)

    def apply(self, image: np.ndarray, params: MotionBlurParams) -> np.ndarray:
        return convolve(image, self.kernel(params))


@dataclass(frozen=True)
class DefocusParams:
    radius: float
    """Radius of the lens' circle of confusion in pixels."""


class Defocus(Op[DefocusParams]):
    """Out-of-focus blur: an anti-aliased disk (pillbox) kernel."""

    name = "defocus"
    params_type = DefocusParams
    ranges = (ParamRange("radius", 1.0, 8.0, 1, "disk radius in pixels"),)
    order = 30
    family = "blur"
    strength = "radius"
    verb = "remove defocus blur"
    numbers = " with radius {radius}"

    def kernel(self, params: DefocusParams) -> np.ndarray:
        half = math.ceil(params.radius)
        sub = 8  # supersampling per pixel for a smooth edge
        axis = (np.arange((2 * half + 1) * sub) + 0.5) / sub - (half + 0.5)
        inside = (axis[None, :] ** 2 + axis[:, None] ** 2) <= params.radius**2
        size = 2 * half + 1
        kernel = inside.reshape(size, sub, size, sub).mean(axis=(1, 3))
        return (kernel / kernel.sum()).astype(np.float32)

    def apply(self, image: np.ndarray, params: DefocusParams) -> np.ndarray:
        return convolve(image, self.kernel(params))
