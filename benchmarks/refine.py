"""Diffusion refinement: does ``--refine`` improve the no-reference scores, and at what PSNR cost?

One run, same cached inputs for every row: CBSD68 mixtures (in-project
synthetic benchmarks, fixed seed) and the real photos of ../shared/data/samples,
each restored without and with refinement; PSNR/SSIM where there is a target,
NIQE and BRISQUE (lower is better) always; then the refiner's time per
megapixel for 1, 4 and 8 steps on this CPU. Comparison sheets are written
beside the tables (``sheet.html``).

    python benchmarks/refine.py --out local/refine [--limit 68] [--steps 4]
"""

from __future__ import annotations

import argparse
import base64
import io
import time
from pathlib import Path

import numpy as np
import torch

from vlir.evaluation import parse_task, psnr, run_benchmark, ssim
from vlir.evaluation.models import RestorerMethod
from vlir.evaluation.no_reference import brisque, niqe
from vlir.evaluation.report import summary_rows, write_sheet, write_tables
from vlir.io import load_image
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIXTURES = ["blur+noise", "noise+jpeg", "haze+noise", "low_light+blur"]


def mixtures(args: argparse.Namespace) -> list[dict]:
    plain = RestorerMethod(args.model, refiner=args.refiner)
    refined = RestorerMethod(args.model, refiner=args.refiner, refine_steps=args.steps)
    rows = []
    for text in MIXTURES:
        task = parse_task(text)
        out = args.out / f"CBSD68-{task.name}"
        result = run_benchmark(
            task,
            DATA / "eval" / "CBSD68",
            [plain, refined],
            out,
            limit=args.limit,
            no_reference=True,
        )
        write_tables(result)
        write_sheet(result, 3)
        for row in summary_rows(result):
            rows.append({"set": f"CBSD68 {task.name}", **row})
        print(f"done {task.name}", flush=True)
    return rows


def _thumbnail(image: np.ndarray, label: str) -> str:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    pil = PILImage.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    pil.thumbnail((320, 320))
    pil.save(buffer, "PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}"><figcaption>{label}</figcaption></figure>'
    )


def real_samples(args: argparse.Namespace, restorer: Restorer) -> list[dict]:
    """The real photos: restored, refined, and (where there is one) the target."""
    rows, figures = [], []
    for folder in ("rain", "haze", "lowlight"):
        for path in sorted((DATA / "samples" / folder / "input").glob("*")):
            image = load_image(path).rgb
            target_path = DATA / "samples" / folder / "target" / f"{path.stem}.png"
            target = load_image(target_path).rgb if target_path.exists() else None
            outputs = {
                "restored": restorer(image).image,
                "refined": restorer(image, refine=True, steps=args.steps, seed=0).image,
            }
            cells = [_thumbnail(image, f"{path.stem} input")]
            for name, output in outputs.items():
                row = {
                    "set": f"samples/{folder}",
                    "image": path.stem,
                    "method": name,
                    "niqe": niqe(output),
                    "brisque": brisque(output),
                    "psnr": psnr(output, target) if target is not None else float("nan"),
                    "ssim": ssim(output, target) if target is not None else float("nan"),
                }
                rows.append(row)
                label = f"{name}: NIQE {row['niqe']:.2f}, BRISQUE {row['brisque']:.1f}"
                if target is not None:
                    label += f", {row['psnr']:.2f} dB"
                cells.append(_thumbnail(output, label))
            if target is not None:
                cells.append(_thumbnail(target, "target"))
            figures.append(f"<div class='row'>{''.join(cells)}</div>")
    style = "figure{display:inline-block;margin:4px}.row{white-space:nowrap}"
    sheet = args.out / "samples-sheet.html"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    sheet.write_text(f"<html><style>{style}</style><body>{''.join(figures)}</body></html>\n")
    return rows


def speed(restorer: Restorer, steps_list: tuple[int, ...] = (1, 4, 8)) -> list[str]:
    """Seconds per megapixel of the refinement alone (total minus restoring) on a 481x321 photo."""
    image = load_image(next(iter(sorted((DATA / "eval" / "CBSD68").glob("*.png"))))).rgb
    megapixels = image.shape[0] * image.shape[1] / 1e6
    restorer(image, refine=True, steps=1)  # warm-up, loads the refiner

    def timed(**kwargs) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            restorer(image, **kwargs)
            best = min(best, time.perf_counter() - start)
        return best

    base = timed()
    lines = [
        f"{image.shape[1]}x{image.shape[0]} photo, {torch.get_num_threads()} threads; "
        f"restoring alone {base / megapixels:.2f} s/MP.",
        "",
        "| steps | refinement s/MP | total s/MP |",
        "|---:|---:|---:|",
    ]
    for steps in steps_list:
        total = timed(refine=True, steps=steps)
        lines.append(f"| {steps} | {(total - base) / megapixels:.2f} | {total / megapixels:.2f} |")
    return lines


def _table(rows: list[dict], keys: list[str]) -> list[str]:
    def fmt(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--refiner", default="refiner")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine"))
    parser.add_argument("--limit", type=int, default=None, help="images per CBSD68 task")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    restorer = Restorer.from_pretrained(args.model, refiner=args.refiner)
    sections = []
    mixture_rows = mixtures(args)
    sections.append(
        f"# CBSD68 mixtures, without and with refinement ({args.steps} steps, seed 0)\n\n"
        + "\n".join(
            _table(mixture_rows, ["set", "method", "images", "psnr", "ssim", "niqe", "brisque"])
        )
    )
    sample_rows = real_samples(args, restorer)
    means = []
    for group in sorted({(r["set"], r["method"]) for r in sample_rows}):
        chosen = [r for r in sample_rows if (r["set"], r["method"]) == group]
        means.append(
            {
                "set": group[0],
                "method": group[1],
                "images": len(chosen),
                **{
                    k: float(np.mean([r[k] for r in chosen]))
                    for k in ("psnr", "ssim", "niqe", "brisque")
                },
            }
        )
    sections.append(
        "# Real photos (../shared/data/samples)\n\n"
        + "\n".join(_table(means, ["set", "method", "images", "psnr", "ssim", "niqe", "brisque"]))
        + "\n\nPer image:\n\n"
        + "\n".join(_table(sample_rows, ["set", "image", "method", "psnr", "niqe", "brisque"]))
    )
    sections.append("# Refinement speed on this CPU\n\n" + "\n".join(speed(restorer)))
    report = "\n\n".join(sections)
    (args.out / "summary.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
