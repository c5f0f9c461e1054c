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
degraded as one plane): the head fitted on colour alone reads grey noise as JPEG. The
thresholds are then set per version: colour photos' on the colour draws, grey photos'
(``grey_thresholds``) on the grey ones, each with its own clean photos under the cap.
``--grey-head`` instead adds a second head for grey photos to a model that has one,
fitted on the grey draws alone, so the model reads colour photos exactly as before:

    python -m vlir.perception.fit_image_head perception --out runs/grey-head --grey-head \
      --rounds 2 --grey-rounds 2 --evidence runs/evidence-grey.pt

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
from vlir.perception.analyze import one_plane, read_tiles
from vlir.perception.calibrate import best_thresholds, collect, f1, photo_draws, split_paths
from vlir.perception.image_head import (
    ImageHead,
    evidence_dim,
    fit_head,
    image_evidence,
    tile_weights,
)
from vlir.perception.model import PerceptionModel

Evidence = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""(evidence [M, E], truth [M, N] in {0, 1}, photo [M]: which photo each draw is of,
grey [M]: whether the draw is grey, R = G = B, as ``analyze`` tells (a colour cast makes
a photo turned grey a colour one))."""
NAMES = ("evidence", "truth", "photo", "grey")


@torch.no_grad()
def collect_evidence(
    model: PerceptionModel, paths: Sequence[Path], seed: int, triples: int = 2, grey: bool = False
) -> Evidence:
    """The evidence of ``photo_draws`` of ``paths`` (4 pairs, ``triples`` triples; the
    photos turned grey with ``grey``); ``photo`` indexes ``paths``."""
    evidence, truth, photo, grey_draws = [], [], [], []
    index = -1
    # triples too: the tower trains on up to three ops at once, and the restorer meets as many
    for combo, image in photo_draws(paths, seed, pairs=4, triples=triples, grey=grey):
        index += not combo  # each photo's draws start with the photo as it is
        local, view = read_tiles(model, image)
        evidence.append(image_evidence(local.presence_logits, view, model.config.signal_features))
        truth.append([float(name in combo) for name in model.config.ops])
        photo.append(index)
        grey_draws.append(one_plane(image))
    return torch.cat(evidence), torch.tensor(truth), torch.tensor(photo), torch.tensor(grey_draws)


def load_evidence(files: Sequence[Path], model: PerceptionModel) -> Evidence:
    """The evidence of several cache files, checked to be this model's, end to end."""
    parts = []
    width = evidence_dim(len(model.config.ops), model.config.signal_features)
    for file in files:
        cached = torch.load(file)
        if not isinstance(cached, dict) or set(NAMES) - set(cached):
            raise VlirError(f"{file}: not evidence this command wrote (collect it again)")
        evidence, truth = cached["evidence"], cached["truth"]
        if evidence.shape[1] != width or truth.shape[1] != len(model.config.ops):
            raise VlirError(f"{file}: evidence of another perception (not {width} wide)")
        parts.append((evidence, truth, cached["photo"], cached["grey"]))
    return _joined(parts)


def _joined(parts: Sequence[Evidence]) -> Evidence:
    """Several collections' evidence, end to end."""
    evidence, truth, photo, grey = (torch.cat(column) for column in zip(*parts, strict=True))
    return evidence, truth, photo, grey


def out_of_fold(
    evidence: Evidence, hidden: int, weight_decay: float, folds: int, tile_weight: Sequence[float]
) -> torch.Tensor:
    """[M, N] each draw's decision logit by a head fitted without its photo's draws (every
    draw of a photo in one fold, so no fold has seen the photo it scores)."""
    features, truth, photo, _ = evidence
    fold = photo % folds
    logits = torch.empty_like(truth)
    for k in range(folds):
        fitted = fit_head(features[fold != k], truth[fold != k], hidden, weight_decay=weight_decay)
        head = ImageHead(features.shape[1], truth.shape[1], hidden, tile_weight)
        head.load_state_dict(fitted.state_dict())
        with torch.no_grad():
            logits[fold == k] = head(features[fold == k])
    return logits


