"""SPIRE's ControlNet-style adaptor, with VLMIR's cross-attention to the perception tokens.

A trainable copy of the frozen prior's encoder (initialised from it, as
ControlNet does) reads the noisy image plus a *hint*: the restorer's output and
the degraded input. At its bottleneck it cross-attends to the degradation and
content tokens (VLMIR: the denoiser takes the vision-language embeddings by
cross-attention), and the restoration prompt's vector scales and shifts every
level (SPIRE's modulation). For each level it predicts per-pixel gamma and
beta for the prior's features (``blocks.modulate``), through zero-initialised
1x1 convs: at the start the prior runs unchanged, and only the adaptor trains.

With no restorer (``restorer: null``) the same adaptor is a whole diffusion
restorer, as in VLMIR's stage 2 and SPIRE: the hint is the degraded image alone
and sampling starts from it. Which tokens it attends to and whether the prompt
modulates it are switches, so each seed system is a configuration of this one
module (``configs/vlmir.yaml``, ``configs/spire.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlir.conditioning import Conditioning
from vlir.diffusion.prior import PriorConfig, PriorEncoder
from vlir.errors import VlirError
from vlir.modeling import PretrainedModel
from vlir.restoration.blocks import CrossAttentionBlock, ModulationFusion


@dataclass(frozen=True)
class RefinerConfig:
    prior: str = "prior"
    """The frozen prior this adaptor steers (a shipped name or a folder)."""
    widths: tuple[int, ...] = (32, 64, 96)
    blocks: int = 1
    time_dim: int = 128
    """The prior's architecture, copied so the adaptor's encoder matches it."""
    token_dim: int = 384
    tokens: tuple[str, ...] = ("degradation", "content")
    """What the bottleneck cross-attends to: perception's "degradation" tokens, "content"
    tokens (perception's plus the semantic prompt's), the restoration "prompt" tokens
    (SPIRE reads its restoration prompt so); none: no cross-attention."""
    prompt_modulation: bool = True
    """The restoration prompt's vector scales and shifts every level (SPIRE)."""
    align_semantic: bool = False
    """Semantic prompts read by perception's caption-aligned text tower (VLMIR's LoRA)."""
    auto_prompt: str = "perception"
    """With no prompt given: "perception" writes it from what it found; "blind" says
    "remove all degradation" (SPIRE's blind mode)."""
    steps: int = 1
    """Sampling steps when the caller names none."""
    sigma0: float = 0.2
    """The noise level refinement starts from (its strength); training used this value."""
    residual: bool = True
    """Estimate the clean image as the restorer's output plus what the adaptor changes in
    the prior's estimate (steered minus unsteered): an untrained adaptor returns the
    restorer's output exactly, so refinement can only learn to add to it. Costs a
    second, unsteered pass of the prior per step."""
    restorer: str | None = "restorer"
    """The restorer whose outputs this refiner learned to refine; None: it restores the
    degraded input itself (a diffusion restorer)."""
    perception: str = "perception"
    text_encoder: str = "minilm"
    """The towers whose tokens the adaptor was trained with (the restorer's)."""
    perception_fingerprint: str | None = None
    """The perception's ``weights_fingerprint``, recorded at training."""

    @property
    def prior_config(self) -> PriorConfig:
        return PriorConfig(self.widths, self.blocks, self.time_dim, self.token_dim)

    @property
    def multiple(self) -> int:
        return self.prior_config.multiple

    @property
    def hint_channels(self) -> int:
        """Restored image and degraded input, stacked; the degraded input alone without
        a restorer."""
        return 3 if self.restorer is None else 6

    def __post_init__(self) -> None:
        unknown = set(self.tokens) - set(TOKEN_SOURCES)
        if unknown:
            raise VlirError(f"adaptor tokens must be among {TOKEN_SOURCES}, got {sorted(unknown)}")
        if self.auto_prompt not in ("perception", "blind"):
            raise VlirError(
                f"auto_prompt must be 'perception' or 'blind', not {self.auto_prompt!r}"
            )


TOKEN_SOURCES = ("degradation", "content", "prompt")


def gather_tokens(
    conditioning: Conditioning, sources: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The token set [B, N, D] named by ``sources`` and its mask [B, N] (None: all valid)."""
    parts = {
        "degradation": (conditioning.deg_tokens, None),
        "content": (conditioning.content_tokens, conditioning.content_mask),
        "prompt": (conditioning.prompt_tokens, conditioning.prompt_mask),
    }
    tokens, masks = zip(*(parts[source] for source in sources), strict=True)
    if all(mask is None for mask in masks):
        return torch.cat(tokens, dim=1), None
    filled = [
        torch.ones(t.shape[:2], device=t.device) if m is None else m.to(torch.float32)
        for t, m in zip(tokens, masks, strict=True)
    ]
    return torch.cat(tokens, dim=1), torch.cat(filled, dim=1)


def zero_conv(channels_in: int, channels_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(channels_in, channels_out, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class RefinerAdaptor(PretrainedModel):
    config_class = RefinerConfig
    model_type = "refiner"

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__(config)
        widths = config.widths
        self.encoder = PriorEncoder(config.prior_config)
        self.hint = nn.Sequential(
            nn.Conv2d(config.hint_channels, widths[0], 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(widths[0], widths[0], 3, padding=1),
            nn.SiLU(),
            zero_conv(widths[0], widths[0]),
        )
        self.token_attention = (
            CrossAttentionBlock(widths[-1], config.token_dim) if config.tokens else None
        )
        self.prompt_modulation = (
            nn.ModuleList(ModulationFusion(config.token_dim, w) for w in widths)
            if config.prompt_modulation
            else None
        )
        self.to_gamma_beta = nn.ModuleList(zero_conv(w, 2 * w) for w in widths)

    def init_from_prior(self, prior: nn.Module) -> None:
        """ControlNet's start: the adaptor's encoder is a copy of the prior's."""
        self.encoder.load_state_dict(prior.encoder.state_dict())

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        hint: torch.Tensor,
        conditioning: Conditioning,
    ) -> list[torch.Tensor]:
        """x [B, 3, H, W], sigma [B], hint [B, hint_channels, H, W] (all model space)
        -> gamma/beta maps [B, 2C, h, w] per level, skips first, bottleneck last."""
        time = self.encoder.time(sigma)
        skips, h = self.encoder(x, time, self.hint(hint))
        if self.token_attention is not None:
            tokens, mask = gather_tokens(conditioning, self.config.tokens)
            h = self.token_attention(h, tokens, mask)
        features = [*skips, h]
        if self.prompt_modulation is not None:
            features = [
                modulation(f, conditioning.prompt_vector)
                for f, modulation in zip(features, self.prompt_modulation, strict=True)
            ]
        return [head(f) for f, head in zip(features, self.to_gamma_beta, strict=True)]
