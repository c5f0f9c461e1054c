"""Per-op decision thresholds, chosen on photos kept out of training.

Training puts an op's boundary at probability 0.5 on one crop, but ``analyze``
averages the probabilities of a whole photo's tiles, and each op has its own
mix of look-alikes (light blur and a soft photo, mild JPEG and a photo that was
a JPEG already): one fixed 0.5 is right for none of them. Each op's threshold is
set where its F1 is best on BSD400 photos held out of training (never on an
evaluation set): each photo as it is, with every single op and with random 2-op
mixtures.
``--beta`` below 1 favours precision (a restorer that dehazes a clean photo does
more harm than one leaving faint haze), at the price of recall: see the weights
README for what F0.5 did to the shipped perception.

    python -m vlir.perception.calibrate runs/perception/best [--beta 1] [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import OPS, DegradationRecord, Step, get_op
from vlir.errors import VlirError
from vlir.io import READ_SUFFIXES, grey_rgb, load_image
from vlir.modeling import CONFIG_NAME, resolve_checkpoint
from vlir.perception.analyze import analyze
from vlir.perception.model import PerceptionModel

GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


def op_combinations() -> list[tuple[str, ...]]:
    """Every single op, then every pair from different families (two blurs make no pair)."""
    names = list(OPS)
    pairs = [
        pair
        for pair in itertools.combinations(names, 2)
        if get_op(pair[0]).family != get_op(pair[1]).family
    ]
    return [(name,) for name in names] + pairs


def degrade(
    clean: np.ndarray, combo: Sequence[str], rng: np.random.Generator
) -> tuple[torch.Tensor, DegradationRecord]:
    """``clean`` [H, W, 3] with each op of ``combo`` at a random strength -> [1, 3, H, W]."""
    ordered = sorted(combo, key=lambda name: get_op(name).order)
    record = DegradationRecord(tuple(Step(n, get_op(n).sample(rng)) for n in ordered))
    return torch.from_numpy(record.apply(clean)).permute(2, 0, 1)[None].float(), record


def photo_draws(
    paths: Sequence[Path], seed: int, pairs: int = 4, triples: int = 0, grey: bool = False
) -> Iterator[tuple[tuple[str, ...], torch.Tensor]]:
    """(ops, degraded [1, 3, H, W]) for each photo as it is, with every single op, with
    ``pairs`` random pairs and ``triples`` random triples of ops from different families.
    The photo as it is counts: a threshold chosen on degraded photos alone never pays for
    reading a clean one as degraded, and clean photos are what many users bring.
    ``grey``: each photo turned grey first (BT.601 luma in every channel, as a grey file is
    read; the engine degrades it as one plane): the shipped head, fitted on colour alone,
    reads grey noise as JPEG (``benchmarks/grey.py``)."""
    rng = np.random.default_rng(seed)
    combos = op_combinations()
    two = [c for c in combos if len(c) == 2]
    three = [c for c in itertools.combinations(OPS, 3) if len({get_op(n).family for n in c}) == 3]
    for path in paths:
        clean = load_image(path).rgb
        if grey:
            clean = grey_rgb(clean)
        mixed = [two[i] for i in rng.choice(len(two), pairs, replace=False)]
        if triples:
            mixed += [three[i] for i in rng.choice(len(three), triples, replace=False)]
        for combo in [()] + [c for c in combos if len(c) == 1] + mixed:
            yield combo, degrade(clean, combo, rng)[0]


@torch.no_grad()
def collect(
    model: PerceptionModel,
    paths: Sequence[Path],
    seed: int = 0,
    mixtures: int = 4,
    grey: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(truth [M, N] in {0, 1}, probability [M, N]) over ``photo_draws`` of ``paths``
    with ``mixtures`` pairs per photo (turned grey with ``grey``)."""
    ops = model.config.ops
    truth, probability = [], []
    for combo, image in photo_draws(paths, seed, pairs=mixtures, grey=grey):
        found = analyze(model, image, calibrated=False)
        by_op = {f.op: f.probability for f in found.findings}
        truth.append([float(name in combo) for name in ops])
        probability.append([by_op[name] for name in ops])
    return np.array(truth), np.array(probability)


