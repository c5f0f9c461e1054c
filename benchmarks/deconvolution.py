"""Blind deblurring: how close the estimated kernel comes to the true one.

On photos blurred by the engine (``--task``: camera shake ``motion_blur``, ``defocus``
or Gaussian ``blur``; seed 0), PSNR to the sharp photo of: the blurred input; Wiener
deconvolution with the true kernel; Wiener with the kernel ``vlir.deconvolution``
estimates from the blurred photo alone; Richardson-Lucy with the true kernel (the
restore benchmark's baseline); and Wiener with the kernel the pipeline divides out when
the analyzer reads the photo (``Deconvolution.kernel``: for a Gaussian blur read alone,
the Gaussian of ``narrowest_gaussian``; the estimate where the pipeline would run the
restorer instead: the analyzer finds more than blur, or nothing and the estimate is
compact), and beside it how far the pipeline's estimate spreads against what the
reading's size implies (``IMPLAUSIBLE_SPREAD``). Both Wiener inverses use the op's balance
(``--balance`` to try another). PSNR is capped at 100 dB (a faint blur undone to the
same 8 bits reads infinite). Seconds per estimate. Settings were chosen on
``--dataset BSD400 --stride 33`` (13 training photos); CBSD68 is the held-out check.

    python benchmarks/deconvolution.py [--task motion_blur] [--dataset CBSD68] [--limit 10]
        [--stride 1] [--balance 0.01]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vlir.deconvolution import (
    IMPLAUSIBLE_SPREAD,
    WIENER_BALANCE_BY_BLUR,
    estimate_blur_kernel,
    kernel_spread,
    wiener_deconvolve,
)
from vlir.deconvolution.kernel_estimation import LARGEST_KERNEL
from vlir.degradations import RestorationPrompt, get_op
from vlir.evaluation import parse_task, psnr
from vlir.evaluation.baselines import get_method
from vlir.evaluation.runner import PSNR_CAP
from vlir.evaluation.tasks import dataset_images
from vlir.io import to_tensor
from vlir.perception import PerceptionModel, analyze
from vlir.pipeline import deconvolution_request

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="CBSD68", help="eval/NAME, or BSD400 (train)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--stride", type=int, default=1, help="every Nth photo")
    parser.add_argument("--task", default="motion_blur", choices=sorted(WIENER_BALANCE_BY_BLUR))
    parser.add_argument("--balance", type=float, default=None, help="default: the op's")
    args = parser.parse_args()
    balance = WIENER_BALANCE_BY_BLUR[args.task] if args.balance is None else args.balance
    folder = DATA / ("train" if args.dataset == "BSD400" else "eval") / args.dataset
    task = parse_task(args.task)
    op = get_op(args.task)
    richardson_lucy = get_method("richardson_lucy")
    images = dataset_images(folder)
    analyzer = PerceptionModel.from_pretrained("perception").eval()
    rows, seconds, deconvolved, ratios = [], [], 0, []
    for index in range(0, len(images), args.stride)[: args.limit]:
        sample, target = task.make(images[index], folder, 0, index)
        kernel = sample.kernel()
        assert kernel is not None
        start = time.perf_counter()
        estimate = estimate_blur_kernel(sample.degraded)
        seconds.append(time.perf_counter() - start)
        with torch.inference_mode():
            analysis = analyze(analyzer, to_tensor(sample.degraded))
        plan = deconvolution_request(RestorationPrompt.blind_prompt(), analysis)
        planned = None if plan is None else plan.kernel(sample.degraded)
        ratio = ""  # the pipeline's estimate's spread over what the reading implies
        if plan is not None and plan.sized is not None and plan.read_sigma is None:
            same = plan.side == LARGEST_KERNEL
            own = estimate if same else estimate_blur_kernel(sample.degraded, plan.side)
            ratios.append(kernel_spread(own) / plan.sized)
            ratio = f" spread/size {ratios[-1]:.2f}"
        pipeline = wiener_deconvolve(sample.degraded, estimate, balance)  # the restorer's case
        if plan is not None and planned is not None:
            deconvolved += 1
            pipeline = wiener_deconvolve(sample.degraded, planned[0], plan.balance)
        outputs = [
            sample.degraded,
            wiener_deconvolve(sample.degraded, kernel, balance),
            wiener_deconvolve(sample.degraded, estimate, balance),
            richardson_lucy(sample),
            pipeline,
        ]
        row = [min(psnr(np.clip(output, 0, 1), target), PSNR_CAP) for output in outputs]
        rows.append(row)
        strength = getattr(sample.record.steps[0].params, op.strength)
        cells = " ".join(f"{value:6.2f}" for value in row)
        print(f"{images[index].stem:>10} {op.strength} {strength:4g}: {cells}{ratio}", flush=True)
    means = " / ".join(f"{value:.2f}" for value in np.mean(rows, axis=0))
    print(
        f"{args.dataset}, {len(rows)} photos, PSNR input / Wiener true kernel / Wiener "
        f"estimated / Richardson-Lucy true kernel / Wiener the pipeline's kernel (on "
        f"{deconvolved}; the estimate on the rest): {means}; {np.median(seconds):.2f} s per "
        "estimate (median)"
    )
    if ratios:
        print(
            f"where the pipeline would divide out an estimate ({len(ratios)} photos), it "
            f"spreads at most {max(ratios):.2f} times what the reading implies (the "
            f"pipeline trusts up to {IMPLAUSIBLE_SPREAD:g})"
        )


if __name__ == "__main__":
    main()
