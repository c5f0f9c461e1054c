"""MATLAB-compatible bicubic resizing and the down-sampling (super-resolution) op.

Super-resolution benchmarks make their low-resolution inputs with MATLAB's
``imresize`` (bicubic, a = -0.5, with an anti-aliasing kernel when shrinking).
OpenCV's and PIL's bicubic differ from it by up to a few grey levels, enough
to move PSNR by tenths of a dB, so vlir carries its own: each axis becomes one
dense weight matrix, applied as a matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vlir.degradations.base import Op, ParamRange


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _weights(in_length: int, out_length: int, scale: float) -> np.ndarray:
    """[out_length, in_length] matrix of one axis, as MATLAB's ``contributions``."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    out_coords = np.arange(1, out_length + 1, dtype=np.float64)
    centres = out_coords / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centres - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside
    distance = centres[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Out-of-range taps mirror back into the image (MATLAB's symmetric padding).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), np.float64)
    rows = np.repeat(np.arange(out_length), taps)
    np.add.at(matrix, (rows, columns.ravel()), weights.ravel())
    return matrix


def imresize(
    image: np.ndarray, scale: float | None = None, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Resize [H, W] or [H, W, C] like MATLAB ``imresize(image, scale, 'bicubic')``.

    ``size`` is (height, width); without it the output is ceil(scale * input).
    The result is float32 and unclipped (bicubic overshoots at edges).
    """
    height, width = image.shape[:2]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (math.ceil(height * scale), math.ceil(width * scale))
        scale_h = scale_w = float(scale)
    else:
        scale_h, scale_w = size[0] / height, size[1] / width
    rows = _weights(height, size[0], scale_h).astype(np.float32)
    cols = _weights(width, size[1], scale_w).astype(np.float32)
    flat = image.astype(np.float32, copy=False).reshape(height, width, -1)
    resized = np.einsum("oh,hwc->owc", rows, flat, optimize=True)
    resized = np.einsum("pw,owc->opc", cols, resized, optimize=True)
    return resized.reshape((*size, *image.shape[2:]))


@dataclass(frozen=True)
class DownsampleParams:
    scale: int
    """Down-sampling factor: 2, 3 or 4."""
    resize_back: bool = True
    """Bicubic-upsample back to the input size, so the image keeps its shape."""


class Downsample(Op[DownsampleParams]):
    """Low resolution: MATLAB bicubic down-sampling, optionally resized back."""

    name = "downsample"
    params_type = DownsampleParams
    ranges = (ParamRange("scale", 2, 4, 0, "factor 2, 3 or 4"),)
    order = 50
    family = "resolution"
    strength = "scale"
    verb = "upsample"
    numbers = " by {scale}x"

    def apply(self, image: np.ndarray, params: DownsampleParams) -> np.ndarray:
        clipped = np.clip(image, 0.0, 1.0)
        small = imresize(clipped, 1.0 / params.scale)
        if not params.resize_back:
            return small
        return imresize(small, size=image.shape[:2])
