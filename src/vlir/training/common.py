"""What every trainer shares: recipes from YAML, torchrun set-up, resumable checkpoints, logs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from vlir.errors import VlirError

C = TypeVar("C")


@dataclass
class Recipe:
    """What every trainer's recipe holds; each trainer adds its own keys."""

    data: str = "../shared/data/train/BSD400"
    captions: str = "../shared/data/captions/train.tsv"
    out: str = "runs/model"
    steps: int = 4000
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 100
    p_clean: float = 0.1
    """Share of samples left clean, so models learn to say "nothing wrong"."""
    p_grey: float = 0.0
    """Share of training photos made grey first (black-and-white photos exist)."""
    max_ops: int = 3
    holdout: int = 16
    """BSD400 images kept out of training for validation (eval sets are never used)."""
    validate_every: int = 250
    checkpoint_minutes: float = 3.0
    log_every: int = 25
    seed: int = 0
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Model config overrides, e.g. {width: 32}."""
    init: str | None = None
    """Start a new run from these weights (a shipped name or a folder); ignored when
    OUT/checkpoint.pt exists (that run resumes instead)."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights (``vlir.training.ema``),
    validated and exported instead of the last step's; 0: off. 0.999 averages over
    about the last thousand steps. Trainers that do not support it refuse it."""


def split_holdout(count: int, holdout: int) -> tuple[list[int], list[int]]:
    """(training ids, held-out ids) of ``count`` images: every n-th image is held out."""
    held = list(range(0, count, max(1, count // holdout)))[:holdout]
    kept = set(held)
    return [i for i in range(count) if i not in kept], held


def load_recipe(cls: type[C], path: str | Path | None, overrides: Mapping[str, Any]) -> C:
    """A recipe dataclass from YAML plus ``key=value`` overrides (CLI flags; an override
    of None is a flag not given)."""
    values: dict[str, Any] = {}
    if path is not None:
        import yaml

        file = Path(path)
        if not file.exists():
            raise VlirError(f"{file}: no such recipe")
        loaded = yaml.safe_load(file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise VlirError(f"{file}: a recipe is a YAML mapping")
        values.update(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        section, dot, name = key.partition(".")
        if dot:  # "model.widths=[...]" sets one key of a nested mapping
            mappings = {f.name for f in dataclasses.fields(cls) if f.default_factory is dict}
            nested = values.get(section, {})
            if section not in mappings or not isinstance(nested, dict):
                raise VlirError(f"--set {key}: {section!r} is not a mapping of the recipe")
            values[section] = {**nested, name: value}
        else:
            values[key] = value
    return recipe_from_values(cls, values)


def recipe_from_values(cls: type[C], values: Mapping[str, Any]) -> C:
    """A recipe dataclass from a mapping, every key checked (``null`` stays None)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise VlirError(f"unknown recipe key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    return cls(**values)


def parse_settings(pairs: list[str] | None) -> dict[str, Any]:
    """``["crop=128", "amp=true"]`` -> ``{"crop": 128, "amp": True}`` (values read as YAML)."""
    import yaml

    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise VlirError(f"--set {pair!r}: expected KEY=VALUE")
        value = yaml.safe_load(text)
        if isinstance(value, str):
            # YAML 1.1 reads "3e-4" as text; a flag meant a number.
            with contextlib.suppress(ValueError):
                value = float(value)
        values[key.strip()] = value
    return values


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the torchrun group when launched by it: gloo on CPU, nccl on GPU."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return Distributed(device=device)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    return Distributed(rank, world, device)


def cosine_lr(step: int, total: int, warmup: int, base: float, floor: float = 0.02) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-save must not destroy the last good checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def resume(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, float, dict[str, Any] | None]:
    """Load ``OUT/checkpoint.pt`` into model and optimizer when there is one.

    Returns (step, best score, the checkpoint for trainer-specific extras), or (0, -1, None).
    """
    state = load_checkpoint(out / "checkpoint.pt")
    if state is None:
        return 0, -1.0, None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state.get("best", -1.0), state


def load_matching(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Start ``model`` from ``state`` when ``model`` has parts switched off (an ablation
    knocked out of a trained model): every tensor of ``model`` must come from ``state``;
    the ones ``model`` lacks are left out and their names returned."""
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    if missing:
        raise VlirError(f"the starting weights lack {len(missing)} tensors, e.g. {missing[0]}")
    for key, tensor in own.items():
        if tensor.shape != state[key].shape:
            raise VlirError(f"starting weights: {key} has shape {tuple(state[key].shape)}")
    model.load_state_dict({key: state[key] for key in own})
    return [key for key in state if key not in own]


def broadcast_weights(module: nn.Module, dist_info: Distributed) -> None:
    """Every torchrun process starts from the main process's weights."""
    if dist_info.world > 1:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


class Logger:
    """TensorBoard scalars (when installed) plus a JSON-lines log anyone can read."""

    def __init__(self, directory: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.lines = directory / "log.jsonl"
        self.writer = None
        self.start = time.time()
        if enabled:
            directory.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(directory / "tensorboard"))
            except ImportError:
                self.writer = None

    def log(self, step: int, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "minutes": round((time.time() - self.start) / 60, 2), **values}
        with open(self.lines, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
        print(
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )


class BatchStream(torch.utils.data.IterableDataset):
    """An endless stream of training batches from ``draw``, made in the training process
    or, with ``workers``, in processes that synthesise degradations while the network
    trains (``batch_stream``).

    Every worker draws from its own generator, seeded by (seed, rank, step it started at,
    worker), so a resumed run does not replay the batches it saw.
    """

    def __init__(self, seed: int, rank: int, start_step: int) -> None:
        self.seed, self.rank, self.start_step = seed, rank, start_step

    def draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        if info is not None:  # the workers are the parallelism: one thread each
            import cv2

            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        rng = np.random.default_rng([self.seed, self.rank, self.start_step, worker])
        while True:
            yield self.draw(rng)


def _as_is(batch: Any) -> Any:
    return batch


def batch_stream(dataset: BatchStream, workers: int) -> Iterator[Any]:
    """``dataset``'s batches, drawn here (``workers`` 0) or by that many processes ahead."""
    if workers == 0:
        return iter(dataset)
    # Spawned, not forked: a fork copies OpenCV's and PyTorch's thread pools' locks, held or
    # not, and the worker's cv2.setNumThreads then waits forever on one the parent held
    # (it hung the test suite once the parent had run OpenCV's threaded filters).
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        multiprocessing_context="spawn",
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4,
        persistent_workers=True,
        collate_fn=_as_is,
    )
    return iter(loader)


def out_of_time_everywhere(started: float, minutes: float | None, dist_info: Distributed) -> bool:
    """Whether the slice's time is up, decided by the main process for all of them:
    a process that stopped a step before the others would leave them waiting."""
    if minutes is None:
        return False
    flag = torch.tensor([float(time.time() - started > minutes * 60)], device=dist_info.device)
    if dist_info.world > 1:
        dist.broadcast(flag, 0)
    return bool(flag.item())


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    dist_info: Distributed,
    *,
    max_norm: float,
    average: Any = None,
) -> None:
    """One update as the trainers of a whole model make it: gradients averaged over the
    processes, clipped to ``max_norm``, the step, and the weight average (a
    ``WeightAverage``, or None) moved."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if dist_info.world > 1:
        average_gradients(model, dist_info.world)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    if average is not None:
        average.update(model)


def training_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, recipe: Any, average: Any = None
) -> dict[str, Any]:
    """What ``OUT/checkpoint.pt`` holds to resume (``Milestones.after_step`` adds the step
    and the best score): the weights, the optimizer, the recipe, the weight average."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "recipe": dataclasses.asdict(recipe),
        **({"ema": average.state_dict()} if average is not None else {}),
    }


