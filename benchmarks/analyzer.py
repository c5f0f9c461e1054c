"""Which perception (and which decision thresholds) serves the restorer best.

The analyzer decides the automatic prompt, so its mistakes cost PSNR in ways F1 does
not weigh: a false "haze" dehazes a clean photo. Compared on the 16 BSD400 photos held
out of training (never an eval set), twice each with a random 1-3 op record (seed 0),
restored by the shipped restorer untiled.

    python benchmarks/analyzer.py perception path/to/other-perception [...]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("analyzers", nargs="+", help="perception checkpoints (names or folders)")
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--rounds", type=int, default=2)
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


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
