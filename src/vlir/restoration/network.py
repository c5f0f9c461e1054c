"""The conditioned all-in-one restorer: a NAFNet-style U-Net with LMDIR's blocks.

Why NAFNet-style rather than Restormer-style: on this CPU a NAFNet-style U-Net
trains ~3x faster per image at equal size (measured: ~25 vs ~8 img/s at 64x64,
see DESIGN.md), and its cost stays linear in pixels at any resolution, which
tiled restoration of large photos needs. Attention is used only where it is
cheap and where it matters: at the bottleneck (1/4 resolution), cross-attending
to degradation tokens, content/semantic tokens and the reference image.

Every NAF block is modulated by the prompt vector (SPIRE's gamma/beta fusion);
the query-based prompt encoder (LMDIR) turns prompt tokens and degradation
tokens into that vector and into prompt tokens the degradation-aware block
also attends to. The network predicts a residual added to the input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from vlir.conditioning import Conditioning
from vlir.errors import VlirError
from vlir.modeling import PretrainedModel
from vlir.restoration.blocks import CrossAttentionBlock, NAFBlock, ReferenceBlock
from vlir.restoration.local_statistics import window_at
from vlir.restoration.prompt_encoder import QueryPromptEncoder


@dataclass(frozen=True)
class RestorerConfig:
    width: int = 32
    """Channels at full resolution; doubled at each of the two down-samplings."""
    encoder_blocks: tuple[int, ...] = (1, 2)
    bottleneck_blocks: int = 2
    decoder_blocks: tuple[int, ...] = (1, 1)
    token_dim: int = 384
    """Width of text and perception tokens (MiniLM: 384)."""
    prompt_queries: int = 8
    prompt_layers: int = 2
    """Cross-attention + self-attention layers of the query-based prompt encoder."""
    use_degradation_block: bool = True
    use_content_block: bool = True
    use_reference_block: bool = True
    use_modulation: bool = True
    """Switches for ablations; a switched-off part is absent, not zeroed."""
    statistics_window: int | None = None
    """Normalisation and channel attention average over this many pixels around each
    position instead of the whole map (TLC; set it to the training crop): a photo then
    restores with the statistics its crops trained on, tiled or not. None: whole map."""
    norm: str = "map"
    """"map": normalise over channels and the whole map (or ``statistics_window``; the
    shipped default); "pixel": over channels at each pixel (NAFNet), which a tile
    computes exactly as the whole photo does. With "pixel" and a ``statistics_window``
    only channel attention still averages over positions, within that window."""
    perception: str = "perception"
    """The perception checkpoint whose tokens this restorer was trained with."""
    perception_fingerprint: str | None = None
    """Its ``weights_fingerprint``, recorded at training: loading refuses another."""
    text_encoder: str = "minilm"
    align_semantic: bool = False
    """Encode semantic prompts with perception's caption-aligned text tower (VLMIR's LoRA)
    instead of the plain one; off in the shipped default, which predates it."""

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (the pipeline pads)."""
        return 2 ** len(self.encoder_blocks)

    def window_at(self, level: int) -> int | None:
        """``statistics_window`` in pixels of the map ``level`` down-samplings deep."""
        return window_at(self.statistics_window, level)


class _Stage(nn.Module):
    def __init__(
        self,
        channels: int,
        blocks: int,
        prompt_dim: int,
        modulated: bool,
        window: int | None,
        per_pixel_norm: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            NAFBlock(
                channels,
                prompt_dim,
                modulated=modulated,
                window=window,
                per_pixel_norm=per_pixel_norm,
            )
            for _ in range(blocks)
        )

    def forward(self, x: torch.Tensor, prompt_vector: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, prompt_vector)
        return x


