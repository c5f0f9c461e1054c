"""Fit a perception checkpoint's image head (``vlir.perception.image_head``).

Each BSD400 training photo is drawn ``--rounds`` times: as it is, with every single op,
with 4 random pairs and with 2 random triples (``--triples``). The frozen model reads
each draw (its tiles' logits, the whole photo's statistics) and the head is fitted on
that evidence.
The decision thresholds are set on the same evidence read out of fold (by heads fitted
on the other photos, ``--folds``), where the training photos as they are give hundreds
of clean draws to hold the rate of false findings to (``--clean-rate``); the 16 held-out
photos give 16, too few to see a rate of 1%. The model is saved with its head, then
scored on the held-out photos:

    python -m vlir.perception.fit_image_head runs/perception/best --out runs/perception-head

``--grey-rounds N`` draws the photos grey in the last N rounds (black-and-white photos,
degraded as one plane): the head fitted on colour alone reads grey noise as JPEG.

``--evidence FILE`` keeps the collected evidence (the slow part: about 0.15 s a draw on
one CPU core), so a refit with another ``--hidden`` or ``--blend`` takes a minute or two;
several files collected before (other seeds) are read together.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vlir.errors import VlirError
from vlir.perception.analyze import read_tiles
from vlir.perception.calibrate import best_thresholds, collect, f1, photo_draws, split_paths
from vlir.perception.image_head import (
    ImageHead,
    evidence_dim,
    fit_head,
    image_evidence,
    tile_weights,
)
from vlir.perception.model import PerceptionModel

Evidence = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(evidence [M, E], truth [M, N] in {0, 1}, photo [M]: which photo each draw is of)."""


@torch.no_grad()
def collect_evidence(
    model: PerceptionModel, paths: Sequence[Path], seed: int, triples: int = 2, grey: bool = False
) -> Evidence:
    """The evidence of ``photo_draws`` of ``paths`` (4 pairs, ``triples`` triples; the
    photos turned grey with ``grey``); ``photo`` indexes ``paths``."""
    evidence, truth, photo = [], [], []
    index = -1
    # triples too: the tower trains on up to three ops at once, and the restorer meets as many
    for combo, image in photo_draws(paths, seed, pairs=4, triples=triples, grey=grey):
        index += not combo  # each photo's draws start with the photo as it is
        local, view = read_tiles(model, image)
        evidence.append(image_evidence(local.presence_logits, view, model.config.signal_features))
        truth.append([float(name in combo) for name in model.config.ops])
        photo.append(index)
    return torch.cat(evidence), torch.tensor(truth), torch.tensor(photo)


def load_evidence(files: Sequence[Path], model: PerceptionModel) -> Evidence:
    """The evidence of several cache files, checked to be this model's, end to end."""
    parts = []
    width = evidence_dim(len(model.config.ops), model.config.signal_features)
    for file in files:
        cached = torch.load(file)
        if not isinstance(cached, dict) or {"evidence", "truth", "photo"} - set(cached):
            raise VlirError(f"{file}: not evidence this command wrote (collect it again)")
        evidence, truth = cached["evidence"], cached["truth"]
        if evidence.shape[1] != width or truth.shape[1] != len(model.config.ops):
            raise VlirError(f"{file}: evidence of another perception (not {width} wide)")
        parts.append((evidence, truth, cached["photo"]))
    return _joined(parts)


def _joined(parts: Sequence[Evidence]) -> Evidence:
    """Several collections' evidence, end to end."""
    evidence, truth, photo = (torch.cat(column) for column in zip(*parts, strict=True))
    return evidence, truth, photo


