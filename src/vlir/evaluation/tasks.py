"""Benchmark tasks: how a clean image becomes a degraded input and its ground truth.

Standard tasks follow the field's protocols so numbers compare with papers:

- ``denoise:25``  AWGN sigma 25 on 0-255, added in float, not clipped; PSNR on RGB.
- ``jpeg-y:10``   JPEG of the Y (grey) image at quality 10, PSNR on it (ARCNN/DnCNN).
- ``jpeg:10``     colour JPEG at quality 10 (what users have); PSNR on Y.
- ``sr:4``        HR mod-cropped to 4, MATLAB-bicubic LR (the dataset's own LR files
  when it has ``LR_bicubic_x4/`` and they match the HR's size); PSNR/SSIM on Y,
  border of 4 shaved.

Anything else is an in-project synthetic task made by the degradation engine
with a fixed seed, its parameters drawn per image from each op's range:
``rain``, ``haze``, ``low_light``, ``motion_blur``, or a mixture ``blur+noise``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from vlir.degradations import DegradationRecord, Step, get_op, imresize
from vlir.degradations.jpeg import jpeg_roundtrip
from vlir.errors import VlirError
from vlir.evaluation.baselines import Sample
from vlir.evaluation.metrics import modcrop, rgb_to_y, to_255
from vlir.io import load_image


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    """denoise, jpeg, jpeg-y, sr or synthetic."""
    level: int = 0
    ops: tuple[str, ...] = ()
    channel: str = "rgb"
    shave: int = 0
    standard: bool = False
    """A published protocol (comparable with papers) rather than an in-project one."""

    @property
    def scale(self) -> int:
        return self.level if self.kind == "sr" else 1

    @property
    def degradations(self) -> tuple[str, ...]:
        """The op names this task involves (to pick applicable baselines)."""
        return {
            "denoise": ("noise",),
            "jpeg": ("jpeg",),
            "jpeg-y": ("jpeg",),
            "sr": ("downsample",),
        }.get(self.kind, self.ops)

    def make(self, path: Path, dataset: Path, seed: int, index: int) -> tuple[Sample, np.ndarray]:
        """The degraded sample and its ground truth for one dataset image."""
        clean = load_image(path).rgb
        rng = np.random.default_rng([seed, index])
        if self.kind == "denoise":
            op = get_op("noise")
            record = DegradationRecord(
                (
                    Step(
                        "noise",
                        op.params_type(sigma=float(self.level), seed=int(rng.integers(2**31 - 1))),
                    ),
                )
            )
            return Sample(path.stem, record.apply(clean), record), clean
        if self.kind == "jpeg":
            return Sample(path.stem, jpeg_roundtrip(clean, self.level)), clean
        if self.kind == "jpeg-y":
            grey = np.round(rgb_to_y(to_255(clean))).astype(np.uint8)
            buffer = io.BytesIO()
            PILImage.fromarray(grey).save(buffer, format="JPEG", quality=self.level)
            compressed = np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())), np.float32)
            as_rgb = np.repeat((compressed / 255.0)[..., None], 3, axis=2)
            target = np.repeat((grey.astype(np.float32) / 255.0)[..., None], 3, axis=2)
            return Sample(path.stem, as_rgb), target
        if self.kind == "sr":
            target = modcrop(clean, self.level)
            given = dataset / f"LR_bicubic_x{self.level}" / path.name
            low = None
            if path.parent.name == "HR" and given.exists():
                low = load_image(given).rgb
                if low.shape[0] * self.level != target.shape[0] or (
                    low.shape[1] * self.level != target.shape[1]
                ):
                    # Some copies of Set14 pair an HR crop with LR made from the uncropped
                    # photo; that LR does not match its ground truth, so make our own.
                    low = None
            if low is None:
                low = np.round(np.clip(imresize(target, 1 / self.level), 0, 1) * 255) / 255
            return Sample(path.stem, low.astype(np.float32), scale=self.level), target
        steps = tuple(
            Step(name, get_op(name).sample(rng))
            for name in sorted(self.ops, key=lambda n: get_op(n).order)
        )
        record = DegradationRecord(steps)
        return Sample(path.stem, record.apply(clean), record), clean


def parse_task(text: str) -> Task:
    """``denoise:25``, ``jpeg:10``, ``jpeg-y:10``, ``sr:4``, ``rain`` or ``blur+noise``."""
    kind, _, value = text.strip().partition(":")
    if kind in ("denoise", "jpeg", "jpeg-y", "sr"):
        try:
            level = int(value)
        except ValueError:
            raise VlirError(f"task {text!r} needs a number, e.g. {kind}:25") from None
        if kind == "denoise":
            get_op("noise").range_of("sigma").check("noise", level)
            return Task(f"denoise-{level}", kind, level, standard=True)
        if kind in ("jpeg", "jpeg-y"):
            get_op("jpeg").range_of("quality").check("jpeg", level)
            channel = "grey" if kind == "jpeg-y" else "y"
            return Task(f"{kind}-{level}", kind, level, channel=channel, standard=True)
        if level not in (2, 3, 4):
            raise VlirError(f"sr scale must be 2, 3 or 4, got {level}")
        return Task(f"sr-x{level}", kind, level, channel="y", shave=level, standard=True)
    if value:
        raise VlirError(f"task {text!r}: synthetic tasks take no number (params are drawn)")
    ops = tuple(get_op(name).name for name in kind.split("+") if name)
    if not ops:
        raise VlirError("empty task")
    return Task("+".join(ops), "synthetic", ops=ops)


def dataset_images(dataset: Path) -> list[Path]:
    """The ground-truth images of a benchmark folder (its ``HR/`` for SR sets)."""
    if not dataset.is_dir():
        raise VlirError(f"{dataset}: no such dataset folder")
    root = dataset / "HR" if (dataset / "HR").is_dir() else dataset
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in suffixes)
    if not images:
        raise VlirError(f"{dataset}: no images found")
    return images