def best_thresholds(
    truth: np.ndarray,
    probability: np.ndarray,
    beta: float = 1.0,
    clean_rate: float | None = None,
) -> tuple[float, ...]:
    """Per column, the grid threshold with the best F-beta (ties: the one nearest 0.5);
    ``beta`` < 1 weighs precision more. ``clean_rate``: only thresholds that find the op
    on at most this share of the clean draws (rows of no op) compete (if none does, the
    grid's highest): F1 on draws where a clean photo is one in many pays almost nothing
    for calling a clean photo degraded, which a user bringing a good photo pays in full."""
    clean = truth.sum(1) == 0
    chosen = []
    for column in range(truth.shape[1]):
        t, p = truth[:, column], probability[:, column]
        scores, allowed = [], []
        for threshold in GRID:
            found = p >= threshold
            hits = (t * found).sum()
            denominator = beta**2 * t.sum() + found.sum()
            scores.append((1 + beta**2) * hits / denominator if denominator else 0.0)
            too_many = clean_rate is not None and clean.any() and found[clean].mean() > clean_rate
            allowed.append(not too_many)
        if not any(allowed):
            chosen.append(float(GRID[-1]))
            continue
        scores = np.where(allowed, scores, -1.0)
        best = np.flatnonzero(scores >= scores.max() - 1e-9)
        chosen.append(float(GRID[best[np.argmin(np.abs(GRID[best] - 0.5))]]))
    return tuple(chosen)


def f1(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per-op F1 [N] of boolean decisions."""
    tp = (truth * found).sum(0)
    denominator = truth.sum(0) + found.sum(0)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def split_paths(data: str | Path, holdout: int) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of a perception recipe with this ``holdout``."""
    from vlir.training.common import split_holdout

    if not Path(data).is_dir():
        raise VlirError(f"{data}: no such folder of training photos (--data)")
    paths = sorted(p for p in Path(data).iterdir() if p.suffix.lower() in READ_SUFFIXES)
    kept, held = split_holdout(len(paths), holdout)
    return [paths[i] for i in kept], [paths[i] for i in held]


def holdout_paths(data: str | Path, holdout: int) -> list[Path]:
    """The photos a perception recipe with this ``holdout`` kept out of training."""
    return split_paths(data, holdout)[1]


def calibrate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    holdout: int,
    seed: int = 0,
    *,
    rounds: int = 2,
    beta: float = 1.0,
    write: bool = True,
) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
    """(thresholds, held-out F1 at 0.5, held-out F1 at them); ``write`` stores them in the
    checkpoint's config.json."""
    model = PerceptionModel.from_pretrained(checkpoint)
    if write and model.image_head is not None:
        raise VlirError(
            "a perception with an image head keeps the thresholds its fit set out of fold "
            "under a clean-photo cap (python -m vlir.perception.fit_image_head); "
            "measure without --write"
        )
    with torch.no_grad():
        # each photo ``rounds`` times, at other random strengths: a steadier F1 per threshold
        truth, probability = collect(model, holdout_paths(data, holdout) * rounds, seed)
    thresholds = best_thresholds(truth, probability, beta)
    before = f1(truth, probability >= 0.5)
    after = f1(truth, probability >= np.array(thresholds))
    if write:
        path = resolve_checkpoint(checkpoint) / CONFIG_NAME
        config = json.loads(path.read_text())
        config["thresholds"] = list(thresholds)
        path.write_text(json.dumps(config, indent=2) + "\n")
    return thresholds, before, after


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Calibrate perception's per-op thresholds.")
    parser.add_argument("model", help="perception checkpoint folder (or shipped name)")
    parser.add_argument("--data", default="../shared/data/train/BSD400")
    parser.add_argument("--holdout", type=int, default=16, help="as the training recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds", type=int, default=2, help="times each photo is drawn (other strengths)"
    )
    parser.add_argument(
        "--beta", type=float, default=1.0, help="F-beta to maximise (< 1 favours precision)"
    )
    parser.add_argument("--write", action="store_true", help="store them in its config.json")
    args = parser.parse_args(argv)
    thresholds, before, after = calibrate_checkpoint(
        args.model,
        args.data,
        args.holdout,
        args.seed,
        rounds=args.rounds,
        beta=args.beta,
        write=args.write,
    )
    ops = PerceptionModel.from_pretrained(args.model).config.ops
    for name, threshold, old, new in zip(ops, thresholds, before, after, strict=True):
        print(f"{name:12s} threshold {threshold:.2f}  F1 {old:.3f} -> {new:.3f} (held out)")
    print(f"mean F1 {np.nanmean(before):.3f} -> {np.nanmean(after):.3f}")
    if args.write:
        print(f"wrote {resolve_checkpoint(args.model) / CONFIG_NAME}")


if __name__ == "__main__":
    main()
