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
4. Speed at ``--sizes`` (the astronaut resized, sigma-25 noise): untiled against the
   pipeline's automatic tiles (one gathering pass), the pixels those tiles restore per
   pass, and how far apart the two come out. ``--speed-only`` runs this alone.

    python benchmarks/tiling.py [--model restorer] [--gathers 0,1,2] [--tile 160] [--limit 10]
    python benchmarks/tiling.py --speed-only --sizes 768x512,1536x1024
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data
from skimage.transform import resize

from vlir.degradations import parse_ops
from vlir.evaluation import parse_task, psnr
from vlir.evaluation.tasks import dataset_images
from vlir.pipeline import DEFAULT_TILE, Restorer, tile_overlap
from vlir.tiling import effective_overlap, tile_grid

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


def speed_row(restorer: Restorer, width: int, height: int) -> str:
    """Untiled against the automatic tiles on one photo of ``width`` x ``height``."""
    photo = resize(data.astronaut(), (height, width), anti_aliasing=True).astype(np.float32)
    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    start = time.perf_counter()
    whole = restorer(noisy, tile=max(height, width)).image
    untiled = time.perf_counter() - start
    start = time.perf_counter()
    tiled = restorer(noisy, tile=DEFAULT_TILE).image
    seconds = time.perf_counter() - start
    overlap = effective_overlap(DEFAULT_TILE, tile_overlap(restorer.model.config))
    tiles = tile_grid(height, width, DEFAULT_TILE, overlap)
    pixels = sum(part.height * part.width for part in tiles) / 1e6
    return (
        f"{width}x{height}: untiled {untiled:.2f} s; {len(tiles)} tiles of "
        f"{tiles[0].width}x{tiles[0].height} ({pixels:.2f} MP a pass), {seconds:.2f} s; "
        f"tiled vs untiled {psnr(tiled, whole):.1f} dB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--gathers", default="0,1,2")
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--sizes", default="768x512,1536x1024", help="WxH,... ('': none)")
    parser.add_argument("--speed-only", action="store_true", help="only the --sizes rows")
    args = parser.parse_args()
    gathers = [int(g) for g in args.gathers.split(",")]
    restorer = Restorer.from_pretrained(args.model)
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes.split(",") if size]
    if args.speed_only:
        for width, height in sizes:
            print(speed_row(restorer, width, height), flush=True)
        return
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
    for width, height in sizes:
        print(speed_row(restorer, width, height), flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
