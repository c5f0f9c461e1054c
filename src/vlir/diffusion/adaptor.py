"""SPIRE's ControlNet-style adaptor, with VLMIR's cross-attention to the perception tokens.

A trainable copy of the frozen prior's encoder (initialised from it, as
ControlNet does) reads the noisy image plus a *hint*: the restorer's output and
the degraded input. At its bottleneck it cross-attends to the degradation and
content tokens (VLMIR: the denoiser takes the vision-language embeddings by
cross-attention), and the restoration prompt's vector scales and shifts every
level (SPIRE's modulation). For each level it predicts per-pixel gamma and
beta for the prior's features (``blocks.modulate``), through zero-initialised
1x1 convs: at the start the prior runs unchanged, and only the adaptor trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlir.conditioning import Conditioning
from vlir.diffusion.prior import PriorConfig, PriorEncoder
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
    hint_channels: int = 6
    """Restored image and degraded input, stacked."""
    sigma0: float = 0.2
    """The noise level refinement starts from (its strength); training used this value."""
    residual: bool = True
    """Estimate the clean image as the restorer's output plus what the adaptor changes in
    the prior's estimate (steered minus unsteered): an untrained adaptor returns the
    restorer's output exactly, so refinement can only learn to add to it. Costs a
    second, unsteered pass of the prior per step."""
    restorer: str = "restorer"
    """The restorer whose outputs this refiner learned to refine."""
    perception: str = "perception"
    text_encoder: str = "minilm"
    """The towers whose tokens the adaptor was trained with (the restorer's)."""

    @property
    def prior_config(self) -> PriorConfig:
        return PriorConfig(self.widths, self.blocks, self.time_dim, self.token_dim)

    @property
    def multiple(self) -> int:
        return self.prior_config.multiple


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
        self.token_attention = CrossAttentionBlock(widths[-1], config.token_dim)
        self.prompt_modulation = nn.ModuleList(
            ModulationFusion(config.token_dim, w) for w in widths
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
        """x [B, 3, H, W], sigma [B], hint [B, 6, H, W] (all model space)
        -> gamma/beta maps [B, 2C, h, w] per level, skips first, bottleneck last."""
        time = self.encoder.time(sigma)
        skips, h = self.encoder(x, time, self.hint(hint))
        tokens = torch.cat([conditioning.deg_tokens, conditioning.content_tokens], dim=1)
        mask = None
        if conditioning.content_mask is not None:
            ones = torch.ones(conditioning.deg_tokens.shape[:2], device=tokens.device)
            mask = torch.cat([ones, conditioning.content_mask.to(ones.dtype)], dim=1)
        h = self.token_attention(h, tokens, mask)
        features = [*skips, h]
        return [
            head(modulation(f, conditioning.prompt_vector))
            for f, modulation, head in zip(
                features, self.prompt_modulation, self.to_gamma_beta, strict=True
            )
        ]
