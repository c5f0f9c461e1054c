"""How well the white-noise level is known: the PCA measure against perception's read.

The 16 BSD400 photos every trainer holds out (``split_holdout``), whole, with white noise
of sigma 1-75 added in float (the denoising protocol), and again clipped and rounded to
8 bits as a file holds it; in colour, and made grey with one plane of noise. For each,
the error of ``white_noise_sigma`` (PCA of the colour patches; of a grey photo's weakly
textured ones, ``vlir.perception.noise_level``) and of perception's noise strength
against the true sigma: mean bias, mean absolute error, largest, and how many photos the
measure declined (too clipped: the pipeline fits the level to the clipped noise after a
first pass, ``censored_sigma``).

    python benchmarks/noise_level.py [--limit 16] [--versions colour,grey]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vlir.data import CleanImages
from vlir.io import grey_rgb
from vlir.perception import analyze
from vlir.perception.noise_level import white_noise_sigma
from vlir.pipeline import Restorer
from vlir.training.common import split_holdout

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"
SIGMAS = (1, 3, 5, 10, 15, 25, 35, 50, 75)


def errors(values: list[float], sigma: float) -> str:
    if not values:
        return "- | - | -"
    error = np.asarray(values) - sigma
    return f"{error.mean():+.2f} | {np.abs(error).mean():.2f} | {np.abs(error).max():.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16, help="the first N held-out photos")
    parser.add_argument("--versions", default="colour,grey", help="colour, grey")
    args = parser.parse_args()
    images = CleanImages(DATA)
    _, held = split_holdout(len(images), 16)
    held = held[: args.limit]
    perception = Restorer.from_pretrained().analyzer  # the reader the pipeline uses
    print(
        "| input | sigma | PCA bias | PCA mean error | PCA largest | declined | "
        "perception bias | perception mean error | perception largest |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    inputs = [(colour, bits) for colour in args.versions.split(",") for bits in ("float", "8-bit")]
    for colour, version in inputs:
        for sigma in SIGMAS:
            measured, read, declined = [], [], 0
            for index in held:
                clean = images.image(index)
                if colour == "grey":
                    clean = grey_rgb(clean)
                rng = np.random.default_rng(1000 + index)
                planes = 1 if colour == "grey" else 3  # a grey file's one plane, noise and all
                noise = rng.standard_normal((*clean.shape[:2], planes)).astype(np.float32)
                noisy = clean + noise * np.float32(sigma / 255)
                if version == "8-bit":
                    noisy = np.round(np.clip(noisy, 0, 1) * 255) / 255
                photo = torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)
                value = white_noise_sigma(photo)
                if value is None:
                    declined += 1
                else:
                    measured.append(value)
                with torch.inference_mode():
                    analysis = analyze(perception, photo[None].float())
                read.append(next(f.strength for f in analysis.findings if f.op == "noise"))
            label = version if colour == "colour" else f"grey {version}"
            print(
                f"| {label} | {sigma} | {errors(measured, sigma)} | {declined}/{len(held)} "
                f"| {errors(read, sigma)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
