"""JPEG compression with PIL's standard quantisation tables (the field's protocol)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vlir.degradations.base import Op, ParamRange, one_plane


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode [H, W, 3] (or [H, W]) at ``quality`` with 4:2:0 chroma, decode to float."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class JpegParams:
    quality: int
    """Encoder quality 5-95: lower means stronger blocking and ringing."""


class Jpeg(Op[JpegParams]):
    name = "jpeg"
    params_type = JpegParams
    ranges = (ParamRange("quality", 5, 95, 0, "JPEG quality; lower is worse"),)
    order = 100
    family = "compression"
    strength = "quality"
    verb = "remove jpeg artifacts"
    numbers = " with quality {quality}"

    def apply(self, image: np.ndarray, params: JpegParams) -> np.ndarray:
        if one_plane(image):  # a grey photo is saved as a one-channel JPEG (luma table only)
            return np.repeat(jpeg_roundtrip(image[..., 0], params.quality)[..., None], 3, axis=2)
        return jpeg_roundtrip(image, params.quality)