class RestorerModel(PretrainedModel):
    config_class = RestorerConfig
    model_type = "restorer"

    def __init__(self, config: RestorerConfig) -> None:
        super().__init__(config)
        if config.statistics_window is not None and config.statistics_window < 2**4:
            raise VlirError(
                f"statistics_window must be at least 16 pixels, got {config.statistics_window}"
            )
        if config.norm not in ("map", "pixel"):
            raise VlirError(f'norm must be "map" or "pixel", got {config.norm!r}')
        per_pixel = config.norm == "pixel"
        width, dim = config.width, config.token_dim
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        channels = width
        modulated = config.use_modulation
        for level, blocks in enumerate(config.encoder_blocks):
            window = config.window_at(level)
            self.encoders.append(_Stage(channels, blocks, dim, modulated, window, per_pixel))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        depth = len(config.encoder_blocks)
        self.bottleneck = _Stage(
            channels, config.bottleneck_blocks, dim, modulated, config.window_at(depth), per_pixel
        )
        self.prompt_encoder = QueryPromptEncoder(dim, config.prompt_queries, config.prompt_layers)
        self.degradation_block = (
            CrossAttentionBlock(channels, dim) if config.use_degradation_block else None
        )
        self.content_block = (
            CrossAttentionBlock(channels, dim) if config.use_content_block else None
        )
        if config.use_reference_block:
            self.reference_encoder = nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1),
                nn.GELU(),
                *[
                    nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 2, stride=2)
                    for i in range(len(config.encoder_blocks))
                ],
            )
            self.reference_block = ReferenceBlock(channels, per_pixel_norm=per_pixel)
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for index, blocks in enumerate(config.decoder_blocks):
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.PixelShuffle(2)))
            channels //= 2
            window = config.window_at(depth - 1 - index)
            self.decoders.append(_Stage(channels, blocks, dim, modulated, window, per_pixel))
        self.outro = nn.Conv2d(width, 3, 3, padding=1)

    def with_statistics(self, window: int | None, norm: str | None = None) -> RestorerModel:
        """The same weights with another ``statistics_window`` or ``norm`` (neither adds
        parameters): how trained weights behave under the other statistics."""
        changes = {"statistics_window": window} | ({"norm": norm} if norm else {})
        copy = RestorerModel(replace(self.config, **changes))
        copy.load_state_dict(self.state_dict())
        return copy.to(next(self.parameters()).device).train(self.training)

    def encode_prompt(self, conditioning: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt tokens [B, Q, D] and vector [B, D] from the prompt and degradation tokens."""
        tokens = torch.cat([conditioning.prompt_tokens, conditioning.deg_tokens], dim=1)
        mask = None
        if conditioning.prompt_mask is not None:
            ones = torch.ones(conditioning.deg_tokens.shape[:2], device=tokens.device)
            mask = torch.cat([conditioning.prompt_mask.to(ones.dtype), ones], dim=1)
        return self.prompt_encoder(tokens, mask)

    def forward(self, image: torch.Tensor, conditioning: Conditioning) -> torch.Tensor:
        """image [B, 3, H, W] (H, W multiples of ``config.multiple``) -> restored [B, 3, H, W]."""
        prompt_tokens, prompt_vector = self.encode_prompt(conditioning)
        modulation = prompt_vector if self.config.use_modulation else None
        x = self.intro(image)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x, modulation)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x, modulation)
        if self.degradation_block is not None:
            deg = torch.cat([conditioning.deg_tokens, prompt_tokens], dim=1)
            x = self.degradation_block(x, deg)
        if self.content_block is not None:
            x = self.content_block(x, conditioning.content_tokens, conditioning.content_mask)
        if self.config.use_reference_block and conditioning.reference is not None:
            reference = conditioning.reference
            if reference.shape[-2:] != image.shape[-2:]:
                reference = F.interpolate(
                    reference, size=image.shape[-2:], mode="bilinear", align_corners=False
                )
            x = self.reference_block(x, self.reference_encoder(reference))
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            x = decoder(up(x) + skip, modulation)
        return image + self.outro(x)
