"""Strengths read on black-and-white photos, mapped back onto the engine's scale.

The tower learned its strengths on colour photos, whose noise the engine draws per
channel: about two thirds of it reaches luma. A grey photo's grain is one plane (as film's
and a grey file's are, and as the engine draws it), so the tower reads sigma-25 grey noise
as about 37 and sigma 50 near the top of its range (``benchmarks/grey.py``). Retraining
the tower would fix the reading; until then, for a grey photo (R = G = B), ``analyze``
passes each op's strength through a monotone map fitted here, and the findings and the
prompt state it on the engine's scale. The tower's own reading (``Perception.strength``)
is left as it is: it is what the models conditioned on it learned.

The map is fitted on BSD400 training photos turned grey, each op alone at random
strengths: the median true strength in bins of the read one, pinned at 0 and 1. It is
kept for an op only where it cuts the error on the held-out photos (grey, several draws
each) by ``--gain``; the other ops read as in colour:

    python -m vlir.perception.grey_strength perception [--write]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import get_op
from vlir.io import grey_rgb, load_image
from vlir.modeling import CONFIG_NAME, resolve_checkpoint
from vlir.perception.analyze import read_tiles
from vlir.perception.calibrate import degrade, split_paths
from vlir.perception.labels import GreyMap, record_labels
from vlir.perception.model import PerceptionModel


def fit_map(read: np.ndarray, truth: np.ndarray, bins: int = 8) -> GreyMap:
    """Knots of a monotone map ``read`` -> ``truth`` (both [M], normalised): the median
    truth in ``bins`` bins of equal count along the read strength, pinned at (0, 0) and
    (1, 1) so reads past the fitted ones still map into the range. A bin whose reads pile
    at a bound keeps its own truth there: a saturated read is the median of what it hides."""
    groups = np.array_split(np.argsort(read), min(bins, len(read)))  # none left empty
    reads = [0.0] + [round(float(np.median(read[g])), 4) for g in groups] + [1.0]
    truths = [0.0] + [round(float(np.median(truth[g])), 4) for g in groups] + [1.0]
    reads_kept, truths_kept = [reads[0]], [truths[0]]
    for x, y in zip(reads[1:], truths[1:], strict=True):
        if x > reads_kept[-1]:  # a tie at a bound keeps the bin's knot, not the pin
            reads_kept.append(x)
            truths_kept.append(max(y, truths_kept[-1]))  # monotone: a stronger read, no weaker
    return [reads_kept, truths_kept]


@torch.no_grad()
def grey_draws(
    model: PerceptionModel, paths: Sequence[Path], ops: Sequence[str], seed: int
) -> dict[str, np.ndarray]:
    """op -> [M, 2] (true, read) normalised strengths: each photo of ``paths`` turned grey
    and degraded by each op of ``ops`` alone at a random strength, clipped as a file is."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in ops}
    names = model.config.ops
    for path in paths:
        clean = grey_rgb(load_image(path).rgb)
        for name in ops:
            image, record = degrade(clean, (name,), rng)
            truth = record_labels(record, names)[1][names.index(name)]
            local, _ = read_tiles(model, image.clamp(0, 1))
            rows[name].append((float(truth), float(local.strength[:, names.index(name)].mean())))
    return {name: np.array(pairs) for name, pairs in rows.items()}


def _error(name: str, truth: np.ndarray, read: np.ndarray) -> float:
    """Mean absolute error on the op's own scale (sigma, quality, ...)."""
    spec = get_op(name).range_of(get_op(name).strength)
    return float(np.abs(truth - read).mean() * (spec.high - spec.low))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="perception checkpoint folder (or shipped name)")
    parser.add_argument("--data", default="../shared/data/train/BSD400")
    parser.add_argument("--holdout", type=int, default=16, help="as the training recipe's")
    parser.add_argument("--ops", nargs="*", help="ops to fit (default: all the model reads)")
    parser.add_argument("--check-rounds", type=int, default=8, help="draws of each held-out photo")
    parser.add_argument("--gain", type=float, default=0.1, help="least held-out error cut kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="store the maps in its config.json")
    args = parser.parse_args(argv)
    model = PerceptionModel.from_pretrained(args.model)
    ops = args.ops or list(model.config.ops)
    unknown = sorted(set(ops) - set(model.config.ops))
    if unknown:
        parser.error(f"--ops: this perception reads no {unknown[0]!r}")
    train_paths, held_paths = split_paths(args.data, args.holdout)
    fitted = grey_draws(model, train_paths, ops, args.seed)
    checked = grey_draws(model, held_paths * args.check_rounds, ops, args.seed + 1)
    maps: dict[str, GreyMap] = {}
    for name in ops:
        grey_map = fit_map(fitted[name][:, 1], fitted[name][:, 0])
        truth, read = checked[name][:, 0], checked[name][:, 1]
        before = _error(name, truth, read)
        after = _error(name, truth, np.interp(read, *grey_map))
        kept = after <= (1 - args.gain) * before
        if kept:
            maps[name] = grey_map
        parameter = get_op(name).strength
        print(
            f"{name:12s} {parameter} error on held-out grey photos {before:.3f} -> {after:.3f}"
            + ("  kept" if kept else "")
        )
    if args.write:
        path = resolve_checkpoint(args.model) / CONFIG_NAME
        config = json.loads(path.read_text())
        config["grey_strength"] = maps
        path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote {path}")
    else:
        print(json.dumps(maps))


if __name__ == "__main__":
    main()
