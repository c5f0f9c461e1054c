"""Fit a perception checkpoint's image head (``vlir.perception.image_head``).

Each BSD400 training photo is drawn ``--rounds`` times: as it is, with every single op,
with 4 random pairs and with 2 random triples. The frozen model reads each draw (its
tiles' logits, the whole photo's statistics), the head is fitted on that evidence, the
decision thresholds are set on the held-out photos, and the model is saved with its head:

    python -m vlir.perception.fit_image_head runs/perception/best --out runs/perception-head

``--evidence FILE`` keeps the collected evidence (the slow part: about 0.15 s a draw on
one CPU core), so a refit with another ``--hidden`` or ``--weight-decay`` is seconds.
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
from vlir.perception.calibrate import calibrate_checkpoint, photo_draws, split_paths
from vlir.perception.image_head import evidence_dim, fit_head, image_evidence
from vlir.perception.model import PerceptionModel


@torch.no_grad()
def collect_evidence(
    model: PerceptionModel, paths: Sequence[Path], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(evidence [M, E], truth [M, N]) over ``photo_draws`` of ``paths``."""
    evidence, truth = [], []
    # triples too: the tower trains on up to three ops at once, and the restorer meets as many
    for combo, image in photo_draws(paths, seed, pairs=4, triples=2):
        local, view = read_tiles(model, image)
        evidence.append(image_evidence(local.presence_logits, view, model.config.signal_features))
        truth.append([float(name in combo) for name in model.config.ops])
    return torch.cat(evidence), torch.tensor(truth)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="perception checkpoint folder (or shipped name)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the model + head")
    parser.add_argument("--data", default="../shared/data/train/BSD400")
    parser.add_argument("--holdout", type=int, default=16, help="as the training recipe's")
    parser.add_argument("--rounds", type=int, default=3, help="draws of each training photo")
    parser.add_argument("--hidden", type=int, default=64, help="hidden width (0: linear)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=1, help="of the first round (then +1)")
    parser.add_argument(
        "--tile-ops",
        nargs="*",
        default=["low_light"],
        help="ops the tiles' mean still decides (see PerceptionConfig.tile_ops)",
    )
    parser.add_argument(
        "--calibration-rounds", type=int, default=4, help="draws of each held-out photo"
    )
    parser.add_argument(
        "--evidence", type=Path, default=None, help="cache file: reused if there, else written"
    )
    args = parser.parse_args(argv)
    model = PerceptionModel.from_pretrained(args.model)
    if not model.config.signal_statistics:
        raise VlirError("the image head reads signal statistics: this perception has none")
    if args.evidence is not None and args.evidence.exists():
        cached = torch.load(args.evidence)
        if not isinstance(cached, dict) or {"evidence", "truth"} - set(cached):
            raise VlirError(f"{args.evidence}: not evidence this command wrote")
        evidence, truth = cached["evidence"], cached["truth"]
        width = evidence_dim(len(model.config.ops), model.config.signal_features)
        if evidence.shape[1] != width or truth.shape[1] != len(model.config.ops):
            raise VlirError(f"{args.evidence}: evidence of another perception (not {width} wide)")
    else:
        paths = split_paths(args.data, args.holdout)[0]
        parts = [collect_evidence(model, paths, args.seed + r) for r in range(args.rounds)]
        evidence, truth = torch.cat([e for e, _ in parts]), torch.cat([t for _, t in parts])
        if args.evidence is not None:
            torch.save({"evidence": evidence, "truth": truth}, args.evidence)
    head = fit_head(evidence, truth, args.hidden, weight_decay=args.weight_decay)
    config = dataclasses.replace(
        model.config, image_head=args.hidden, tile_ops=tuple(args.tile_ops)
    )
    fitted = PerceptionModel(config)
    fitted.load_state_dict(model.state_dict(), strict=False)
    fitted.image_head.load_state_dict(head.state_dict())
    # half precision, as shipped; the head's own tensors stay float32 (``full_precision``)
    fitted.save_pretrained(args.out, dtype=torch.float16)
    thresholds, before, after = calibrate_checkpoint(
        args.out, args.data, args.holdout, rounds=args.calibration_rounds
    )
    print(f"head ({args.hidden} hidden) fitted on {len(truth)} draws; thresholds {thresholds}")
    print(f"held-out mean F1 {np.nanmean(before):.3f} at 0.5, {np.nanmean(after):.3f} calibrated")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
