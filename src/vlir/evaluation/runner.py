"""The benchmark loop: identical cached inputs for every method, resumable results.

Degraded inputs are cached per (dataset, task, seed), so every method, in this
run or a later one, sees the same bytes. Each (method, image) result is a small
JSON file written when it finishes; an interrupted run picks up where it
stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlir.errors import VlirError
from vlir.evaluation.baselines import Method, Sample, get_method
from vlir.evaluation.metrics import psnr, psnr_gt_mean, ssim
from vlir.evaluation.tasks import Task, dataset_images
from vlir.io import Image, save_image, write_atomic

PSNR_CAP = 100.0
"""An output equal to its target after 8-bit rounding (a faint blur undone exactly) has an
infinite PSNR; in a mean over images it counts as 100 dB, so the mean stays a number."""


@dataclass
class MethodResult:
    name: str
    oracle: bool
    per_image: list[dict] = field(default_factory=list)

    def mean(self, key: str) -> float:
        """The mean over images; a PSNR counts at most ``PSNR_CAP``. NaN where only some
        images have the key (results resumed from a run that did not measure it): a mean
        over some of the images would read as one over all of them."""
        if any(key in row for row in self.per_image) and not all(
            key in row for row in self.per_image
        ):
            return float("nan")
        values = [row[key] for row in self.per_image if row.get(key) is not None]
        if key.startswith("psnr"):
            values = [min(value, PSNR_CAP) for value in values]
        return float(np.mean(values)) if values else float("nan")


@dataclass
class BenchmarkResult:
    task: Task
    dataset: Path
    seed: int
    methods: list[MethodResult]
    out_dir: Path
    images: list[str]


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "vlir" / "eval"


def cached_sample(
    task: Task, dataset: Path, path: Path, index: int, seed: int, cache: Path
) -> tuple[Sample, np.ndarray]:
    """The degraded sample (from the cache when present) and its ground truth."""
    key = hashlib.sha1(str(dataset.resolve()).encode()).hexdigest()[:8]
    folder = cache / f"{dataset.name}-{key}" / f"{task.name}-seed{seed}"
    file = folder / f"{path.stem}.npz"
    sample, target = task.make(path, dataset, seed, index)
    if file.exists():
        with np.load(file) as stored:
            degraded = stored["degraded"]
        return Sample(sample.name, degraded, sample.record, sample.scale), target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.stem}.{os.getpid()}.npz"
    record = sample.record.to_json(indent=None) if sample.record else ""
    np.savez(tmp, degraded=sample.degraded, record=np.array(record))
    os.replace(tmp, file)
    return sample, target


def run_benchmark(
    task: Task,
    dataset: Path,
    methods: Sequence[str | Method],
    out_dir: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    cache: Path | None = None,
    no_reference: bool = False,
    on_step: Callable[[str, str], None] | None = None,
) -> BenchmarkResult:
    """Run every method on every image of ``dataset`` for ``task``; write per-image JSON."""
    _claim(out_dir, task, dataset, seed)
    resolved = [get_method(m) if isinstance(m, str) else m for m in methods]
    images = dataset_images(dataset)[:limit]
    cache = cache or default_cache()
    results = [MethodResult(m.name, m.oracle) for m in resolved]
    for index, path in enumerate(images):
        sample, target = cached_sample(task, dataset, path, index, seed, cache)
        for method, result in zip(resolved, results, strict=True):
            done = out_dir / "results" / method.name / f"{path.stem}.json"
            if done.exists():
                result.per_image.append(json.loads(done.read_text()))
            else:
                result.per_image.append(
                    _run_one(method, sample, target, task, out_dir, no_reference, done)
                )
            if on_step:
                on_step(method.name, path.stem)
    return BenchmarkResult(task, dataset, seed, results, out_dir, [p.stem for p in images])


def _claim(out_dir: Path, task: Task, dataset: Path, seed: int) -> None:
    """Tie ``out_dir`` to one (task, dataset, seed) so resuming never mixes runs."""
    identity = {"task": task.name, "dataset": str(dataset.resolve()), "seed": seed}
    marker = out_dir / "run.json"
    if marker.exists():
        if json.loads(marker.read_text()) != identity:
            raise VlirError(
                f"{out_dir} holds results of another run ({marker.read_text().strip()}); "
                "use a new --out folder"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(marker, json.dumps(identity).encode(), overwrite=True)


def _run_one(
    method: Method,
    sample: Sample,
    target: np.ndarray,
    task: Task,
    out_dir: Path,
    no_reference: bool,
    done: Path,
) -> dict:
    start = time.perf_counter()
    output = method(sample)
    seconds = time.perf_counter() - start
    if output.shape != target.shape:
        raise ValueError(f"{method.name} returned {output.shape}, expected {target.shape}")
    row = {
        "image": sample.name,
        "psnr": psnr(output, target, channel=task.channel, shave=task.shave),
        "ssim": ssim(output, target, channel=task.channel, shave=task.shave),
        "seconds": seconds,
        "megapixels": output.shape[0] * output.shape[1] / 1e6,
    }
    if "low_light" in task.degradations:
        row["psnr_gt_mean"] = psnr_gt_mean(output, target, channel=task.channel, shave=task.shave)
    if no_reference:
        from vlir.evaluation.no_reference import brisque, niqe

        row["niqe"], row["brisque"] = niqe(output), brisque(output)
    save_image(
        out_dir / "outputs" / method.name / f"{sample.name}.png", Image(rgb=output), overwrite=True
    )
    done.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(done, json.dumps(row).encode(), overwrite=True)
    return row
