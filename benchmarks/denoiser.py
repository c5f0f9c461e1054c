"""The noise expert against the restorer on photos neither trained on.

The 16 BSD400 photos every trainer holds out (``split_holdout``), whole, with white noise
of sigma 15, 25 and 50 (float, the denoising protocol; a grey version as one plane), and
with shot noise of peak 10, 30, 100 and 300 (the engine's ``shot_noise`` op, which the
expert takes through the Anscombe transform), each restored automatically with the
restorer alone (``noise_expert=False``) and through the pipeline (the expert, where it
takes the photo). PSNR to the clean photo; how many photos the expert took, and on how
many it beat the restorer. ``cast``: a colour cast (the engine's op, drawn per photo)
under white noise of sigma 15 and 50, restored with the words "denoise", so the target
is the cast photo; the expert takes those where the cast is found too
(``SEEN_THROUGH``), and the rest as white noise alone.

    python benchmarks/denoiser.py [--denoiser denoiser] [--model restorer]
        [--noise white,shot,cast] [--limit 16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vlir.data import CleanImages
from vlir.degradations import get_op
from vlir.evaluation import psnr
from vlir.io import grey_rgb
from vlir.pipeline import Restorer
from vlir.training.common import split_holdout

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denoiser", default="denoiser", help="shipped name or folder")
    parser.add_argument("--model", default="restorer", help="the restorer beside it")
    parser.add_argument("--noise", default="white,shot,cast", help="white, shot, cast")
    parser.add_argument("--limit", type=int, default=16, help="the first N held-out photos")
    args = parser.parse_args()
    images = CleanImages(DATA)
    _, held = split_holdout(len(images), 16)
    held = held[: args.limit]
    restorer = Restorer.from_pretrained(args.model, denoiser=args.denoiser)
    rows = []
    if "white" in args.noise:
        rows += [
            (version, "sigma", level) for version in ("colour", "grey") for level in (15, 25, 50)
        ]
    if "shot" in args.noise:
        rows += [("colour", "peak", level) for level in (10, 30, 100, 300)]
    if "cast" in args.noise:
        rows += [("cast", "sigma", level) for level in (15, 50)]
    shot, cast = get_op("shot_noise"), get_op("color_cast")
    print("| version | level | input | restorer | expert | expert ran | expert better |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for version, parameter, level in rows:
        scores: dict[str, list[float]] = {"input": [], "restorer": [], "expert": []}
        ran = 0
        for index in held:
            clean = grey_rgb(images.image(index)) if version == "grey" else images.image(index)
            words = "denoise" if version == "cast" else None
            if version == "cast":  # the target keeps the cast
                clean = cast.apply(clean, cast.sample(np.random.default_rng(index)))
            if parameter == "peak":
                noisy = shot.apply(clean, shot.params_type(peak=float(level), seed=index))
            else:
                planes = 1 if version == "grey" else 3
                rng = np.random.default_rng(1000 + index)
                noise = rng.standard_normal((*clean.shape[:2], planes)).astype(np.float32)
                noisy = clean + noise * np.float32(level / 255)
            scores["input"].append(psnr(noisy, clean))
            alone = restorer(noisy, prompt=words, noise_expert=False).image
            scores["restorer"].append(psnr(alone, clean))
            result = restorer(noisy, prompt=words)
            scores["expert"].append(psnr(result.image, clean))
            ran += result.noise_sigma is not None
        better = sum(e > r for e, r in zip(scores["expert"], scores["restorer"], strict=True))
        means = " | ".join(f"{np.mean(v):.2f}" for v in scores.values())
        count = len(held)
        print(
            f"| {version} | {parameter} {level} | {means} | {ran}/{count} | {better}/{count} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
