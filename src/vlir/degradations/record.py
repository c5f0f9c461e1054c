"""DegradationRecord: the single source of truth of a synthetic sample.

A record is the ordered list of ops with every parameter (seeds included).
From it come the degraded image, every *partial target* (the clean image with
only the ops a prompt leaves in), the restoration prompt, and the predictor's
labels. It is JSON-serialisable, so a sample can be stored and rebuilt
byte-for-byte.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlir.degradations.base import one_plane
from vlir.degradations.prompt import PromptItem, RestorationPrompt
from vlir.degradations.registry import get_op
from vlir.errors import VlirError

RECORD_VERSION = 1


@dataclass(frozen=True)
class Step:
    """One op applied with fixed parameters."""

    op: str
    params: Any

    def apply(self, image: np.ndarray) -> np.ndarray:
        op = get_op(self.op)
        degraded = op.apply(image, self.params)
        if op.keeps_grey and one_plane(image):
            return np.repeat(degraded[..., :1], 3, axis=2)
        return degraded

    def describe(self) -> str:
        return get_op(self.op).describe(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **dataclasses.asdict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        values = dict(data)
        name = values.pop("op", None)
        if not isinstance(name, str):
            raise VlirError("degradation record step has no 'op' name")
        op = get_op(name)
        missing = [
            f.name
            for f in dataclasses.fields(op.params_type)
            if f.name not in values and f.default is dataclasses.MISSING
        ]
        if missing:
            raise VlirError(f"{name} step is missing {', '.join(missing)}")
        return cls(name, op.make(values, np.random.default_rng(0)))


@dataclass(frozen=True)
class DegradationRecord:
    steps: tuple[Step, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.op for step in self.steps)

    def apply(self, clean: np.ndarray) -> np.ndarray:
        """The degraded image: every step in order."""
        image = np.asarray(clean, dtype=np.float32)
        for step in self.steps:
            image = step.apply(image)
        return image

    def remaining(self, prompt: RestorationPrompt) -> DegradationRecord:
        """The steps a prompt leaves in, weakened where it states a partial strength."""
        if prompt.blind:
            return DegradationRecord()
        kept: list[Step] = []
        for step in self.steps:
            item = prompt.item_for(step.op)
            if item is None:
                kept.append(step)
                continue
            left = get_op(step.op).residual(step.params, item.stated)
            if left is not None:
                kept.append(Step(step.op, left))
        return DegradationRecord(tuple(kept))

    def partial_target(self, clean: np.ndarray, prompt: RestorationPrompt) -> np.ndarray:
        """What a perfect restorer should output for ``prompt``.

        "denoise" on blur + noise gives the blurred image; the blind prompt gives
        the clean image.
        """
        return self.remaining(prompt).apply(clean)

    def prompt(self) -> RestorationPrompt:
        """The exact SPIRE-style prompt that removes every step, with its numbers."""
        return RestorationPrompt(
            tuple(PromptItem.of(step.op, dataclasses.asdict(step.params)) for step in self.steps)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "steps": [step.to_dict() for step in self.steps],
            "prompt": self.prompt().format(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DegradationRecord:
        if data.get("version", RECORD_VERSION) != RECORD_VERSION:
            raise VlirError(f"degradation record version {data.get('version')} is not supported")
        steps = data.get("steps")
        if not isinstance(steps, list):
            raise VlirError("degradation record has no 'steps' list")
        return cls(tuple(Step.from_dict(step) for step in steps))

    @classmethod
    def from_json(cls, text: str) -> DegradationRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VlirError(f"degradation record is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise VlirError("degradation record must be a JSON object")
        return cls.from_dict(data)
