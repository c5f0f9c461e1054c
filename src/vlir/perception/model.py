"""VLMIR's perception stage: degradation and clean-content embeddings of an image.

The image tower's features are split by a *degradation predictor* into a
degradation embedding (aligned with the text of what was done to the image)
and a clean-content embedding (aligned with the caption of the clean image,
though it only sees the degraded one). Heads on the degradation side name each
op and its strength. Both embeddings live in the text tower's space, so text
and images compare directly; their token sets feed the restorer's
cross-attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vlir.degradations import OP_NAMES
from vlir.errors import VlirError
from vlir.modeling import PretrainedModel, weights_fingerprint
from vlir.perception import signal_statistics as signals
from vlir.perception.image_head import ImageHead, evidence_dim, tile_weights
from vlir.perception.image_tower import ImageTower
from vlir.text import TextEncoder, load_text_encoder


@dataclass(frozen=True)
class PerceptionConfig:
    ops: tuple[str, ...] = OP_NAMES
    image_tower: str = "cnn"
    """"cnn" (the small tower shipped here) or a local Hugging Face CLIP folder."""
    widths: tuple[int, ...] = (16, 24, 48, 96, 128)
    hidden: int = 512
    embed_dim: int = 384
    """Width of the text tower (MiniLM: 384), so embeddings compare with text."""
    deg_tokens: int = 4
    text_encoder: str = "minilm"
    lora_rank: int = 8
    lora_alpha: int = 16
    train_size: tuple[int, int] = (96, 144)
    """Height, width of the training view; analysis tiles use the same size."""
    signal_statistics: bool = False
    """Also read the classical statistics of ``vlir.perception.signal_statistics`` (noise
    level per brightness, JPEG blockiness, interpolation periodicity, colour ratios):
    evidence that separates look-alikes the pooled CNN features confuse (Gaussian vs shot
    noise, mild blur vs upsampling, a colour cast vs a colourful scene)."""
    signal_features: int = signals.DIM
    """How many of ``signal_statistics.FEATURE_NAMES``, in order, it reads: statistics are
    only appended, so a model keeps reading the ones it was trained on. Configs saved
    before this field existed read the first ``signal_statistics.FIRST_DIM``."""
    image_head: int | None = None
    """Hidden width of the image-level head (``vlir.perception.image_head``; 0: linear),
    which decides what a whole photo holds from its tiles' logits and its whole-image
    statistics; None: no head, the mean of the tiles' probabilities decides."""
    head_blend: float = 0.0
    """With an image head, the weight of the tiles' mean logit in each op's decision (the
    head's own logit has the rest): 0, the head decides; 0.5, the two average."""
    tile_ops: tuple[str, ...] = ()
    """Ops the tiles' mean logit still decides alone with an image head. Low
    light: the engine darkens a whole frame evenly, so the whole photo's light statistics
    teach the head that bright highlights mean a normal exposure, which a real dark room
    lit by a lamp or a window breaks; its tiles read low light alone just as well."""
    thresholds: tuple[float, ...] | None = None
    """Per-op probability above which an op counts as found, calibrated on held-out
    training photos (``vlir.perception.calibrate``); None: 0.5 for every op."""
    grey_head: bool = False
    """A second image head, as wide as the first, decides grey photos (R = G = B exactly),
    fitted on photos turned grey (``fit_image_head --grey-head``) while the first head and
    its thresholds stay as they were. A grey photo carries no chroma: grey noise looks like
    colour noise after JPEG took the chroma noise away, so a head fitted on colour alone
    calls it JPEG, and one fitted on both versions lost a little on colour photos."""
    grey_thresholds: tuple[float, ...] | None = None
    """Per-op thresholds for a grey photo, set on grey draws by an image head's fit (the
    grey head's, or a head fitted on both versions with ``--grey-rounds``); None:
    ``thresholds``. One threshold for both versions let grey photos' readings (grey noise
    read as JPEG) set the colour photos' threshold."""
    grey_strength: dict[str, list[list[float]]] = field(default_factory=dict)
    """Per op, [reads, truths]: the monotone map ``analyze`` states a grey photo's strength
    through (``vlir.perception.grey_strength``: the tower, taught on colour noise, reads
    grey noise half as strong again); ops not named read as in colour."""


