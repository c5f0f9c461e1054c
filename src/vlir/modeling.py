"""The diffusers contract for every vlir model: a config dataclass, and
``save_pretrained(dir)`` / ``from_pretrained(dir_or_name)`` writing
``config.json`` + ``model.safetensors``.

Shipped checkpoints live in ``vlir/weights/NAME/`` and load by name with no
network; any other name is read as a local folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vlir.errors import VlirError

WEIGHTS_DIR = Path(__file__).parent / "weights"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedModel")


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped checkpoint by name (``perception``) or a local folder."""
    shipped = WEIGHTS_DIR / str(name_or_path)
    path = shipped if shipped.is_dir() and not Path(name_or_path).is_dir() else Path(name_or_path)
    if not (path / CONFIG_NAME).exists():
        known = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CONFIG_NAME).exists())
        raise VlirError(
            f"{name_or_path}: no vlir checkpoint there (need {CONFIG_NAME} + {WEIGHTS_NAME}); "
            f"shipped: {', '.join(known) or 'none'}"
        )
    return path


DEVICES = ("auto", "cpu", "cuda", "cuda:N")
"""What ``resolve_device`` takes."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Where vlir's networks run: ``auto`` is the first CUDA GPU where torch can use one,
    else the CPU. A device that is not here is refused in one line, before any work,
    rather than by torch's traceback at the first tensor moved. Apple's MPS is refused:
    the restorer's tiled statistics are summed in float64, which MPS lacks."""
    text = str(name).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise VlirError(f"unknown device {name!r} (one of: {', '.join(DEVICES)})") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise VlirError(f"device {name!r} is not supported (one of: {', '.join(DEVICES)})")
    if not torch.cuda.is_available():
        raise VlirError(f"device {name!r}: torch sees no CUDA GPU here (use cpu or auto)")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise VlirError(f"device {name!r}: this machine has {count} CUDA GPU(s), from cuda:0")
    index = torch.cuda.current_device() if device.index is None else device.index
    return torch.device("cuda", index)


def weights_fingerprint(model: PretrainedModel) -> str:
    """A short hash of a model's saved tensors (as float32, so a half-precision copy
    loaded back hashes alike): what a model trained on another's outputs records, so that
    a checkpoint which has changed under the same name is caught, not silently used."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_to_save().items()):
        tensor = value.detach().cpu()
        tensor = tensor.float() if tensor.is_floating_point() else tensor
        digest.update(key.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class PretrainedModel(nn.Module):
    """Base of vlir models: holds ``config`` and saves/loads it with the weights."""

    config_class: ClassVar[type]
    model_type: ClassVar[str]
    full_precision: ClassVar[tuple[str, ...]] = ()
    """Prefixes of tensors ``save_pretrained(dtype=...)`` never casts: small ones that need the
    precision (an image head's standardisation statistics)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def state_to_save(self) -> dict[str, torch.Tensor]:
        """Tensors written to ``model.safetensors`` (override to leave frozen parts out)."""
        return self.state_dict()

    def save_pretrained(
        self, directory: str | os.PathLike[str], *, dtype: torch.dtype | None = None
    ) -> Path:
        """``dtype=torch.float16`` halves a shipped checkpoint; loading casts back."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model_type": self.model_type, **dataclasses.asdict(self.config)}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        tensors = {}
        for key, value in self.state_to_save().items():
            value = value.detach().cpu()
            cast = dtype is not None and value.is_floating_point()
            if cast and not key.startswith(self.full_precision):
                value = value.to(dtype)
            tensors[key] = value.contiguous()
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        return directory

    @classmethod
    def config_from_dict(cls, values: dict[str, Any]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls.config_class)}
        clean = {}
        for key, value in values.items():
            if key in fields:
                clean[key] = tuple(value) if isinstance(value, list) else value
        return cls.config_class(**clean)

    @classmethod
    def from_pretrained(
        cls: type[M], name_or_path: str | os.PathLike[str] = "", **overrides: Any
    ) -> M:
        path = resolve_checkpoint(name_or_path or cls.model_type)
        values = json.loads((path / CONFIG_NAME).read_text())
        found = values.pop("model_type", cls.model_type)
        if found != cls.model_type:
            raise VlirError(f"{path} holds a {found!r} model, not {cls.model_type!r}")
        model = cls(cls.config_from_dict({**values, **overrides}))
        state = load_file(str(path / WEIGHTS_NAME))
        missing, unexpected = model.load_state_dict(state, strict=False)
        expected = set(model.state_to_save())
        if unexpected or (set(missing) & expected):
            raise VlirError(
                f"{path}: weights do not match the config "
                f"(missing {sorted(set(missing) & expected)[:3]}, unexpected {unexpected[:3]})"
            )
        model.eval()
        return model