def out_of_fold(
    evidence: Evidence, hidden: int, weight_decay: float, folds: int, tile_weight: Sequence[float]
) -> torch.Tensor:
    """[M, N] each draw's decision logit by a head fitted without its photo's draws (every
    draw of a photo in one fold, so no fold has seen the photo it scores)."""
    features, truth, photo = evidence
    fold = photo % folds
    logits = torch.empty_like(truth)
    for k in range(folds):
        fitted = fit_head(features[fold != k], truth[fold != k], hidden, weight_decay=weight_decay)
        head = ImageHead(features.shape[1], truth.shape[1], hidden, tile_weight)
        head.load_state_dict(fitted.state_dict())
        with torch.no_grad():
            logits[fold == k] = head(features[fold == k])
    return logits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="perception checkpoint folder (or shipped name)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the model + head")
    parser.add_argument("--data", default="../shared/data/train/BSD400")
    parser.add_argument("--holdout", type=int, default=16, help="as the training recipe's")
    parser.add_argument("--rounds", type=int, default=3, help="draws of each training photo")
    parser.add_argument("--hidden", type=int, default=64, help="hidden width (0: linear)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--blend", type=float, default=0.5, help="see PerceptionConfig.head_blend")
    parser.add_argument("--seed", type=int, default=1, help="of the first round (then +1)")
    parser.add_argument("--triples", type=int, default=2, help="random triples per photo")
    parser.add_argument(
        "--grey-rounds",
        type=int,
        default=0,
        help="of the rounds, how many draw the photos grey (the last ones); the held-out "
        "photos are then also scored grey",
    )
    parser.add_argument(
        "--tile-ops",
        nargs="*",
        default=["low_light"],
        help="ops the tiles' mean still decides (see PerceptionConfig.tile_ops)",
    )
    parser.add_argument("--folds", type=int, default=4, help="for the out-of-fold thresholds")
    parser.add_argument(
        "--clean-rate",
        type=float,
        default=0.002,
        help="most share of clean training photos a threshold may find its op on",
    )
    parser.add_argument(
        "--check-rounds", type=int, default=4, help="draws of each held-out photo scored"
    )
    parser.add_argument(
        "--evidence",
        type=Path,
        nargs="*",
        default=[],
        help="cache files: read if all are there, else one is collected and written",
    )
    args = parser.parse_args(argv)
    model = PerceptionModel.from_pretrained(args.model)
    if not model.config.signal_statistics:
        raise VlirError("the image head reads signal statistics: this perception has none")
    if args.evidence and all(file.exists() for file in args.evidence):
        evidence = load_evidence(args.evidence, model)
    elif len(args.evidence) > 1:
        missing = next(file for file in args.evidence if not file.exists())
        raise VlirError(f"{missing}: no such evidence (several files are only read)")
    else:
        train_paths = split_paths(args.data, args.holdout)[0]
        if not 0 <= args.grey_rounds <= args.rounds:
            raise VlirError(f"--grey-rounds must be from 0 to --rounds ({args.rounds})")
        first_grey = args.rounds - args.grey_rounds
        parts = [
            collect_evidence(model, train_paths, args.seed + r, args.triples, r >= first_grey)
            for r in range(args.rounds)
        ]
        evidence = _joined(parts)
        if args.evidence:
            names = ("evidence", "truth", "photo")
            torch.save(dict(zip(names, evidence, strict=True)), args.evidence[0])
    features, truth, _ = evidence
    weights = tile_weights(model.config.ops, args.tile_ops, args.blend)
    logits = out_of_fold(evidence, args.hidden, args.weight_decay, args.folds, weights)
    thresholds = best_thresholds(
        truth.numpy(), torch.sigmoid(logits).numpy(), clean_rate=args.clean_rate
    )
    config = dataclasses.replace(
        model.config,
        image_head=args.hidden,
        head_blend=args.blend,
        tile_ops=tuple(args.tile_ops),
        thresholds=thresholds,
    )
    fitted = PerceptionModel(config)
    fitted.load_state_dict(model.state_dict(), strict=False)
    head = fit_head(features, truth, args.hidden, weight_decay=args.weight_decay)
    fitted.image_head.load_state_dict(head.state_dict())
    # half precision, as shipped; the head's own tensors stay float32 (``full_precision``)
    fitted.save_pretrained(args.out, dtype=torch.float16)
    print(f"head ({args.hidden} hidden) fitted on {len(truth)} draws; thresholds {thresholds}")
    print(f"wrote {args.out}")
    saved = PerceptionModel.from_pretrained(args.out)
    held_paths = split_paths(args.data, args.holdout)[1]
    for grey in (False, True) if args.grey_rounds else (False,):
        held_truth, probability = collect(saved, held_paths * args.check_rounds, grey=grey)
        found = probability >= saved.decision_thresholds()
        count = held_truth.sum(1)
        photos = "held-out photos" + (" turned grey" if grey else "")
        for name, rows in (("single ops", count == 1), ("mixtures", count > 1)):
            score = np.nanmean(f1(held_truth[rows], found[rows]))
            print(f"{photos}, {name}: mean F1 {score:.3f}")
        clean = found[count == 0].any(1)
        print(f"{photos} as they are: {clean.sum()} of {len(clean)} draws with a finding")


if __name__ == "__main__":
    main()