def average_gradients(module: nn.Module, world: int) -> None:
    """Data parallelism by hand: the LoRA tower trains only every few steps, which
    DistributedDataParallel's bucketed hooks handle poorly; an all-reduce per
    gradient is what DDP computes, and at this model size it costs little."""
    for parameter in module.parameters():
        if parameter.requires_grad:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
            parameter.grad /= world


class Milestones:
    """What every trainer does after a step: validate, export the best, checkpoint.

    Validation runs every ``validate_every`` steps and at the end; a better score
    exports ``OUT/best``. A checkpoint (``OUT/checkpoint.pt``, plus ``OUT/last``)
    is written every ``minutes`` and at the end. Only the main process does any
    of it.
    """

    def __init__(
        self,
        out: Path,
        *,
        main: bool,
        validate_every: int,
        minutes: float,
        best: float,
        logger: Logger,
    ) -> None:
        self.out, self.main, self.logger = out, main, logger
        self.validate_every, self.minutes, self.best = validate_every, minutes, best
        self.last_save = time.time()

    @classmethod
    def for_recipe(cls, recipe: Recipe, *, main: bool, best: float, logger: Logger) -> Milestones:
        """Validation, export and checkpoint cadence as the recipe sets them, into its ``out``."""
        return cls(
            Path(recipe.out),
            main=main,
            validate_every=recipe.validate_every,
            minutes=recipe.checkpoint_minutes,
            best=best,
            logger=logger,
        )

    def after_step(
        self,
        step: int,
        total: int,
        *,
        validate: Callable[[], dict[str, float]],
        score: str,
        export: Callable[[Path], None],
        state: Callable[[], dict[str, Any]],
    ) -> None:
        if not self.main:
            return
        is_last = step == total
        if step % self.validate_every == 0 or is_last:
            metrics = validate()
            self.logger.log(step, metrics)
            if metrics[score] >= self.best:
                self.best = metrics[score]
                export(self.out / "best")
        if is_last or time.time() - self.last_save > self.minutes * 60:
            save_checkpoint(
                self.out / "checkpoint.pt", {**state(), "step": step, "best": self.best}
            )
            export(self.out / "last")
            self.last_save = time.time()
