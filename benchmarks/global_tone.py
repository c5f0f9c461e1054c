"""How much of a method's error is one global tone: read a finished benchmark folder again.

Dehazing and brightening guess numbers the photo barely holds (how bright an
under-exposed scene was, how bright and how thick the haze): a guess off by a few percent
costs a whole photo dBs while its detail, colour and noise are restored alike. This reads
the outputs ``benchmarks/restore.py`` saved for one task and prints, per method, the
plain PSNR and the PSNR after the output is refitted to the ground truth by one gain, and
by one gain and offset (least squares over all pixels and channels). Methods that agree
after the fit and differ before differ in that guess, not in restoring.

    python benchmarks/global_tone.py local/s15all/CBSD68-haze
    python benchmarks/global_tone.py local/s15all/CBSD68-low_light --per-image

The fits see the ground truth: they measure, they are not a method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vlir.evaluation import parse_task, psnr
from vlir.evaluation.tasks import dataset_images
from vlir.io import load_image


def refit(output: np.ndarray, target: np.ndarray, offset: bool) -> np.ndarray:
    """``output`` times the gain (plus the offset) that brings it nearest ``target``."""
    pixels = output.reshape(-1).astype(np.float64)
    columns = [pixels, np.ones_like(pixels)] if offset else [pixels]
    design = np.stack(columns, axis=1)  # [N, 1 or 2]
    coefficients = np.linalg.lstsq(design, target.reshape(-1).astype(np.float64), rcond=None)[0]
    return np.clip(design @ coefficients, 0.0, 1.0).reshape(output.shape).astype(np.float32)


def tone_scores(output: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """PSNR as it is, after a gain, after a gain and offset."""
    return (
        psnr(output, target),
        psnr(refit(output, target, offset=False), target),
        psnr(refit(output, target, offset=True), target),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="one task's folder of benchmarks/restore.py")
    parser.add_argument("--methods", help="comma-separated (default: every method saved)")
    parser.add_argument("--per-image", action="store_true")
    args = parser.parse_args()
    if not (args.folder / "run.json").exists():
        parser.error(f"{args.folder}: not a task folder of benchmarks/restore.py (no run.json)")
    run = json.loads((args.folder / "run.json").read_text())
    task, dataset = parse_task(run["task"]), Path(run["dataset"])
    if task.channel != "rgb" or task.shave:
        parser.error(f"{run['task']}: the fits are for full-colour tasks measured unshaved")
    saved = args.folder / "outputs"
    methods = args.methods.split(",") if args.methods else sorted(p.name for p in saved.iterdir())
    scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
    for index, path in enumerate(dataset_images(dataset)):
        files = {m: saved / m / f"{path.stem}.png" for m in methods}
        if not all(f.exists() for f in files.values()):
            break  # the benchmark's --limit: every method has the same first images
        _, target = task.make(path, dataset, run["seed"], index)
        cells = []
        for method, file in files.items():
            row = tone_scores(load_image(file).rgb, target)
            scores[method].append(row)
            cells.append(f"{method} " + " / ".join(f"{v:.2f}" for v in row))
        if args.per_image:
            print(f"{path.stem:10s} " + " | ".join(cells))
    count = len(next(iter(scores.values())))
    print(f"{run['task']}, {count} images: PSNR as it is / after a gain / after gain + offset")
    for method, rows in scores.items():
        plain, gain, affine = np.mean(rows, axis=0)
        print(f"  {method:16s} {plain:6.2f} / {gain:6.2f} / {affine:6.2f}")


if __name__ == "__main__":
    main()
