"""The restorer's weights with windowed statistics (``statistics_window``, TLC) vs whole-map.

1. Choosing the window: the 16 held-out BSD400 photos (never an eval set), a random
   1-3 op record each (seed 0), restored whole and in tiles of at most 160 px.
2. What it costs or gains on eval tasks: the first ``--limit`` images of each task.
3. Tiled (tiles of at most 256 px) vs untiled agreement on the 512x512 astronaut with
   sigma-25 noise.

Each window is tried with each ``--norms`` (``map``: the model's normalisation over
channels and positions; ``pixel``: NAFNet's per pixel, on the same weights). Tiles use
their own statistics (``--gather 0``, the measure these windows were chosen by); with
``--gather N`` whole-map variants first gather the photo's (``benchmarks/tiling.py``).

    python benchmarks/statistics_window.py [--model restorer] [--windows none,128,256,384]
        [--norms map,pixel (default: the model's own)] [--analyzer perception|model|PATH]
        [--gather 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage import data

from vlir.degradations import parse_ops
from vlir.evaluation import parse_task, psnr
from vlir.evaluation.tasks import dataset_images
from vlir.pipeline import Restorer
from vlir.restoration import RestorerModel

sys.path.insert(0, str(Path(__file__).parent))
from analyzer import held_out_photos

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = [
    ("denoise:25", "CBSD68"),
    ("jpeg-y:10", "LIVE1"),
    ("rain", "CBSD68"),
    ("low_light", "CBSD68"),
    ("haze", "CBSD68"),
    ("blur+noise", "CBSD68"),
]


Variant = tuple[str, int | None]  # (norm, statistics window)


def use(restorer: Restorer, base: RestorerModel, variant: Variant) -> Restorer:
    norm, window = variant
    restorer.model = base.with_statistics(window, norm)
    return restorer


def label(variant: Variant) -> str:
    norm, window = variant
    return f"window {window}" + ("" if norm == "map" else f" {norm} norm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--windows", default="none,128,256,384")
    parser.add_argument(
        "--norms", default=None, help="comma-separated map,pixel; default: the model's own"
    )
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument(
        "--analyzer",
        default="perception",
        help="perception that reads the photos: the shipped one by default, as in "
        "Restorer.from_pretrained; 'model' for the restorer's own",
    )
    parser.add_argument("--gather", type=int, default=0)
    args = parser.parse_args()
    windows = [None if w == "none" else int(w) for w in args.windows.split(",")]
    analyzer = None if args.analyzer == "model" else args.analyzer
    restorer = Restorer.from_pretrained(args.model, analyzer=analyzer)
    base = restorer.model
    norms = args.norms.split(",") if args.norms else [base.config.norm]
    variants = [(norm, window) for norm in norms for window in windows]
    held = held_out_photos()
    print("held-out BSD400: input", f"{np.mean([psnr(d, c) for c, d in held]):.2f}")
    photo = data.astronaut().astype(np.float32) / 255
    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    for variant in variants:
        use(restorer, base, variant)
        whole = np.mean([psnr(restorer(d, tile=512).image, c) for c, d in held])
        tiled = np.mean([psnr(restorer(d, tile=160, gather=args.gather).image, c) for c, d in held])
        agree = psnr(
            restorer(noisy, tile=256, gather=args.gather).image, restorer(noisy, tile=512).image
        )
        print(
            f"{label(variant)}: held-out whole {whole:.2f}, tiled {tiled:.2f}; "
            f"tiled vs untiled {agree:.1f} dB",
            flush=True,
        )
    for text, dataset in TASKS:
        task, folder = parse_task(text), DATA / "eval" / dataset
        samples = [
            task.make(p, folder, 0, i) for i, p in enumerate(dataset_images(folder)[: args.limit])
        ]
        given = [psnr(np.clip(s.degraded, 0, 1), t, channel=task.channel) for s, t in samples]
        row = [f"{text} {dataset}: input {np.mean(given):.2f}"]
        for variant in variants:
            use(restorer, base, variant)
            scores = [psnr(restorer(s.degraded).image, t, channel=task.channel) for s, t in samples]
            row.append(f"{label(variant)} {np.mean(scores):.2f}")
        print(", ".join(row), flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
