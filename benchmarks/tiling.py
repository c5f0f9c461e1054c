"""Tiled restoration against untiled: each tile's own statistics vs the photo's.

The restorer's map norm and channel attention average over the whole map, so a
tile restores differently from the same pixels in the whole photo. ``--gathers``
lists how many passes first gather the photo's statistics over the tiles (0:
each tile its own; the pipeline's default is 1; see
``vlir.restoration.photo_statistics``). For each, on photos restored whole and
in ``--tile``-px tiles: PSNR to the target, tiled against untiled, and seconds.

1. The 16 held-out BSD400 photos, a random 1-3 op record each (seed 0).
2. The first ``--limit`` images of eval tasks, global ops (low light, haze) first.
3. The 512x512 astronaut with sigma-25 noise in 256-px tiles (the restore
   benchmark's 45 dB target).

    python benchmarks/tiling.py [--model restorer] [--gathers 0,1,2] [--tile 160] [--limit 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from vlir.degradations import parse_ops
from vlir.evaluation import parse_task, psnr
from vlir.evaluation.tasks import dataset_images
from vlir.pipeline import Restorer

sys.path.insert(0, str(Path(__file__).parent))
from analyzer import held_out_photos

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = [("low_light", "CBSD68"), ("haze", "CBSD68"), ("denoise:25", "CBSD68"), ("rain", "CBSD68")]

Pair = tuple[np.ndarray, np.ndarray]  # (target, degraded)


def compare(
    restorer: Restorer, pairs: list[Pair], gathers: list[int], tile: int, channel: str = "rgb"
) -> str:
    """One row: untiled PSNR, then per gather count tiled PSNR / agreement / seconds."""
    wholes = [restorer(degraded, tile=max(degraded.shape[:2])).image for _, degraded in pairs]
    untiled = [psnr(w, t, channel=channel) for w, (t, _) in zip(wholes, pairs, strict=True)]
    cells = [f"untiled {np.mean(untiled):.2f}"]
    for gather in gathers:
        scores, agreements, seconds, failed = [], [], [], 0
        for whole, (target, degraded) in zip(wholes, pairs, strict=True):
            start = time.perf_counter()
            tiled = restorer(degraded, tile=tile, gather=gather).image
            seconds.append(time.perf_counter() - start)
            if not np.isfinite(tiled).all():
                failed += 1
                continue
            scores.append(psnr(tiled, target, channel=channel))
            agreements.append(psnr(tiled, whole))
        note = f", {failed} not finite" if failed else ""
        cells.append(
            f"gather {gather}: {np.mean(scores):.2f}, vs untiled {np.mean(agreements):.1f} dB "
            f"(min {np.min(agreements):.1f}), {np.median(seconds):.2f} s{note}"
        )
    return "; ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--gathers", default="0,1,2")
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()
    gathers = [int(g) for g in args.gathers.split(",")]
    restorer = Restorer.from_pretrained(args.model)
    print(f"{args.model}, {args.tile}-px tiles, {torch.get_num_threads()} threads", flush=True)
    held = held_out_photos()
    print("held-out BSD400:", compare(restorer, held, gathers, args.tile), flush=True)
    for text, dataset in TASKS:
        task, folder = parse_task(text), DATA / "eval" / dataset
        images = dataset_images(folder)[: args.limit]
        samples = [task.make(p, folder, 0, i) for i, p in enumerate(images)]
        pairs = [(target, sample.degraded) for sample, target in samples]
        row = compare(restorer, pairs, gathers, args.tile, channel=task.channel)
        print(f"{text} {dataset}:", row, flush=True)
    photo = data.astronaut().astype(np.float32) / 255
    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    whole = restorer(noisy, tile=512).image
    cells = [
        f"gather {g} {psnr(restorer(noisy, tile=256, gather=g).image, whole):.1f}" for g in gathers
    ]
    print("astronaut sigma 25, 256-px tiles vs untiled (dB):", ", ".join(cells), flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