@dataclass
class Perception:
    """What perception says about a batch of images."""

    deg_embedding: torch.Tensor
    """[B, D] L2-normalised."""
    content_embedding: torch.Tensor
    """[B, D] L2-normalised."""
    deg_tokens: torch.Tensor
    """[B, K, D] for the restorer's degradation-aware cross-attention."""
    content_tokens: torch.Tensor
    """[B, h*w, D] for content-aware cross-attention."""
    presence_logits: torch.Tensor
    """[B, N] one per op."""
    strength: torch.Tensor
    """[B, N] in [0, 1], the op's strength parameter on its range."""


class AttentionPool(nn.Module):
    """One learned query attends over tokens: a content summary that can ignore clutter."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention(query, tokens, tokens, need_weights=False)
        return pooled[:, 0]


class PerceptionModel(PretrainedModel):
    config_class = PerceptionConfig
    model_type = "perception"
    full_precision = ("image_head.", "grey_image_head.")

    def __init__(self, config: PerceptionConfig) -> None:
        super().__init__(config)
        dim, hidden, ops = config.embed_dim, config.hidden, len(config.ops)
        if config.image_tower == "cnn":
            self.tower: nn.Module = ImageTower(tuple(config.widths))
        else:
            from vlir.perception.clip_tower import CLIPImageTower

            self.tower = CLIPImageTower(config.image_tower)
        self.trunk = nn.Sequential(
            nn.LayerNorm(self.tower.stats_dim),
            nn.Linear(self.tower.stats_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        if config.signal_statistics:
            # Standardised by running batch statistics (features mix logs, ratios, shares),
            # and added to the trunk's first layer from zero, so a model initialised from
            # one without them starts out saying exactly what it said before.
            if not 0 < config.signal_features <= signals.DIM:
                raise VlirError(f"perception config: signal_features must be 1 to {signals.DIM}")
            self.signal_norm = nn.BatchNorm1d(config.signal_features)
            self.signal_in = nn.Linear(config.signal_features, hidden)
            nn.init.zeros_(self.signal_in.weight)
            nn.init.zeros_(self.signal_in.bias)
        # The degradation predictor: its own view of the features per side.
        self.deg_tokens = nn.Linear(hidden, config.deg_tokens * dim)
        self.deg_project = nn.Linear(dim, dim)
        self.presence = nn.Linear(hidden, ops)
        self.strength = nn.Linear(hidden, ops)
        self.image_head: ImageHead | None = None
        if config.image_head is not None:
            if not config.signal_statistics:
                raise VlirError("perception config: the image head needs signal_statistics")
            evidence = evidence_dim(ops, config.signal_features)
            if not 0.0 <= config.head_blend <= 1.0:
                raise VlirError("perception config: head_blend must be from 0 to 1")
            weights = tile_weights(config.ops, config.tile_ops, config.head_blend)
            self.image_head = ImageHead(evidence, ops, config.image_head, weights)
        self.grey_image_head: ImageHead | None = None
        if config.grey_head:
            if self.image_head is None:
                raise VlirError("perception config: a grey head needs an image head")
            self.grey_image_head = ImageHead(evidence, ops, config.image_head, weights)
        unknown = sorted(set(config.tile_ops) - set(config.ops))
        if unknown:
            raise VlirError(f"perception config: tile_ops names an op it has not: {unknown[0]}")
        for name, knots in config.grey_strength.items():
            if name not in config.ops or len(knots) != 2 or len(knots[0]) != len(knots[1]):
                raise VlirError(f"perception config: grey_strength of {name!r} is not a map")
            if np.any(np.diff(knots[0]) <= 0):
                raise VlirError(f"perception config: grey_strength of {name!r} must read upward")
        self.content_tokens = nn.Sequential(
            nn.Conv2d(self.tower.out_channels, dim, 1), nn.GELU(), nn.Conv2d(dim, dim, 1)
        )
        self.content_pool = AttentionPool(dim)
        self.content_project = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1/0.07), as CLIP
        self.text_lora = nn.ParameterDict()
        """LoRA weights of the text tower (VLMIR's caption alignment), saved with the model."""

    @classmethod
    def config_from_dict(cls, values: dict[str, Any]) -> PerceptionConfig:
        if values.get("signal_statistics") and "signal_features" not in values:
            values = {**values, "signal_features": signals.FIRST_DIM}
        return super().config_from_dict(values)

    def decision_thresholds(self, grey: bool = False) -> np.ndarray:
        """[N] the probability at which each op counts as found (in a grey photo, ``grey``)."""
        thresholds = self.config.thresholds
        if grey and self.config.grey_thresholds is not None:
            thresholds = self.config.grey_thresholds
        if thresholds is None:
            return np.full(len(self.config.ops), 0.5)
        if len(thresholds) != len(self.config.ops):
            raise VlirError("perception config: one threshold per op is needed")
        return np.asarray(thresholds, dtype=np.float64)

    def forward(self, image: torch.Tensor) -> Perception:
        """``image`` [B, 3, H, W] in [0, 1] (any size: the tower pools globally)."""
        stats, feature_map = self.tower(image)  # [B, S], [B, C, h, w]
        if self.config.signal_statistics:
            first = self.trunk[1](self.trunk[0](stats))  # [B, hidden] before its GELU
            signal = signals.signal_statistics(image)  # [B, DIM]
            signal = signal[:, : self.config.signal_features]  # [B, F]
            first = first + self.signal_in(self.signal_norm(signal))
            hidden = self.trunk[2:](first)  # [B, hidden]
        else:
            hidden = self.trunk(stats)  # [B, hidden]
        batch, dim = image.shape[0], self.config.embed_dim
        deg_tokens = self.deg_tokens(hidden).view(batch, self.config.deg_tokens, dim)
        deg_embedding = F.normalize(self.deg_project(deg_tokens.mean(1)), dim=-1)
        content_tokens = self.content_tokens(feature_map).flatten(2).transpose(1, 2)  # [B, hw, D]
        content = self.content_project(self.content_pool(content_tokens))
        return Perception(
            deg_embedding=deg_embedding,
            content_embedding=F.normalize(content, dim=-1),
            deg_tokens=deg_tokens,
            content_tokens=content_tokens,
            presence_logits=self.presence(hidden),
            strength=torch.sigmoid(self.strength(hidden)),
        )

    # -- the text tower's LoRA lives in this checkpoint ---------------------------------

    def store_text_lora(self, lora: dict[str, torch.Tensor]) -> None:
        self.text_lora = nn.ParameterDict(
            {
                key.replace(".", "__"): nn.Parameter(value.detach().clone(), requires_grad=False)
                for key, value in lora.items()
            }
        )

    def text_lora_state(self) -> dict[str, torch.Tensor]:
        return {key.replace("__", "."): value.data for key, value in self.text_lora.items()}

    def aligned_text_encoder(self) -> TextEncoder:
        """The text tower with this checkpoint's caption-alignment LoRA (VLMIR): it reads
        "a noisy, blurry photo of a cat" close to "a cat", so a semantic prompt written
        about the damaged photo conditions like the clean caption."""
        text = load_text_encoder(self.config.text_encoder)
        if self.text_lora:
            text.add_lora(self.config.lora_rank, self.config.lora_alpha)
            missing = text.backbone.load_state_dict(self.text_lora_state(), strict=False)
            if missing.unexpected_keys:
                raise VlirError("this perception checkpoint's text LoRA does not fit its tower")
        return text.eval().requires_grad_(False)

    def load_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False
    ) -> Any:
        lora = {
            k[len("text_lora.") :]: v for k, v in state_dict.items() if k.startswith("text_lora.")
        }
        if lora:
            self.store_text_lora({k.replace("__", "."): v for k, v in lora.items()})
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def load_perception(name_or_path: str, fingerprint: str | None = None) -> PerceptionModel:
    """The perception checkpoint a restorer or adaptor names as the source of its tokens.

    Its tokens are only meaningful to a model trained on them: ``fingerprint`` (recorded
    at training) catches a checkpoint that has changed under the same name since."""
    model = PerceptionModel.from_pretrained(name_or_path)
    if fingerprint is not None and weights_fingerprint(model) != fingerprint:
        raise VlirError(
            f"perception {name_or_path!r} is not the one this model was trained with "
            f"(weights {weights_fingerprint(model)}, trained with {fingerprint}): point the "
            "model's config at those weights, or retrain it on these"
        )
    return model
