"""The noise expert: a small NAFNet-style U-Net given the noise level (FFDNet's map).

Where white noise is all a request removes, the pipeline hands the photo to this network
instead of the conditioned restorer (``vlir.pipeline``), as it hands a blur alone to
deconvolution. Why a second network: the all-in-one restorer spends its capacity on
eleven ops and its cross-attention makes every CPU step slow, so briefly trained it
stays more than a dB behind CBM3D on noise; one CPU session trains a small denoiser to
within a few tenths of it (DESIGN.md), and it resumes across sessions.

The level is an input, not a guess: a map of sigma beside the photo, as FFDNet. So the
words keep their meaning: "denoise with sigma 15" on sigma-25 noise removes less, and an
automatic request gives the level perception read. The network predicts a residual
added to the input; its blocks are the restorer's (``NAFBlock``), unmodulated, with
NAFNet's per-pixel normalisation so a tile normalises as the whole photo does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlir.modeling import PretrainedModel
from vlir.restoration.blocks import NAFBlock
from vlir.restoration.local_statistics import window_at

SIGMA_SCALE = 50.0
"""The map holds sigma / SIGMA_SCALE (sigma on the 0-255 scale): inputs near 1."""


@dataclass(frozen=True)
class DenoiserConfig:
    width: int = 32
    """Channels at full resolution; doubled at each down-sampling."""
    encoder_blocks: tuple[int, ...] = (1, 1, 2)
    bottleneck_blocks: int = 2
    decoder_blocks: tuple[int, ...] = (1, 1, 1)
    max_sigma: float = 75.0
    """The largest level trained on (the engine's noise range): the map is capped there."""
    statistics_window: int | None = None
    """Channel attention averages over this many pixels around each position instead of
    the whole map (TLC, ``local_statistics``; set it to the training crop): trained on
    64-px crops, the expert reads a whole photo 0.03 dB better so (CBSD68, sigma 15).
    Its normalisation is per pixel already. None: the whole map."""

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (the pipeline pads)."""
        return 2 ** len(self.encoder_blocks)

    def window_at(self, level: int) -> int | None:
        """``statistics_window`` in pixels of the map ``level`` down-samplings deep."""
        return window_at(self.statistics_window, level)


def _stage(channels: int, blocks: int, window: int | None) -> nn.ModuleList:
    return nn.ModuleList(
        NAFBlock(channels, 1, modulated=False, window=window, per_pixel_norm=True)
        for _ in range(blocks)
    )


class DenoiserModel(PretrainedModel):
    config_class = DenoiserConfig
    model_type = "denoiser"

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__(config)
        if len(config.decoder_blocks) != len(config.encoder_blocks):
            raise ValueError("a denoiser needs as many decoder stages as encoder stages")
        width = config.width
        self.intro = nn.Conv2d(4, width, 3, padding=1)  # the photo and its sigma map
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        channels = width
        for level, blocks in enumerate(config.encoder_blocks):
            self.encoders.append(_stage(channels, blocks, config.window_at(level)))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        depth = len(config.encoder_blocks)
        self.bottleneck = _stage(channels, config.bottleneck_blocks, config.window_at(depth))
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for index, blocks in enumerate(config.decoder_blocks):
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(_stage(channels, blocks, config.window_at(depth - 1 - index)))
        self.outro = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """[B, 3, H, W] (sides multiples of ``config.multiple``), the noise level on the
        0-255 scale (a number, or [B] per image) -> the denoised [B, 3, H, W]."""
        level = torch.as_tensor(sigma, dtype=image.dtype, device=image.device)
        level = level.clamp(0, self.config.max_sigma).reshape(-1, 1, 1, 1) / SIGMA_SCALE
        level_map = level.expand(image.shape[0], 1, *image.shape[-2:])  # [B, 1, H, W]
        x = self.intro(torch.cat([image, level_map], dim=1))
        skips = []
        for stage, down in zip(self.encoders, self.downs, strict=True):
            for block in stage:
                x = block(x, None)
            skips.append(x)
            x = down(x)
        for block in self.bottleneck:
            x = block(x, None)
        for up, stage, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            x = up(x) + skip
            for block in stage:
                x = block(x, None)
        return image + self.outro(x)
