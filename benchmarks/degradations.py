"""How fast the degradation engine synthesises training data, on one core.

Target (issue: foundation): a 128x128 training patch with 1-3 random ops in
under 5 ms median, so data loading never starves training.

    python benchmarks/degradations.py            # prints a Markdown table
    python benchmarks/degradations.py --out benchmarks/results/degradations.md
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, as one data-loader worker has

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from vlir.degradations import OPS, DegradationPipeline
from vlir.io import load_image

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"


def clean_images(count: int) -> list[np.ndarray]:
    """BSD400 photos when ../shared is present, else scikit-image's bundled ones."""
    if TRAIN.exists():
        return [load_image(path).rgb for path in sorted(TRAIN.iterdir())[:count]]
    from skimage import data

    return [
        data.astronaut().astype(np.float32) / 255,
        data.chelsea().astype(np.float32) / 255,
        data.coffee().astype(np.float32) / 255,
    ]


def median_ms(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    images = clean_images(20)
    pipeline = DegradationPipeline(min_ops=1, max_ops=3)

    def patch() -> np.ndarray:
        image = images[int(rng.integers(len(images)))]
        y = int(rng.integers(0, image.shape[0] - 128))
        x = int(rng.integers(0, image.shape[1] - 128))
        return image[y : y + 128, x : x + 128]

    for _ in range(50):  # warm caches (resize weights, allocator)
        pipeline(patch(), rng)
    per_patch = median_ms(lambda: pipeline(patch(), rng), args.repeats)
    big = cv2.resize(images[0], (512, 512), interpolation=cv2.INTER_AREA)
    rows = [f"| 128x128 patch, 1-3 random ops | {per_patch:.2f} | 5.00 |"]
    for name, op in OPS.items():
        params = [op.sample(rng) for _ in range(20)]
        index = iter(range(10**9))
        ms = median_ms(
            lambda op=op, params=params, index=index: op.apply(big, params[next(index) % 20]), 20
        )
        rows.append(f"| 512x512, {name} | {ms:.2f} | |")
    source = "BSD400" if TRAIN.exists() else "scikit-image samples"
    table = "\n".join(
        [
            f"Degradation engine speed, one core ({platform.processor() or platform.machine()}, "
            f"images: {source}, median of {args.repeats} patches / 20 runs per op)",
            "",
            "| what | median ms | target ms |",
            "|---|---:|---:|",
            *rows,
        ]
    )
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
