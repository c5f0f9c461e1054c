"""Composing ops: random mixtures for training, and explicit recipes for the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from vlir.degradations.record import DegradationRecord, Step
from vlir.degradations.registry import OPS, get_op
from vlir.errors import VlirError


class DegradationPipeline:
    """Draws 1-N ops (at most one per family) and applies them in physical order.

    Physical order means scene (haze, rain) -> optics (blur) -> resolution ->
    exposure and colour -> sensor noise -> JPEG, so a mixture looks like a
    photo that went through a camera, not an arbitrary stack.
    """

    def __init__(
        self,
        ops: Sequence[str] | None = None,
        *,
        min_ops: int = 1,
        max_ops: int = 3,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        names = list(OPS) if ops is None else [get_op(name).name for name in ops]
        if not names:
            raise VlirError("a degradation pipeline needs at least one op")
        families = {OPS[name].family for name in names}
        if not 1 <= min_ops <= max_ops:
            raise VlirError(f"need 1 <= min_ops <= max_ops, got {min_ops} and {max_ops}")
        self.ops = names
        self.min_ops = min_ops
        self.max_ops = min(max_ops, len(families))
        self.min_ops = min(min_ops, self.max_ops)
        unknown = sorted(set(weights or {}) - set(names))
        if unknown:
            raise VlirError(f"op weights name ops not drawn here: {', '.join(unknown)}")
        raw = np.array([float((weights or {}).get(name, 1.0)) for name in names])
        if (raw < 0).any() or raw.sum() <= 0:
            raise VlirError("op weights must be non-negative and not all zero")
        self.weights = raw / raw.sum()

    def sample(self, rng: np.random.Generator) -> DegradationRecord:
        count = int(rng.integers(self.min_ops, self.max_ops + 1))
        chosen: list[str] = []
        weights = self.weights.copy()
        while len(chosen) < count and weights.sum() > 0:
            name = self.ops[int(rng.choice(len(self.ops), p=weights / weights.sum()))]
            chosen.append(name)
            family = OPS[name].family
            for index, other in enumerate(self.ops):
                if OPS[other].family == family:
                    weights[index] = 0.0
        chosen.sort(key=lambda name: OPS[name].order)
        return DegradationRecord(tuple(Step(name, OPS[name].sample(rng)) for name in chosen))

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, DegradationRecord]:
        record = self.sample(rng)
        return record.apply(image), record


def parse_ops(spec: str, rng: np.random.Generator) -> DegradationRecord:
    """A record from "noise sigma=25, jpeg quality=30", in the order written.

    Parameters left out are drawn from ``rng``, so a partial spec plus a seed is
    still reproducible.
    """
    steps: list[Step] = []
    for chunk in spec.split(","):
        tokens = chunk.split()
        if not tokens:
            continue
        op = get_op(tokens[0])
        given: dict[str, str] = {}
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep or not key or not value:
                raise VlirError(f"in {chunk.strip()!r}: expected key=value, got {token!r}")
            given[key] = value
        steps.append(Step(op.name, op.make(given, rng)))
    if not steps:
        raise VlirError('no degradation ops given (e.g. --ops "noise sigma=25, jpeg quality=30")')
    return DegradationRecord(tuple(steps))
