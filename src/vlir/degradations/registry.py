"""Every op vlir knows, by name, in pipeline order."""

from __future__ import annotations

from vlir.degradations.base import Op
from vlir.degradations.blur import Defocus, GaussianBlur, MotionBlur
from vlir.degradations.jpeg import Jpeg
from vlir.degradations.light import ColorCast, LowLight
from vlir.degradations.noise import GaussianNoise, ShotNoise
from vlir.degradations.resize import Downsample
from vlir.degradations.weather import Haze, Rain
from vlir.errors import VlirError

OPS: dict[str, Op] = {
    op.name: op
    for op in sorted(
        (
            GaussianNoise(),
            ShotNoise(),
            GaussianBlur(),
            MotionBlur(),
            Defocus(),
            Downsample(),
            Jpeg(),
            Rain(),
            Haze(),
            LowLight(),
            ColorCast(),
        ),
        key=lambda op: op.order,
    )
}
"""Name -> op, ordered scene -> optics -> sensor -> encoder."""

OP_NAMES: tuple[str, ...] = tuple(OPS)


def get_op(name: str) -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise VlirError(f"unknown degradation {name!r}; known: {', '.join(OPS)}") from None
