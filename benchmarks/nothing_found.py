"""Where the analyzer finds nothing: the photo as it is, the restorer's blind mode, or
what automatic restoration does.

Where the analyzer finds nothing, automatic restoration dehazes a photo that reads faintly
hazy (``HAZE_HINT``), deblurs one whose blur estimate reads blurred, and returns the rest
as they are (``Restoration.kept``; also one that reads enlarged). This compares that with
the photo as it is and with the restorer's blind mode ("remove all degradation") on BSD400
training photos (never an eval set): clean, with random single-op draws of the engine,
and with faint ops the analyzer tends to miss. For each kind of input, over the photos
where nothing was found: PSNR to the clean photo (capped: a clean photo kept is
infinitely close) and what automatic restoration did.

``--haze-stride N`` instead reads every Nth BSD400 photo under the engine's haze at beta
0.3-0.6 (the faint end, which the analyzer often misses): how many read as nothing found,
the haze probability of those, and, where it reaches ``HAZE_HINT``, the photo as it is,
blind, automatic ("dehaze") and "dehaze" with the beta the analyzer read.

``--clean-haze-stride N`` reads every Nth clean BSD400 photo in colour and turned grey
(BT.601 luma in all three channels): where nothing is found, how hazy it reads against
``HAZE_HINT`` (the hint is not taken on grey photos, which read hazier).

    python benchmarks/nothing_found.py --stride 20 --draws 4
    python benchmarks/nothing_found.py --haze-stride 4
    python benchmarks/nothing_found.py --clean-haze-stride 2
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import DegradationPipeline
from vlir.degradations.pipeline import parse_ops
from vlir.evaluation import psnr
from vlir.evaluation.tasks import dataset_images
from vlir.io import grey_rgb, load_image, to_tensor
from vlir.perception import analyze
from vlir.pipeline import HAZE_HINT, Restoration, Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

FAINT = (
    "noise sigma=1",
    "jpeg quality=92",
    "blur sigma=0.4",
    "haze beta=0.3 airlight=0.8",
    "haze beta=0.5 airlight=0.8",
    "rain density=0.002 length=10 angle=10 opacity=0.3",
    "color_cast temperature=0.1 tint=0.05",
)
"""Ops at the faint end of their ranges, where the analyzer misses some or most."""

CAP = 60.0
"""PSNRs over this count as this (a clean photo kept as it is is infinitely close)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--stride", type=int, default=20, help="every Nth BSD400 photo")
    parser.add_argument("--draws", type=int, default=4, help="random single-op draws a photo")
    parser.add_argument("--haze-stride", type=int, default=None, help="faint haze, every Nth")
    parser.add_argument(
        "--clean-haze-stride", type=int, default=None, help="clean, colour and grey, every Nth"
    )
    args = parser.parse_args()
    restorer = Restorer.from_pretrained(args.model)
    if args.clean_haze_stride:
        clean_haze(restorer, dataset_images(DATA / "train" / "BSD400")[:: args.clean_haze_stride])
        return
    if args.haze_stride:
        faint_haze(restorer, dataset_images(DATA / "train" / "BSD400")[:: args.haze_stride])
        return
    rng, pipeline = np.random.default_rng(0), DegradationPipeline(max_ops=1)
    paths = dataset_images(DATA / "train" / "BSD400")[:: args.stride]
    seen: dict[str, int] = defaultdict(int)
    scores: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    did: dict[str, list[str]] = defaultdict(list)
    for index, path in enumerate(paths):
        clean = load_image(path).rgb
        inputs = [("clean", clean)]
        for _ in range(args.draws):
            record = pipeline.sample(rng)
            inputs.append((f"random {record.steps[0].op}", record.apply(clean)))
        for text in FAINT:
            kind = "faint " + " ".join(text.split()[:2]).replace("=", " ")
            inputs.append((kind, parse_ops(text, rng).apply(clean)))
        for kind, photo in inputs:
            photo = np.clip(photo, 0, 1).astype(np.float32)
            seen[kind] += 1
            automatic = restorer(photo)
            if automatic.analysis.found:
                continue
            blind = restorer(photo, prompt="remove all degradation").image
            outputs = (photo, blind, automatic.image)
            scores[kind].append(tuple(min(psnr(out, clean), CAP) for out in outputs))
            did[kind].append(what_it_did(automatic))
        print(f"{index + 1}/{len(paths)} {path.stem}", flush=True)
    print(f"\n{len(paths)} BSD400 photos; dB to the clean photo (capped at {CAP:g}):\n")
    print("| input | nothing found / seen | as it is | blind | automatic | automatic did |")
    print("|---|---:|---:|---:|---:|---|")
    for kind in sorted(scores, key=lambda k: (k != "clean", k)):
        rows = np.array(scores[kind])
        counts = ", ".join(f"{how} {did[kind].count(how)}" for how in sorted(set(did[kind])))
        print(
            f"| {kind} | {len(rows)} / {seen[kind]} | {rows[:, 0].mean():.2f} | "
            f"{rows[:, 1].mean():.2f} | {rows[:, 2].mean():.2f} | {counts} |"
        )


