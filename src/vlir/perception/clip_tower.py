"""A Hugging Face CLIP vision tower behind the ImageTower interface.

For users who have CLIP weights on disk (DA-CLIP and VLMIR start from CLIP):
``PerceptionConfig(image_tower="/path/to/clip")`` swaps the small CNN for it.
The pooled, projected image embedding plays the role of the CNN's statistics;
the patch tokens form the content map.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vlir.errors import VlirError

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPImageTower(nn.Module):
    """Image [B, 3, H, W] in [0, 1] -> (embedding [B, S], patch map [B, C, h, w])."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        from vlir.text.encoder import quiet_transformers

        quiet_transformers()
        folder = Path(path)
        if not (folder / "config.json").exists():
            raise VlirError(f"{folder}: no CLIP model folder there")
        self.clip = CLIPVisionModelWithProjection.from_pretrained(folder)
        config = self.clip.config
        self.size = int(config.image_size)
        self.stats_dim = int(config.projection_dim) + int(config.hidden_size)
        self.out_channels = int(config.hidden_size)
        self.register_buffer("mean", torch.tensor(_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = F.interpolate(
            image.clamp(0, 1), size=(self.size, self.size), mode="bicubic", align_corners=False
        )
        output = self.clip(pixel_values=(pixels - self.mean) / self.std)
        patches = output.last_hidden_state[:, 1:]  # [B, h*w, C], the class token dropped
        side = math.isqrt(patches.shape[1])
        patch_map = patches.transpose(1, 2).reshape(patches.shape[0], -1, side, side)
        pooled = output.last_hidden_state[:, 0]
        return torch.cat([output.image_embeds, pooled], dim=1), patch_map
