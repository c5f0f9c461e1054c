"""What every degradation op is: typed parameters, a range, a sampler, an apply, a phrase.

SPIRE's idea is that a degradation with *numbers* can be written as a
restoration prompt ("denoise with sigma 25") and read back. So each op knows
its parameter ranges, how to draw them, how to apply them deterministically
(randomness such as a noise realisation comes from a ``seed`` parameter, never
from global state), and the phrase that asks for its removal.

Images are float32 numpy arrays [H, W, 3] in [0, 1], RGB. Ops that model a
sensor or an encoder clip; additive noise does not (the AWGN protocol adds
noise in float and never clips before the network).
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from vlir.errors import VlirError
from vlir.io import is_grey

P = TypeVar("P")

_NUMBER = r"(-?\d+(?:\.\d+)?)"


@dataclass(frozen=True)
class ParamRange:
    """A documented parameter: its range and the precision it is written with.

    ``decimals`` is the precision of prompts and of sampled values, so that a
    sampled record, its prompt and the parsed prompt all hold the same number.
    """

    name: str
    low: float
    high: float
    decimals: int
    doc: str

    def quantise(self, value: float) -> float:
        rounded = round(float(value), self.decimals)
        return int(rounded) if self.decimals == 0 else rounded

    def sample(self, rng: np.random.Generator) -> float:
        return self.quantise(rng.uniform(self.low, self.high))

    def check(self, op: str, value: float) -> None:
        if not (self.low <= value <= self.high):
            raise VlirError(
                f"{op} {self.name}={value:g} is outside its range "
                f"[{self.low:g}, {self.high:g}] ({self.doc})"
            )

    def format(self, value: float) -> str:
        return f"{self.quantise(value):.{self.decimals}f}"


class Op(ABC, Generic[P]):
    """One degradation. Subclasses set the class attributes and implement ``apply``.

    ``order`` places the op in a physically sensible pipeline (scene, then
    optics, then sensor, then encoder); ``family`` keeps a random mixture from
    stacking two ops of one kind (two blurs, two noises); ``strength`` names
    the parameter the degradation predictor regresses.
    """

    name: ClassVar[str]
    params_type: ClassVar[type]
    ranges: ClassVar[tuple[ParamRange, ...]]
    order: ClassVar[int]
    family: ClassVar[str]
    strength: ClassVar[str]
    verb: ClassVar[str]
    """Removal phrase without numbers, e.g. "denoise"."""
    numbers: ClassVar[str]
    """The numbered tail of the phrase, e.g. " with sigma {sigma}"."""
    stochastic: ClassVar[bool] = False
    """Whether the params carry a ``seed`` for the op's random parts."""
    keeps_grey: ClassVar[bool] = True
    """Whether a grey photo (``one_plane``) stays grey: its channels are then made one
    again after ``apply``, since a filter run over three equal channels can round them
    apart (OpenCV's vector paths, by 1e-7) and a photo read as colour loses its grey
    handling downstream (``analyze``'s grey strengths and thresholds)."""

    # -- parameters ----------------------------------------------------------------

    def range_of(self, name: str) -> ParamRange:
        for spec in self.ranges:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def sample(self, rng: np.random.Generator) -> P:
        """Draw parameters uniformly within the documented ranges."""
        values: dict[str, Any] = {spec.name: spec.sample(rng) for spec in self.ranges}
        if self.stochastic:
            values["seed"] = int(rng.integers(0, 2**31 - 1))
        return self.params_type(**values)

    def make(self, given: Mapping[str, Any], rng: np.random.Generator) -> P:
        """Parameters from user-given values; missing ones are sampled from ``rng``."""
        fields = {f.name: f for f in dataclasses.fields(self.params_type)}
        unknown = sorted(set(given) - set(fields))
        if unknown:
            known = ", ".join(fields)
            raise VlirError(f"{self.name} has no parameter {unknown[0]!r} (it takes: {known})")
        drawn = dataclasses.asdict(self.sample(rng))
        values = {}
        for key, field in fields.items():
            raw = given.get(key, drawn[key])
            values[key] = _coerce(self.name, key, raw, field.type)
        params = self.params_type(**values)
        self.validate(params)
        return params

    def validate(self, params: P) -> None:
        for spec in self.ranges:
            spec.check(self.name, getattr(params, spec.name))

    # -- what it does ----------------------------------------------------------------

    @abstractmethod
    def apply(self, image: np.ndarray, params: P) -> np.ndarray:
        """Degrade ``image`` [H, W, 3]; the same params always give the same bytes."""

    def residual(self, params: P, stated: Mapping[str, float]) -> P | None:
        """What is left after removing the stated amount; None when nothing is left.

        Most ops are removed wholly by a prompt that names them. Ops whose
        strength composes (noise variances, Gaussian blur widths add in
        quadrature) override this so "denoise with sigma 15" on sigma-25 noise
        leaves sigma-20 noise: SPIRE's strength control.
        """
        return None

    # -- how it is named ---------------------------------------------------------------

    def describe(self, params: P | Mapping[str, float]) -> str:
        """The restoration-prompt phrase that asks for this op's removal."""
        values = params if isinstance(params, Mapping) else dataclasses.asdict(params)
        return self.verb + self.numbers.format(
            **{name: self.range_of(name).format(values[name]) for name in self.prompt_names}
        )

    @property
    def prompt_names(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.numbers))

    @property
    def pattern(self) -> re.Pattern[str]:
        """Matches this op's phrase, with or without its numbers."""
        tail = re.escape(self.numbers)
        for name in self.prompt_names:
            tail = tail.replace(re.escape("{" + name + "}"), _NUMBER)
        return re.compile(rf"^{re.escape(self.verb)}(?:{tail})?$")


def _coerce(op: str, key: str, raw: Any, annotation: Any) -> Any:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "bool":
            if isinstance(raw, str):
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(raw)
            return bool(raw)
        if kind == "int":
            value = float(raw)
            if value != int(value):
                raise ValueError(raw)
            return int(value)
        return float(raw)
    except (TypeError, ValueError):
        raise VlirError(f"{op} {key}={raw!r} is not a valid {kind or 'number'}") from None


def rng_for(seed: int) -> np.random.Generator:
    """The generator an op uses for its random parts, from its recorded seed."""
    return np.random.default_rng(seed)


def one_plane(image: np.ndarray) -> bool:
    """Whether ``image`` is a grey photo held as [H, W, 3] (R = G = B). Its grain is one
    plane, as its file is: noise drawn per channel and saved grey (luma) came out a third
    weaker than stated (sigma 25 wrote 16.8), so ops draw per-pixel noise once for it."""
    return image.ndim == 3 and image.shape[-1] == 3 and is_grey(image)


def noise_shape(image: np.ndarray) -> tuple[int, ...]:
    """The shape an op draws per-pixel noise in for ``image``: [H, W, 1] for a grey photo
    (``one_plane``; it broadcasts over the channels), else the image's own."""
    return (*image.shape[:-1], 1) if one_plane(image) else image.shape