def version_thresholds(
    truth: np.ndarray, probability: np.ndarray, grey: np.ndarray, clean_rate: float
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """(thresholds, grey photos' thresholds) of out-of-fold ``probability`` [M, N], each set
    on its own version's draws (``grey`` [M]) under the clean-photo cap; with draws of one
    version only, both versions' photos share the thresholds (None for grey)."""
    if grey.all() or not grey.any():
        return best_thresholds(truth, probability, clean_rate=clean_rate), None
    colour = best_thresholds(truth[~grey], probability[~grey], clean_rate=clean_rate)
    return colour, best_thresholds(truth[grey], probability[grey], clean_rate=clean_rate)


def fit(model: PerceptionModel, evidence: Evidence, args: argparse.Namespace) -> PerceptionModel:
    """``model`` with one head fitted on all the draws, its thresholds set per version."""
    features, truth, _, grey = evidence
    weights = tile_weights(model.config.ops, args.tile_ops, args.blend)
    logits = out_of_fold(evidence, args.hidden, args.weight_decay, args.folds, weights)
    thresholds, grey_thresholds = version_thresholds(
        truth.numpy(), torch.sigmoid(logits).numpy(), grey.numpy(), args.clean_rate
    )
    config = dataclasses.replace(
        model.config,
        image_head=args.hidden,
        head_blend=args.blend,
        tile_ops=tuple(args.tile_ops),
        thresholds=thresholds,
        grey_head=False,
        grey_thresholds=grey_thresholds,
    )
    fitted = PerceptionModel(config)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("grey_image_head.")}
    fitted.load_state_dict(own, strict=False)
    head = fit_head(features, truth, args.hidden, weight_decay=args.weight_decay)
    fitted.image_head.load_state_dict(head.state_dict())
    print(f"head ({args.hidden} hidden) fitted on {len(truth)} draws; thresholds {thresholds}")
    if grey_thresholds is not None:
        print(f"grey photos' thresholds {grey_thresholds}")
    return fitted


def fit_grey_head(
    model: PerceptionModel, evidence: Evidence, args: argparse.Namespace
) -> PerceptionModel:
    """``model`` with a second head, fitted on the grey draws alone, for grey photos; its
    own head and thresholds, and so what it says of a colour photo, stay as they were."""
    config = model.config
    if config.image_head is None:
        raise VlirError("--grey-head adds to a perception with an image head (fit that first)")
    features, truth, photo, grey = evidence
    if not grey.any():
        raise VlirError("--grey-head needs grey draws (--grey-rounds, or grey evidence)")
    rows = (features[grey], truth[grey], photo[grey], grey[grey])
    weights = tile_weights(config.ops, config.tile_ops, config.head_blend)
    logits = out_of_fold(rows, config.image_head, args.weight_decay, args.folds, weights)
    grey_thresholds = best_thresholds(
        rows[1].numpy(), torch.sigmoid(logits).numpy(), clean_rate=args.clean_rate
    )
    fitted = PerceptionModel(
        dataclasses.replace(config, grey_head=True, grey_thresholds=grey_thresholds)
    )
    fitted.load_state_dict(model.state_dict(), strict=False)
    head = fit_head(rows[0], rows[1], config.image_head, weight_decay=args.weight_decay)
    fitted.grey_image_head.load_state_dict(head.state_dict())
    print(f"grey head fitted on {len(rows[1])} grey draws; thresholds {grey_thresholds}")
    return fitted


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
        "--grey-head",
        action="store_true",
        help="add a second head for grey photos, fitted on the grey draws alone, to MODEL's "
        "own (kept, with its thresholds; --hidden, --blend and --tile-ops are MODEL's)",
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
            torch.save(dict(zip(NAMES, evidence, strict=True)), args.evidence[0])
    fitted = fit_grey_head(model, evidence, args) if args.grey_head else fit(model, evidence, args)
    # half precision, as shipped; the head's own tensors stay float32 (``full_precision``)
    fitted.save_pretrained(args.out, dtype=torch.float16)
    print(f"wrote {args.out}")
    saved = PerceptionModel.from_pretrained(args.out)
    held_paths = split_paths(args.data, args.holdout)[1]
    for turned_grey in (False, True) if evidence[3].any() else (False,):
        held_truth, probability = collect(saved, held_paths * args.check_rounds, grey=turned_grey)
        found = probability >= saved.decision_thresholds(turned_grey)
        count = held_truth.sum(1)
        photos = "held-out photos" + (" turned grey" if turned_grey else "")
        for name, rows in (("single ops", count == 1), ("mixtures", count > 1)):
            score = np.nanmean(f1(held_truth[rows], found[rows]))
            print(f"{photos}, {name}: mean F1 {score:.3f}")
        clean = found[count == 0].any(1)
        print(f"{photos} as they are: {clean.sum()} of {len(clean)} draws with a finding")


if __name__ == "__main__":
    main()
