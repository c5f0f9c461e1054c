"""How well perception names degradations and content, on images it never trained on.

On CBSD68 (in-project synthetic degradations, fixed seed): every image with
every single op, and 4 random 2-op mixtures per image.
- per-op detection F1 (single ops; mixtures), noise sigma MAE, JPEG quality MAE;
- recall of each single op by thirds of its strength parameter's range (strengths
  are drawn over the whole range, whose weak end is barely visible: sigma-2 noise);
- degradation text -> image retrieval: top-1 accuracy of the image's true op
  combination wording among all single-op and valid 2-op wordings;
- content retrieval: rank of the image's own caption among the 68 captions
  (recall@1, recall@5) from its degraded version;
- on how many photos as they are (no op) it finds something;
- which real photos in ../shared/data/samples are labelled correctly;
- analysis time per 481x321 image on this CPU.

``--grey`` turns every photo grey first (BT.601 luma in all three channels, as a grey file
is read; the engine then degrades it as one plane, as it does a black-and-white photo).

    python benchmarks/perception.py [--model perception] [--grey] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vlir.data import load_captions
from vlir.degradations import OPS
from vlir.io import grey_rgb, load_image, to_tensor
from vlir.perception import PerceptionModel, analyze
from vlir.perception.calibrate import degrade, f1, op_combinations
from vlir.perception.labels import combination_text
from vlir.text import MiniLMTextEncoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLES = {"rain": "rain", "haze": "haze", "lowlight": "low_light"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="perception")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--mixtures", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grey", action="store_true", help="every photo turned grey first")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = PerceptionModel.from_pretrained(args.model)
    ops = model.config.ops
    text = MiniLMTextEncoder()
    names = list(OPS)
    combos = op_combinations()
    wordings = [combination_text(c) for c in combos]
    wording_emb = text(wordings).pooled
    captions = load_captions(DATA / "captions" / "eval.tsv")
    paths = sorted((DATA / "eval" / "CBSD68").glob("*.png"))[: args.limit]
    caption_emb = text([captions[p.stem] for p in paths]).pooled
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list] = {"single": [], "mixture": []}
    content_ranks, seconds, clean_findings = [], [], []
    noise_err, jpeg_err, retrieval_hits = [], [], []
    by_strength: dict[str, list[tuple[float, bool]]] = {name: [] for name in names}
    for index, path in enumerate(paths):
        clean = grey_if(load_image(path).rgb, args.grey)
        # the photo as it is: anything found is false (no rng drawn, so the draws below
        # stay those of runs without this count)
        clean_findings.append([f.op for f in analyze(model, to_tensor(clean)).found])
        cases = [("single", (n,)) for n in names]
        mixtures = [c for c in combos if len(c) == 2]
        for pick in rng.choice(len(mixtures), args.mixtures, replace=False):
            cases.append(("mixture", mixtures[pick]))
        for kind, combo in cases:
            image, record = degrade(clean, combo, rng)
            start = time.perf_counter()
            result = analyze(model, image)
            seconds.append(time.perf_counter() - start)
            present = {f.op: f.present for f in result.findings}
            truth = np.array([float(n in combo) for n in ops])
            found = np.array([float(present[n]) for n in ops])
            rows[kind].append((truth, found))
            strength = {f.op: f.strength for f in result.findings}
            if kind == "single":
                (step,) = record.steps
                value = getattr(step.params, OPS[step.op].strength)
                by_strength[step.op].append((float(value), present[step.op]))
            for step in record.steps:
                if step.op == "noise" and kind == "single":
                    noise_err.append(abs(strength["noise"] - step.params.sigma))
                if step.op == "jpeg" and kind == "single":
                    jpeg_err.append(abs(strength["jpeg"] - step.params.quality))
            scores = result.perception.deg_embedding @ wording_emb.t()
            retrieval_hits.append(int(scores.argmax()) == combos.index(tuple(combo)))
            if kind == "single" and combo == ("noise",):
                similarity = result.perception.content_embedding @ caption_emb.t()
                order = similarity[0].argsort(descending=True).tolist()
                content_ranks.append(order.index(index) + 1)
    lines = [
        f"Perception on CBSD68 ({len(paths)} images{', turned grey' if args.grey else ''}; "
        f"in-project synthetic degradations, seed {args.seed}; model {args.model})",
        "",
        "| op | F1 single | F1 mixtures |",
        "|---|---:|---:|",
    ]
    singles = f1(*map(np.stack, zip(*rows["single"], strict=True)))
    mixed = f1(*map(np.stack, zip(*rows["mixture"], strict=True)))
    for i, name in enumerate(ops):
        lines.append(f"| {name} | {singles[i]:.3f} | {mixed[i]:.3f} |")
    lines.append(f"| **mean** | **{np.nanmean(singles):.3f}** | **{np.nanmean(mixed):.3f}** |")
    lines += [
        "",
        "Recall of single ops by thirds of the strength parameter's range:",
        "",
        "| op | parameter | first third | middle | last third |",
        "|---|---|---:|---:|---:|",
    ]
    for name, found in by_strength.items():
        spec = OPS[name].range_of(OPS[name].strength)
        edges = np.linspace(spec.low, spec.high, 4)
        values, hits = np.array([v for v, _ in found]), np.array([h for _, h in found])
        third = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 2)
        cells = [
            f"{hits[third == t].mean():.2f} (n={int((third == t).sum())})"
            if (third == t).any()
            else "-"
            for t in range(3)
        ]
        lines.append(
            f"| {name} | {spec.name} {spec.low:g} to {spec.high:g} | {' | '.join(cells)} |"
        )
    ranks = np.array(content_ranks)
    lines += [
        "",
        f"- noise sigma MAE (single op): {np.mean(noise_err):.2f} (on 0-255)",
        f"- JPEG quality MAE (single op): {np.mean(jpeg_err):.2f}",
        f"- degradation wording -> image top-1 among {len(combos)} combinations: "
        f"{np.mean(retrieval_hits):.3f}",
        f"- content retrieval among {len(paths)} captions (from sigma-noise degraded images): "
        f"recall@1 {np.mean(ranks <= 1):.3f}, recall@5 {np.mean(ranks <= 5):.3f} "
        f"(chance: {1 / len(paths):.3f}, {5 / len(paths):.3f})",
        f"- photos as they are with a finding: {sum(map(bool, clean_findings))} of "
        f"{len(paths)} ({', '.join(sorted({op for ops in clean_findings for op in ops})) or '-'})",
        f"- analysis time per 481x321 image: {np.median(seconds) * 1000:.0f} ms median "
        f"({torch.get_num_threads()} threads)",
        "",
        "Real photos (../shared/data/samples):",
        "",
        "| photo | expected | found | prompt |",
        "|---|---|---|---|",
    ]
    for folder, expected in SAMPLES.items():
        for path in sorted((DATA / "samples" / folder / "input").glob("*")):
            result = analyze(model, to_tensor(grey_if(load_image(path).rgb, args.grey)))
            found = [f.op for f in result.found]
            mark = "yes" if expected in found else "no"
            lines.append(
                f"| {folder}/{path.name} | {expected} | {', '.join(found) or '-'} "
                f"({mark}) | {result.prompt.format()} |"
            )
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")


def grey_if(rgb: np.ndarray, grey: bool) -> np.ndarray:
    """[H, W, 3] as it is, or its luma in all three channels (a grey file as read)."""
    return grey_rgb(rgb) if grey else rgb


if __name__ == "__main__":
    main()
