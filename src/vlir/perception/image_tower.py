"""A small, CPU-fast convolutional image tower for perceiving degradations.

Degradations live in pixel statistics (noise in the finest scale, JPEG in 8x8
blocks, blur in missing high frequencies, haze and low light in global
contrast), so the tower keeps a full-resolution stem and summarises every
scale by the mean and standard deviation of its features. Content lives in
the coarsest map, whose positions become content tokens.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ImageTower(nn.Module):
    """Image [B, 3, H, W] -> (multi-scale statistics [B, S], coarsest map [B, C, H/16, W/16])."""

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 96, 128)) -> None:
        super().__init__()
        stem_width, *stage_widths = widths
        self.stem = nn.Sequential(nn.Conv2d(3, stem_width, 3, padding=1), nn.GELU())
        stages = []
        previous = stem_width
        for index, width in enumerate(stage_widths):
            # The /2 stage gets no residual block: at that size it would cost the most,
            # and the full-resolution stem already sees the finest scale.
            block = ResidualBlock(width) if index > 0 else nn.Identity()
            stages.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 3, stride=2, padding=1),
                    nn.GELU(),
                    block,
                )
            )
            previous = width
        self.stages = nn.ModuleList(stages)
        self.stats_dim = 2 * sum(widths)
        self.out_channels = previous

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(image * 2.0 - 1.0)
        stats = [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        for stage in self.stages:
            x = stage(x)
            stats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat(stats, dim=1), x
