"""Enlarged or faintly blurred? What sets ``ENLARGED_HINT`` (vlir.pipeline).

An x2-enlarged photo the analyzer reads as clean estimates a blur kernel of 1.1-1.5 px,
as a faintly blurred one does. This reads BSD400 training photos clean, enlarged
(MATLAB bicubic down and up by 2, 3 and 4) and faintly to heavily blurred, and prints,
for each, how many the analyzer reads as nothing found and their downsampling
probability; ``--restore`` then restores the x2 photos read as nothing or as blur alone
each way (deconvolved as the pipeline did, the restorer, "upsample by 2x") against the
enlarged photo itself. Training photos only: the threshold is chosen here, not on a
benchmark.

    python benchmarks/enlarged.py --stride 10 --restore
    python benchmarks/enlarged.py --benchmarks   # which benchmark inputs the rule touches
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vlir import pipeline
from vlir.degradations import get_op, imresize
from vlir.evaluation import psnr
from vlir.io import load_image, to_tensor
from vlir.perception import PerceptionModel, analyze
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"
BLURS = ("blur", "defocus", "motion_blur")


def eight_bit(image: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)


def variants(clean: np.ndarray) -> dict[str, np.ndarray]:
    """The photo as it is, enlarged, and blurred, each saved to 8 bits."""
    out = {"clean": clean}
    for scale in (2, 3, 4):
        out[f"x{scale}"] = eight_bit(imresize(imresize(clean, 1 / scale), scale))
    gaussian, disk = get_op("blur"), get_op("defocus")
    for sigma in (0.8, 1.0, 1.3, 2.0, 3.0):
        out[f"gaussian {sigma}"] = eight_bit(gaussian.apply(clean, gaussian.params_type(sigma)))
    for radius in (1.0, 1.5, 2.0, 3.5):
        out[f"disk {radius}"] = eight_bit(disk.apply(clean, disk.params_type(radius)))
    return out


def benchmark_inputs(analyzer: PerceptionModel) -> None:
    """Every input of benchmarks/restore.py, and the clean sets as they are, that the
    rule leaves as it is (nothing found, read enlarged)."""
    from restore import DATA as EVAL  # benchmarks/ is on the path when run
    from restore import TASKS
    from vlir.evaluation import parse_task
    from vlir.evaluation.runner import cached_sample, default_cache
    from vlir.evaluation.tasks import dataset_images
    from vlir.pipeline import enlarged_hint

    for task_text, dataset in [*TASKS, ("clean", "CBSD68"), ("clean", "Set14"), ("clean", "LIVE1")]:
        touched, count = [], 0
        for index, path in enumerate(dataset_images(EVAL / dataset)):
            if task_text == "clean":
                image = load_image(path).rgb
            else:
                task = parse_task(task_text)
                sample, _ = cached_sample(task, EVAL / dataset, path, index, 0, default_cache())
                image = sample.degraded
                if sample.scale > 1:  # as the restorer method is given it
                    image = imresize(np.clip(image, 0, 1), sample.scale)
            pixels = to_tensor(image)
            with torch.inference_mode():
                hint = enlarged_hint(analyze(analyzer, pixels.float()))
            count += 1
            if hint is not None:
                touched.append(f"{path.stem} ({hint:.2f})")
        print(f"{dataset} {task_text}: {len(touched)} of {count} {' '.join(touched)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stride", type=int, default=10, help="every Nth BSD400 photo")
    parser.add_argument("--restore", action="store_true", help="restore the x2 ones each way")
    parser.add_argument(
        "--benchmarks", action="store_true", help="which benchmark inputs the rule touches"
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA}: no BSD400 here (see ../shared/data/README)")
    torch.set_num_threads(1)
    analyzer = PerceptionModel.from_pretrained("perception").eval()
    if args.benchmarks:
        benchmark_inputs(analyzer)
        return
    restorer = Restorer.from_pretrained() if args.restore else None
    hint = pipeline.ENLARGED_HINT
    readings: dict[str, list[tuple[bool, bool, float]]] = {}
    gains: dict[str, list[float]] = {"deconvolved": [], "restorer": [], "upsample by 2x": []}
    for path in sorted(DATA.iterdir())[:: args.stride]:
        clean = load_image(path).rgb
        height, width = clean.shape[:2]
        clean = clean[: height - height % 12, : width - width % 12]  # every scale divides
        for name, image in variants(clean).items():
            pixels = to_tensor(image)
            with torch.inference_mode():
                analysis = analyze(analyzer, pixels)
            found = {finding.op for finding in analysis.found}
            downsample = next(f.probability for f in analysis.findings if f.op == "downsample")
            blur_only = bool(found) and found <= set(BLURS)
            readings.setdefault(name, []).append((not found, blur_only, downsample))
            if restorer is None or name != "x2" or not (blur_only or not found):
                continue
            given = psnr(image, clean)
            # what ran before ENLARGED_HINT: the blind or found request, deconvolved
            request = analysis.prompt.format() if found else "remove all degradation"
            pipeline.ENLARGED_HINT = float("inf")
            deconvolved = restorer(image, prompt=request)
            pipeline.ENLARGED_HINT = hint
            runs = {
                "deconvolved": deconvolved,
                "restorer": restorer(image, prompt=request, deconvolve=False),
                "upsample by 2x": restorer(image, prompt="upsample by 2x"),
            }
            for way, result in runs.items():
                gains[way].append(psnr(result.image, clean) - given)
    print("| photos | n | nothing found | their downsampling p | blur alone: max p |")
    print("|---|---:|---:|---|---:|")
    for name, rows in readings.items():
        nothing = sorted(p for empty, _, p in rows if empty)
        blurred = [p for _, blur_only, p in rows if blur_only]
        span = f"{nothing[0]:.3f}-{nothing[-1]:.3f}" if nothing else "-"
        most = f"{max(blurred):.3f}" if blurred else "-"
        print(f"| {name} | {len(rows)} | {len(nothing)} | {span} | {most} |")
    if restorer is not None:
        print("\nx2 photos read as nothing or blur alone, dB against the enlarged photo:")
        for way, values in gains.items():
            worse = sum(value < 0 for value in values)
            print(f"  {way}: {np.mean(values):+.2f} ({worse} of {len(values)} worse)")


if __name__ == "__main__":
    main()
