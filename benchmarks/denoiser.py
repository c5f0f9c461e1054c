"""The noise expert against the restorer on photos neither trained on.

The 16 BSD400 photos every trainer holds out (``split_holdout``), whole, with white noise
of sigma 15, 25 and 50 (float, the denoising protocol; a grey version as one plane), each
restored automatically with the restorer alone (``noise_expert=False``) and through the
pipeline (the expert, where it takes the photo). PSNR to the clean photo; how many photos
the expert took, and on how many it beat the restorer.

    python benchmarks/denoiser.py [--denoiser denoiser] [--model restorer]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vlir.data import CleanImages
from vlir.evaluation import psnr
from vlir.io import grey_rgb
from vlir.pipeline import Restorer
from vlir.training.common import split_holdout

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denoiser", default="denoiser", help="shipped name or folder")
    parser.add_argument("--model", default="restorer", help="the restorer beside it")
    args = parser.parse_args()
    images = CleanImages(DATA)
    _, held = split_holdout(len(images), 16)
    restorer = Restorer.from_pretrained(args.model, denoiser=args.denoiser)
    print("| version | sigma | input | restorer | expert | expert ran | expert better |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for version in ("colour", "grey"):
        for sigma in (15, 25, 50):
            scores: dict[str, list[float]] = {"input": [], "restorer": [], "expert": []}
            ran = 0
            for index in held:
                clean = images.image(index)
                planes = 3
                if version == "grey":
                    clean, planes = grey_rgb(clean), 1
                rng = np.random.default_rng(1000 + index)
                noise = rng.standard_normal((*clean.shape[:2], planes)).astype(np.float32)
                noisy = clean + noise * np.float32(sigma / 255)
                scores["input"].append(psnr(noisy, clean))
                alone = restorer(noisy, noise_expert=False).image
                scores["restorer"].append(psnr(alone, clean))
                result = restorer(noisy)
                scores["expert"].append(psnr(result.image, clean))
                ran += result.noise_sigma is not None
            better = sum(e > r for e, r in zip(scores["expert"], scores["restorer"], strict=True))
            means = " | ".join(f"{np.mean(v):.2f}" for v in scores.values())
            print(f"| {version} | {sigma} | {means} | {ran}/16 | {better}/16 |", flush=True)


if __name__ == "__main__":
    main()
