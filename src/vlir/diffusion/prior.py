"""SPIRE's frozen diffusion prior: a small pixel-space U-Net denoiser of clean photos.

Trained once on clean BSD400 crops with their captions (classifier-free: a
learned null token stands in when the caption is dropped), then frozen. It
predicts the flow-matching velocity (see ``flow.py``). An adaptor steers it by
handing ``control``: one gamma/beta map per encoder level and one for the
bottleneck, which modulate the skip features (``blocks.modulate``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from vlir.diffusion.blocks import TimeBlock, TimeEmbedding, modulate
from vlir.modeling import PretrainedModel
from vlir.restoration.blocks import CrossAttentionBlock


@dataclass(frozen=True)
class PriorConfig:
    widths: tuple[int, ...] = (32, 64, 96)
    """Channels per level; the last is the bottleneck (1/4 resolution for three levels)."""
    blocks: int = 1
    """TimeBlocks per encoder and decoder level (the bottleneck has two)."""
    time_dim: int = 128
    token_dim: int = 384
    """Width of caption tokens (MiniLM: 384)."""
    text_encoder: str = "minilm"

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.widths) - 1)


class PriorEncoder(nn.Module):
    """The prior's contracting half; ControlNet copies exactly this."""

    def __init__(self, config: PriorConfig, in_channels: int = 3) -> None:
        super().__init__()
        widths = config.widths
        self.time = TimeEmbedding(config.time_dim)
        self.intro = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.levels = nn.ModuleList(
            nn.ModuleList(TimeBlock(w, config.time_dim) for _ in range(config.blocks))
            for w in widths[:-1]
        )
        self.downs = nn.ModuleList(
            nn.Conv2d(a, b, 2, stride=2) for a, b in itertools.pairwise(widths)
        )
        self.middle = TimeBlock(widths[-1], config.time_dim)

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, added: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x [B, 3, H, W], time [B, T] -> (skips per level, bottleneck [B, C, H/m, W/m]).

        ``added`` [B, C0, H, W] joins after the intro conv (ControlNet's hint)."""
        h = self.intro(x)
        if added is not None:
            h = h + added
        skips = []
        for blocks, down in zip(self.levels, self.downs, strict=True):
            for block in blocks:
                h = block(h, time)
            skips.append(h)
            h = down(h)
        return skips, self.middle(h, time)


class PriorDenoiser(PretrainedModel):
    config_class = PriorConfig
    model_type = "prior"

    def __init__(self, config: PriorConfig) -> None:
        super().__init__(config)
        widths = config.widths
        self.encoder = PriorEncoder(config)
        self.null_token = nn.Parameter(torch.randn(1, 1, config.token_dim) * 0.02)
        self.caption_attention = CrossAttentionBlock(widths[-1], config.token_dim)
        self.middle = TimeBlock(widths[-1], config.time_dim)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2))
            for a, b in itertools.pairwise(widths)
        )[::-1]
        self.decoders = nn.ModuleList(
            nn.ModuleList(TimeBlock(w, config.time_dim) for _ in range(config.blocks))
            for w in widths[:-1]
        )[::-1]
        self.outro = nn.Conv2d(widths[0], 3, 3, padding=1)

    def caption_keys(
        self, tokens: torch.Tensor | None, mask: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The null token, followed by the caption's tokens where there is a caption."""
        null = self.null_token.expand(batch, 1, -1)
        ones = torch.ones(batch, 1, device=null.device)
        if tokens is None:
            return null, ones
        mask = torch.ones(tokens.shape[:2], device=null.device) if mask is None else mask
        return torch.cat([null, tokens.to(null.dtype)], 1), torch.cat([ones, mask.float()], 1)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        caption_tokens: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
        control: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x [B, 3, H, W] in [-1, 1] space at noise level sigma [B] -> velocity [B, 3, H, W].

        ``control``: len(widths) gamma/beta maps [B, 2C, h, w], skips first, bottleneck last.
        """
        time = self.encoder.time(sigma)
        skips, h = self.encoder(x, time)
        if control is not None:
            skips = [modulate(s, c) for s, c in zip(skips, control[:-1], strict=True)]
            h = modulate(h, control[-1])
        keys, mask = self.caption_keys(caption_tokens, caption_mask, x.shape[0])
        h = self.middle(self.caption_attention(h, keys, mask), time)
        for up, blocks, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            h = up(h) + skip
            for block in blocks:
                h = block(h, time)
        return self.outro(h)
