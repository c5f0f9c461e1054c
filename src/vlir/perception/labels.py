"""Predictor targets from a DegradationRecord, and predictions back into words.

Each op has a presence bit and a strength: its ``strength`` parameter mapped
linearly from its documented range to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlir.degradations import DegradationRecord, PromptItem, RestorationPrompt, get_op


def record_labels(record: DegradationRecord, ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(presence [N] in {0, 1}, strength [N] in [0, 1], 0 where absent)."""
    presence = np.zeros(len(ops), np.float32)
    strength = np.zeros(len(ops), np.float32)
    index = {name: i for i, name in enumerate(ops)}
    for step in record.steps:
        if step.op not in index:
            continue
        op = get_op(step.op)
        spec = op.range_of(op.strength)
        value = float(getattr(step.params, op.strength))
        presence[index[step.op]] = 1.0
        strength[index[step.op]] = (value - spec.low) / (spec.high - spec.low)
    return presence, strength


def strength_value(op_name: str, normalised: float) -> float:
    """A [0, 1] strength back on the op's own scale, at prompt precision."""
    op = get_op(op_name)
    spec = op.range_of(op.strength)
    return spec.quantise(spec.low + float(np.clip(normalised, 0, 1)) * (spec.high - spec.low))


GreyMap = list[list[float]]
"""[reads, truths]: knots of a monotone map of normalised strengths, reads increasing
(``vlir.perception.grey_strength``)."""


def grey_reading(maps: dict[str, GreyMap], ops: Sequence[str], strength: np.ndarray) -> np.ndarray:
    """[N] normalised strengths the tower read on a grey photo -> [N] on the engine's scale
    (``PerceptionConfig.grey_strength``; ops without a map as read)."""
    mapped = np.array(strength, dtype=np.float64)
    for i, name in enumerate(ops):
        if name in maps:
            reads, truths = maps[name]
            mapped[i] = np.interp(mapped[i], reads, truths)
    return mapped


def combination_text(names: Sequence[str]) -> str:
    """The numberless wording of an op combination ("deblur; denoise"), in pipeline order."""
    ordered = sorted(names, key=lambda name: get_op(name).order)
    return RestorationPrompt(tuple(PromptItem(name) for name in ordered)).format()


def prompt_from_prediction(
    ops: Sequence[str],
    probability: np.ndarray,
    strength: np.ndarray,
    threshold: float | np.ndarray = 0.5,
) -> RestorationPrompt:
    """The restoration prompt the predictor would use: found ops, with their strengths.

    ``threshold``: one for all ops, or one per op.

    Only the predicted strength parameter is stated; an op whose phrase needs more
    numbers (motion blur's angle) is named without numbers.
    """
    items = []
    limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(ops),))
    found = [i for i in np.argsort([get_op(n).order for n in ops]) if probability[i] >= limits[i]]
    for i in found:
        op = get_op(ops[i])
        if op.prompt_names == (op.strength,):
            items.append(PromptItem.of(ops[i], {op.strength: strength_value(ops[i], strength[i])}))
        else:
            items.append(PromptItem(ops[i]))
    return RestorationPrompt(tuple(items))
