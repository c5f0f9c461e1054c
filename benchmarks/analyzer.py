"""Which perception (and which decision thresholds) serves the restorer best.

The analyzer decides the automatic prompt, so its mistakes cost PSNR in ways F1 does
not weigh: a false "haze" dehazes a clean photo. Compared on the 16 BSD400 photos held
out of training (never an eval set), twice each with a random 1-3 op record (seed 0),
restored by the shipped restorer untiled. ``--clean`` also restores the 82 photos of
CBSD68 and Set14 as they are, where anything found is a false finding: the mean PSNR
against the photo itself, and how many come out under 30 dB from themselves (a false
haze or colour cast takes a photo to 11-30 dB; a few such cost more than the mean shows).

    python benchmarks/analyzer.py perception path/to/other-perception [...] [--clean]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import DegradationPipeline
from vlir.evaluation import psnr
from vlir.io import load_image
from vlir.perception.calibrate import holdout_paths
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def held_out_photos(rounds: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, degraded) for the 16 BSD400 photos held out of training, ``rounds`` times
    over, each time with a fresh random 1-3 op record (one seed-0 stream)."""
    rng, pipeline = np.random.default_rng(0), DegradationPipeline(max_ops=3)
    held = []
    for _ in range(rounds):
        for path in holdout_paths(DATA / "train" / "BSD400", 16):
            clean = load_image(path).rgb
            held.append((clean, np.clip(pipeline.sample(rng).apply(clean), 0, 1)))
    return held


def clean_photos() -> list[np.ndarray]:
    """CBSD68 and Set14 as they are (measuring only: never trained or calibrated on)."""
    paths = sorted((DATA / "eval" / "CBSD68").glob("*.png"))
    paths += sorted((DATA / "eval" / "Set14" / "HR").glob("*.png"))
    return [load_image(path).rgb for path in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("analyzers", nargs="+", help="perception checkpoints (names or folders)")
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clean", action="store_true", help="also restore clean photos")
    args = parser.parse_args()
    held = held_out_photos(args.rounds)
    print(
        f"held-out BSD400, {len(held)} photos: input {np.mean([psnr(d, c) for c, d in held]):.2f}"
    )
    for analyzer in args.analyzers:
        restorer = Restorer.from_pretrained(args.model, analyzer=analyzer)
        scores = [psnr(restorer(degraded).image, clean) for clean, degraded in held]
        print(
            f"{analyzer}: {np.mean(scores):.2f} dB (worst photo {np.min(scores):.2f})", flush=True
        )
        if args.clean:
            kept = [psnr(restorer(photo).image, photo) for photo in clean_photos()]
            print(
                f"{analyzer}, {len(kept)} clean photos: {np.mean(np.minimum(kept, 60)):.2f} dB "
                f"from themselves (capped at 60), {sum(k < 30 for k in kept)} under 30 dB "
                f"(worst {np.min(kept):.2f})",
                flush=True,
            )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
