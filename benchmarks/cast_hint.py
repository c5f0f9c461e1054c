"""A colour cast under noise: told to correct it, and read again once the noise is gone.

Noise hides a cast from the analyzer, which then finds the noise alone and sends the
photo to the noise expert. This draws the engine's white noise under its colour cast
("cast") and its noise alone ("noise") on photos and restores each automatically; where
the expert took the noise alone, it

- reads the expert's output again: the cast probability there and on the noisy photo,
  and the expert's output corrected by the restorer told "correct the color cast" (what
  a cast hint on the two readings would do: the table below, by threshold on their
  mean; for noise alone, what it costs where it misfires);
- for the cast draws, restores the photo told "correct the color cast; denoise": as
  the pipeline does (the expert, then the restorer on its output,
  ``Restorer._cast_conditioning``) and with the restorer alone (``noise_expert=False``: as
  the pipeline did before).

Choose on training photos (BSD400 but its held-out every 25th); ``--dataset CBSD68``
measures on photos never tuned on.

    python benchmarks/cast_hint.py --out local/cast-hint --stride 2 --part 0/2 &  # and 1/2
    python benchmarks/cast_hint.py --out local/cast-hint --summary
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vlir.degradations import DegradationPipeline
from vlir.evaluation import psnr
from vlir.io import load_image, to_tensor
from vlir.perception import Analysis, analyze
from vlir.pipeline import CAST_WORDS, Restorer
from vlir.training.common import split_holdout

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
KINDS = {"cast": ("noise", "color_cast"), "noise": ("noise",)}
NAMED = "correct the color cast; denoise"
THRESHOLDS = tuple(np.round(np.arange(0.3, 0.751, 0.05), 2))


def photos(dataset: str) -> list[Path]:
    """BSD400's training photos (its held-out every 25th left out), or an eval set's."""
    if dataset == "BSD400":
        files = sorted((SHARED / "train" / "BSD400").glob("*.jpg"))
        kept, _ = split_holdout(len(files), 16)
        return [files[index] for index in kept]
    return sorted((SHARED / "eval" / dataset).glob("*.png"))


def cast_probability(analysis: Analysis) -> float:
    return next(f.probability for f in analysis.findings if f.op == "color_cast")


def measure(restorer: Restorer, kind: str, degraded: np.ndarray, clean: np.ndarray) -> dict:
    automatic = restorer(degraded)
    found = {finding.op for finding in automatic.analysis.found}
    row: dict = {
        "found": sorted(found),
        "noisy_p": round(cast_probability(automatic.analysis), 4),
        "psnr": round(psnr(automatic.image, clean), 3),
        "expert": automatic.noise_sigma is not None and "color_cast" not in found,
    }
    if not row["expert"]:
        return row
    again = analyze(restorer.analyzer, to_tensor(automatic.image))
    corrected = restorer(automatic.image, prompt=CAST_WORDS)
    row["denoised_p"] = round(cast_probability(again), 4)
    row["corrected_psnr"] = round(psnr(corrected.image, clean), 3)
    if kind == "cast":
        named = restorer(degraded, prompt=NAMED)
        alone = restorer(degraded, prompt=NAMED, noise_expert=False)
        row["named_psnr"] = round(psnr(named.image, clean), 3)
        row["named_restorer_psnr"] = round(psnr(alone.image, clean), 3)
    return row


def run(args: argparse.Namespace) -> None:
    part, parts = (int(value) for value in args.part.split("/"))
    restorer = Restorer.from_pretrained()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = out / f"{args.dataset}-seed{args.seed}-part{part}of{parts}.jsonl"
    done = {json.loads(line)["key"] for line in rows.open()} if rows.exists() else set()
    files = photos(args.dataset)
    for index in range(0, len(files), args.stride)[part::parts]:
        clean = load_image(files[index]).rgb
        for kind in args.kinds.split(","):
            key = f"{files[index].stem}:{kind}"
            if key in done:
                continue
            rng = np.random.default_rng([args.seed, index, list(KINDS).index(kind)])
            ops = KINDS[kind]
            record = DegradationPipeline(ops, min_ops=len(ops), max_ops=len(ops)).sample(rng)
            with torch.inference_mode():
                row = measure(restorer, kind, record.apply(clean), clean)
            row = {"key": key, "kind": kind, "record": record.prompt().format(), **row}
            with rows.open("a") as file:
                file.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def summary(args: argparse.Namespace) -> None:
    rows = [
        json.loads(line)
        for file in sorted(Path(args.out).glob(f"{args.dataset}-*.jsonl"))
        for line in file.open()
    ]
    looked = {kind: [row for row in rows if row["kind"] == kind] for kind in KINDS}
    looked = {kind: [row for row in drawn if row["expert"]] for kind, drawn in looked.items()}
    for kind in KINDS:
        drawn = sum(row["kind"] == kind for row in rows)
        print(f"{kind}: {drawn} draws, {len(looked[kind])} to the expert with the noise alone")
    missed = looked["cast"]
    if missed:
        named = np.array([row["named_psnr"] for row in missed])
        alone = np.array([row["named_restorer_psnr"] for row in missed])
        expert = np.array([row["psnr"] for row in missed])
        print(
            f'\ncast missed, told "{NAMED}" ({len(missed)} draws): the restorer alone'
            f" {alone.mean():.2f} dB, the expert then the restorer {named.mean():.2f}"
            f" ({(named > alone).sum()} better, {(named < alone).sum()} worse, the worst"
            f" by {(named - alone).min():+.2f});"
            f" automatic (the expert alone) {expert.mean():.2f}"
        )
    print("\nA cast hint (not built): the expert's output corrected where the mean of the")
    print("two readings reaches the threshold; dB over the expert's output, in all.\n")
    print("| threshold | cast draws corrected | dB | noise alone corrected | dB |")
    print("|---:|---:|---:|---:|---:|")
    for threshold in THRESHOLDS:
        cells = []
        for kind in KINDS:
            hit = [
                row for row in looked[kind] if (row["noisy_p"] + row["denoised_p"]) / 2 >= threshold
            ]
            cells += [len(hit), sum(row["corrected_psnr"] - row["psnr"] for row in hit)]
        print(f"| {threshold:.2f} | {cells[0]} | {cells[1]:+.2f} | {cells[2]} | {cells[3]:+.2f} |")
    noise = sorted(looked["noise"], key=lambda row: -(row["noisy_p"] + row["denoised_p"]))
    print("\nnoise alone, highest mean p:")
    for row in noise[:6]:
        mean = (row["noisy_p"] + row["denoised_p"]) / 2
        print(
            f"  {row['key']} {mean:.3f} ({row['noisy_p']:.2f} noisy, {row['denoised_p']:.2f}"
            f" denoised): {row['psnr']:.2f} -> {row['corrected_psnr']:.2f} dB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of the draws' rows (resumes)")
    parser.add_argument("--dataset", default="BSD400", help="BSD400 (training) or an eval set")
    parser.add_argument("--kinds", default="cast,noise", help="cast, noise or both")
    parser.add_argument("--stride", type=int, default=1, help="every Nth photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", default="0/1", help="K/N: this process's share")
    parser.add_argument("--summary", action="store_true", help="summarise the rows in --out")
    args = parser.parse_args()
    if args.summary:
        summary(args)
        return
    if not (SHARED / "train").is_dir():
        raise SystemExit(f"{SHARED}: no data here (see ../shared/data/README)")
    torch.set_num_threads(1)
    run(args)


if __name__ == "__main__":
    main()
