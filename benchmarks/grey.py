"""Black-and-white photos: what the analyzer reads in them, and automatic restoration.

Every ``--stride``th BSD400 training photo (never an eval set), in colour and turned grey
(BT.601 luma in all three channels, as a grey file is read), under each of ``OPS``.
The engine degrades a grey photo as one plane (grey noise, a one-channel JPEG), so both
carry the stated strength. Per op and version: on how many photos each op is found (the
op itself, and JPEG where it is not the op: the false finding grey noise gives), the
true op's strength as read, and PSNR to the clean photo of the degraded input and of
automatic restoration (``--restore``; the grey version's on its grey).

    python benchmarks/grey.py [--stride 20] [--restore] [--analyzer perception]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import parse_ops
from vlir.evaluation import psnr
from vlir.io import grey_rgb, load_image, to_tensor
from vlir.perception import analyze
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "BSD400"

OPS = (
    "noise sigma=10",
    "noise sigma=25",
    "noise sigma=50",
    "shot_noise peak=30",
    "jpeg quality=30",
    "blur sigma=1.5",
    "haze beta=1.0",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=20)
    parser.add_argument("--restore", action="store_true", help="also restore automatically")
    parser.add_argument("--analyzer", default="perception", help="perception name or folder")
    args = parser.parse_args()
    restorer = Restorer.from_pretrained(analyzer=args.analyzer)
    paths = sorted(DATA.glob("*.jpg"))[:: args.stride]
    print(f"{len(paths)} BSD400 photos (every {args.stride}th), colour / grey; {args.analyzer}\n")
    header = "| op | found | JPEG found (not the op) | strength read | input dB |"
    print(header + (" automatic dB |" if args.restore else ""))
    print("|---|---|---|---|---|" + ("---|" if args.restore else ""))
    for ops in OPS:
        name = ops.split()[0]
        found = {"colour": 0, "grey": 0}
        jpeg = {"colour": 0, "grey": 0}
        strength: dict[str, list[float]] = {"colour": [], "grey": []}
        before: dict[str, list[float]] = {"colour": [], "grey": []}
        after: dict[str, list[float]] = {"colour": [], "grey": []}
        for index, path in enumerate(paths):
            photo = load_image(path).rgb
            versions = {"colour": photo, "grey": grey_rgb(photo)}
            for version, clean in versions.items():
                degraded = np.clip(parse_ops(ops, np.random.default_rng(index)).apply(clean), 0, 1)
                with torch.inference_mode():
                    analysis = analyze(restorer.analyzer, to_tensor(degraded))
                reading = {finding.op: finding.strength for finding in analysis.found}
                found[version] += name in reading
                jpeg[version] += name != "jpeg" and "jpeg" in reading
                if name in reading:
                    strength[version].append(reading[name])
                before[version].append(psnr(degraded, clean))
                if args.restore:
                    after[version].append(psnr(restorer(degraded).image, clean))

        def pair(values: dict, form: str) -> str:
            return " / ".join(form.format(v) if v is not None else "-" for v in values.values())

        mean = {k: float(np.mean(v)) if v else None for k, v in strength.items()}
        row = (
            f"| {ops} | {pair(found, '{}')} | {pair(jpeg, '{}')} | {pair(mean, '{:.1f}')} | "
            f"{pair({k: np.mean(v) for k, v in before.items()}, '{:.2f}')} |"
        )
        if args.restore:
            row += f" {pair({k: np.mean(v) for k, v in after.items()}, '{:.2f}')} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
