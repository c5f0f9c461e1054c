"""The refiner's building blocks: per-pixel normalisation, time-conditioned residual
blocks and the time embedding (diffusers' sinusoidal ``Timesteps`` + MLP).

Everything here is local (no statistic over the whole map), so a tile refines
exactly as it would inside the whole image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from vlir.restoration.blocks import channel_norm


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each pixel (NAFNet's LayerNorm2d): tile-independent."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W]
        return channel_norm(x, self.weight, self.bias)


class TimeEmbedding(nn.Module):
    """sigma in [0, 1] -> [B, dim]; diffusers' blocks, fed ``1000 * sigma`` like its schedulers."""

    def __init__(self, dim: int, frequencies: int = 64) -> None:
        super().__init__()
        self.sinusoid = Timesteps(frequencies, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.mlp = TimestepEmbedding(frequencies, dim)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:  # [B] -> [B, dim]
        return self.mlp(self.sinusoid(1000 * sigma).to(sigma.dtype))


class TimeBlock(nn.Module):
    """Residual conv block; the time embedding scales and shifts its middle features."""

    def __init__(self, channels: int, time_dim: int) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.to_scale_shift = nn.Linear(time_dim, 2 * channels)
        self.norm2 = ChannelNorm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.to_scale_shift(F.silu(time)).chunk(2, dim=-1)  # [B, C] each
        h = self.norm2(h) * (1 + scale[..., None, None]) + shift[..., None, None]
        return x + self.conv2(F.silu(h))


def modulate(x: torch.Tensor, gamma_beta: torch.Tensor | None) -> torch.Tensor:
    """SPIRE's fusion of control features: ``x * (1 + gamma) + beta``, per pixel and channel.

    gamma_beta [B, 2C, H, W] (the adaptor's output for this level), or None: unchanged.
    """
    if gamma_beta is None:
        return x
    gamma, beta = gamma_beta.chunk(2, dim=1)
    return x * (1 + gamma) + beta
