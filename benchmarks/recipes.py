"""The default model, the three seed-system recipes, the ablations and the best classical
baseline, in one table measured in one run on the same held-out inputs.

Tasks (never trained on; synthetic ones are in-project benchmarks with a fixed seed):
CBSD68 sigma 25, LIVE1 JPEG q20 (grey), CBSD68 rain / haze / low light / blur+noise.
Then, for every model that reads prompts, the prompt-control checks of the restorer
benchmark; and for every model, blur+noise restored with a semantic prompt written
about the damaged photo (where VLMIR's caption alignment should matter).

    python benchmarks/recipes.py --out local/recipes [--limit 12] [--ablation runs/ablation]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vlir.data import load_captions
from vlir.data.requests import low_quality_caption
from vlir.evaluation import baselines_for, parse_task, psnr, run_benchmark
from vlir.evaluation.models import RestorerMethod
from vlir.evaluation.report import summary_rows
from vlir.evaluation.tasks import dataset_images
from vlir.pipeline import Restorer

sys.path.insert(0, str(Path(__file__).parent))
from restore import prompt_control

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = [
    ("denoise:25", "CBSD68"),
    ("jpeg-y:20", "LIVE1"),
    ("rain", "CBSD68"),
    ("haze", "CBSD68"),
    ("low_light", "CBSD68"),
    ("blur+noise", "CBSD68"),
]
SYSTEMS = {
    "default": "restorer",
    "lmdir": "lmdir",
    "vlmir": "vlmir",
    "spire": "spire",
}
SLOW_BASELINES = {"bm3d"}  # ~15 min per task on 2 cores: restore.py --bm3d measures it


def models(args: argparse.Namespace) -> dict[str, str]:
    """Row label -> checkpoint: the systems, then every trained ablation variant."""
    rows = dict(SYSTEMS)
    if args.ablation is not None:
        for best in sorted(Path(args.ablation).glob("*/best")):
            rows[f"ablation: {best.parent.name}"] = str(best)
    return rows


def quality(args: argparse.Namespace, checkpoints: dict[str, str]) -> dict[str, dict[str, dict]]:
    """task -> row label -> {psnr, ssim, seconds/MP}; 'best classical' is chosen per task."""
    methods = []
    for label, path in checkpoints.items():
        method = RestorerMethod(path)
        method.name = label.replace("ablation: ", "ablation-")  # a folder name per row
        methods.append((label, method))
    table: dict[str, dict[str, dict]] = {}
    for task_text, dataset in TASKS:
        task = parse_task(task_text)
        started = time.time()
        baselines = [b for b in baselines_for(task.degradations) if b not in SLOW_BASELINES]
        result = run_benchmark(
            task,
            DATA / "eval" / dataset,
            [*baselines, *(m for _, m in methods)],
            args.out / f"{dataset}-{task.name}",
            limit=args.limit,
        )
        rows = {row["method"]: row for row in summary_rows(result)}
        column = f"{dataset} {task.name}"
        table[column] = {}
        classical = [r for name, r in rows.items() if not name.startswith(("identity",))]
        classical = [r for r in classical if r["method"].split(" ")[0] in baselines]
        best = max(classical, key=lambda r: r["psnr"]) if classical else None
        table[column]["input"] = rows["identity"]
        if best is not None:
            table[column][f"best classical: {best['method']}"] = best
        for label, method in methods:
            table[column][label] = rows[method.name]
        print(f"{column}: {time.time() - started:.0f} s", flush=True)
    return table


def render_quality(table: dict[str, dict[str, dict]], checkpoints: dict[str, str]) -> str:
    columns = list(table)
    header = "| row | " + " | ".join(columns) + " | s/MP (CBSD68 mean) |"
    lines = [header, "|---" * (len(columns) + 2) + "|"]
    labels = ["input", "best classical", *checkpoints]
    for label in labels:
        cells, times = [], []
        for column in columns:
            rows = table[column]
            key = next((k for k in rows if k == label or k.startswith(label + ":")), None)
            if key is None:
                cells.append("")
                continue
            row = rows[key]
            name = key.split(": ", 1)[1] if label == "best classical" else ""
            cells.append(f"{row['psnr']:.2f} / {row['ssim']:.3f}" + (f" ({name})" if name else ""))
            if column.startswith("CBSD68") and row["megapixels_per_second"] > 0:
                times.append(1 / row["megapixels_per_second"])
        speed = f"{np.mean(times):.1f}" if times and label not in ("input",) else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {speed} |")
    return "\n".join(lines)


def semantic_check(checkpoints: dict[str, str], limit: int) -> list[str]:
    """blur+noise on CBSD68, restored automatically with no semantic prompt, with the clean
    caption, and with a low-quality caption ("a blurry, noisy photo of ...")."""
    task = parse_task("blur+noise")
    dataset = DATA / "eval" / "CBSD68"
    captions = load_captions(DATA / "captions" / "eval.tsv")
    paths = dataset_images(dataset)[:limit]
    samples = [task.make(path, dataset, 0, index) for index, path in enumerate(paths)]
    lines = [
        "| model | no semantic prompt | clean caption | low-quality caption |",
        "|---|---|---|---|",
    ]
    for label, path in checkpoints.items():
        restorer = Restorer.from_pretrained(path)
        scores: dict[str, list[float]] = {"none": [], "clean": [], "lq": []}
        for (sample, target), image_path in zip(samples, paths, strict=True):
            caption = captions.get(f"eval/CBSD68/{image_path.name}", "a photo")
            rng = np.random.default_rng(len(scores["none"]))
            lq = low_quality_caption(caption, sample.record.names, rng)
            for key, semantic in (("none", None), ("clean", caption), ("lq", lq)):
                output = restorer(sample.degraded, semantic=semantic).image
                scores[key].append(psnr(output, target))
        lines.append(
            f"| {label} | "
            + " | ".join(f"{np.mean(scores[k]):.2f}" for k in ("none", "clean", "lq"))
            + " |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recipes"))
    parser.add_argument("--limit", type=int, default=12, help="images per task")
    parser.add_argument("--ablation", default="runs/ablation", help="ablation run folder")
    parser.add_argument("--control-images", type=int, default=6)
    args = parser.parse_args()
    if args.ablation and not Path(args.ablation).is_dir():
        print(f"no ablation runs in {args.ablation}: their rows are left out", flush=True)
        args.ablation = None
    checkpoints = models(args)
    started = time.time()
    table = quality(args, checkpoints)
    sections = [
        f"# Recipes and ablations ({args.limit} images per task, seed 0, "
        f"{torch.get_num_threads()} CPU threads)\n\nPSNR dB / SSIM; s/MP: seconds per "
        "megapixel, analysis included, mean over the CBSD68 tasks.\n\n"
        + render_quality(table, checkpoints)
    ]
    control = []
    for label, path in checkpoints.items():
        restorer = Restorer.from_pretrained(path)
        if not restorer.reads_prompts:
            control.append(f"## {label}\n\n- takes no restoration prompt (blind)")
            continue
        control.append(f"## {label}\n\n" + "\n".join(prompt_control(restorer, args.control_images)))
    sections.append("# Prompt control\n\n" + "\n\n".join(control))
    sections.append(
        f"# Semantic prompts (CBSD68 blur+noise, {args.limit} images, PSNR dB)\n\n"
        + "\n".join(semantic_check(checkpoints, args.limit))
    )
    minutes = (time.time() - started) / 60
    report = "\n\n".join(sections) + f"\n\n(whole run: {minutes:.0f} minutes)\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