def faint_haze(restorer: Restorer, paths: list[Path]) -> None:
    rng = np.random.default_rng(0)
    missed, hinted = [], []
    for path in paths:
        clean = load_image(path).rgb
        beta, airlight = rng.uniform(0.3, 0.6), rng.uniform(0.6, 1.0)
        text = f"haze beta={beta:.2f} airlight={airlight:.2f}"
        photo = np.clip(parse_ops(text, rng).apply(clean), 0, 1).astype(np.float32)
        automatic = restorer(photo)
        if automatic.analysis.found:
            continue
        haze = next(f for f in automatic.analysis.findings if f.op == "haze")
        missed.append(haze.probability)
        if automatic.hazy is None:
            continue
        outputs = (
            photo,
            restorer(photo, prompt="remove all degradation").image,
            automatic.image,
            restorer(photo, prompt=f"dehaze with beta {haze.strength:.2f}").image,
        )
        hinted.append([psnr(out, clean) for out in outputs])
        print(f"{path.stem} beta {beta:.2f}, read p={haze.probability:.2f}", flush=True)
    print(f"\n{len(paths)} BSD400 photos with haze of beta 0.3-0.6: nothing found on")
    print(f"{len(missed)}, their haze probability {np.round(sorted(missed), 2).tolist()}")
    if hinted:
        means = np.mean(hinted, axis=0)
        print(
            f"at HAZE_HINT {HAZE_HINT:g} or more: {len(hinted)}; as it is / blind / automatic "
            f"(dehaze) / dehaze with the beta read: {' / '.join(f'{m:.2f}' for m in means)} dB"
        )


def clean_haze(restorer: Restorer, paths: list[Path]) -> None:
    for kind in ("colour", "grey"):
        readings, found = [], 0
        for path in paths:
            photo = load_image(path).rgb
            if kind == "grey":
                photo = grey_rgb(photo)  # R = G = B
            pixels = to_tensor(photo)
            with torch.inference_mode():
                analysis = analyze(restorer.analyzer, pixels)
            if analysis.found:
                found += 1
                continue
            readings.append(next(f.probability for f in analysis.findings if f.op == "haze"))
        print(
            f"{len(paths)} clean BSD400 photos in {kind}: {found} with a finding; of the "
            f"{len(readings)} with none, haze reads up to {max(readings):.2f}, at HAZE_HINT "
            f"{HAZE_HINT:g} or more on {sum(r >= HAZE_HINT for r in readings)}",
            flush=True,
        )


def what_it_did(result: Restoration) -> str:
    if result.enlarged is not None:
        return "kept (enlarged)"
    if result.kept:
        return "kept"
    if result.hazy is not None:
        return "dehazed"
    return "deblurred" if result.kernel is not None else "restored"


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
