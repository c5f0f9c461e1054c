"""Classical baselines under the evaluation harness: the protocol check and synthetic tasks.

Proves the protocol against published numbers (CBSD68 sigma 25 identity / BM3D /
NLM; LIVE1 q10 JPEG on Y; Set5 x4 bicubic), then runs the in-project synthetic
tasks (fixed seed) with every classical baseline meant for them.

    pip install -e ".[baselines]"      # BM3D (non-commercial licence)
    python benchmarks/classical.py --out benchmarks/results/classical
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vlir.evaluation import baselines_for, parse_task, run_benchmark
from vlir.evaluation.report import write_sheet, write_tables

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"

RUNS = [
    ("denoise:25", "CBSD68", ["identity", "bm3d", "nlm"]),
    ("jpeg-y:10", "LIVE1", ["identity"]),
    ("sr:4", "Set5", ["identity", "bicubic"]),
    ("sr:4", "Set14", ["identity", "bicubic"]),
    ("rain", "CBSD68", None),
    ("haze", "CBSD68", None),
    ("low_light", "CBSD68", None),
    ("motion_blur", "CBSD68", None),
    ("blur+noise", "CBSD68", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/classical"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N images per set")
    parser.add_argument("--only", default=None, help="run only tasks containing this text")
    args = parser.parse_args()
    tables = []
    for task_text, dataset, methods in RUNS:
        if args.only and args.only not in task_text:
            continue
        task = parse_task(task_text)
        names = methods or [m for m in baselines_for(task.degradations) if m != "bm3d"]
        out = args.out / f"{dataset}-{task.name}"
        start = time.time()
        result = run_benchmark(task, DATA / dataset, names, out, seed=args.seed, limit=args.limit)
        table = write_tables(result)
        write_sheet(result, 3)
        tables.append(table.read_text())
        print(f"{dataset} {task.name}: {time.time() - start:.0f} s", flush=True)
    summary = args.out / "summary.md"
    summary.write_text("\n\n".join(tables))
    print(summary.read_text())


if __name__ == "__main__":
    main()
