"""Blind motion deblurring: how close the estimated kernel comes to the true one.

On photos blurred by the engine's camera shake (the ``motion_blur`` task, seed 0),
PSNR to the sharp photo of: the blurred input; Wiener deconvolution with the true
kernel; Wiener with the kernel ``vlir.deconvolution`` estimates from the blurred photo
alone; and Richardson-Lucy with the true kernel (the restore benchmark's baseline).
Seconds per estimate. The estimator's settings were chosen on ``--dataset BSD400
--stride 33`` (12 training photos); CBSD68 is the held-out check.

    python benchmarks/deconvolution.py [--dataset CBSD68] [--limit 10] [--stride 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vlir.deconvolution import estimate_motion_kernel, wiener_deconvolve
from vlir.evaluation import parse_task, psnr
from vlir.evaluation.baselines import get_method
from vlir.evaluation.tasks import dataset_images

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="CBSD68", help="eval/NAME, or BSD400 (train)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--stride", type=int, default=1, help="every Nth photo")
    args = parser.parse_args()
    folder = DATA / ("train" if args.dataset == "BSD400" else "eval") / args.dataset
    task = parse_task("motion_blur")
    richardson_lucy = get_method("richardson_lucy")
    images = dataset_images(folder)
    rows, seconds = [], []
    for index in range(0, len(images), args.stride)[: args.limit]:
        sample, target = task.make(images[index], folder, 0, index)
        kernel = sample.kernel()
        assert kernel is not None
        start = time.perf_counter()
        estimate = estimate_motion_kernel(sample.degraded)
        seconds.append(time.perf_counter() - start)
        row = [
            psnr(sample.degraded, target),
            psnr(np.clip(wiener_deconvolve(sample.degraded, kernel), 0, 1), target),
            psnr(np.clip(wiener_deconvolve(sample.degraded, estimate), 0, 1), target),
            psnr(np.clip(richardson_lucy(sample), 0, 1), target),
        ]
        rows.append(row)
        length = sample.record.steps[0].params.length  # type: ignore[attr-defined]
        cells = " ".join(f"{value:6.2f}" for value in row)
        print(f"{images[index].stem:>10} length {length:2d}: {cells}", flush=True)
    means = " / ".join(f"{value:.2f}" for value in np.mean(rows, axis=0))
    print(
        f"{args.dataset}, {len(rows)} photos, PSNR input / Wiener true kernel / Wiener "
        f"estimated / Richardson-Lucy true kernel: {means}; {np.median(seconds):.2f} s per "
        "estimate (median)"
    )


if __name__ == "__main__":
    main()
