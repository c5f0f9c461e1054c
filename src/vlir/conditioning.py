"""The one object passed from perception and the text tower to restorer and refiner.

Models never reach into the encoders: they take a Conditioning. Every field is
batch-first; masks mark real tokens (1) versus padding (0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Conditioning:
    deg_tokens: torch.Tensor
    """[B, Kd, D] what is wrong (perception's degradation tokens)."""
    content_tokens: torch.Tensor
    """[B, Kc, D] what the scene is (content tokens, semantic-prompt tokens appended)."""
    prompt_tokens: torch.Tensor
    """[B, T, D] the restoration prompt's token states from the text tower."""
    prompt_vector: torch.Tensor
    """[B, D] the pooled restoration prompt (drives gamma/beta modulation)."""
    content_mask: torch.Tensor | None = None
    """[B, Kc] or None when every content token is real."""
    prompt_mask: torch.Tensor | None = None
    """[B, T] or None when every prompt token is real."""
    reference: torch.Tensor | None = None
    """[B, 3, H, W] an optional photo of the same subject."""

    @property
    def batch(self) -> int:
        return int(self.deg_tokens.shape[0])

    def to(self, device: torch.device | str) -> Conditioning:
        def move(value: torch.Tensor | None) -> torch.Tensor | None:
            return None if value is None else value.to(device)

        return replace(
            self,
            deg_tokens=move(self.deg_tokens),
            content_tokens=move(self.content_tokens),
            prompt_tokens=move(self.prompt_tokens),
            prompt_vector=move(self.prompt_vector),
            content_mask=move(self.content_mask),
            prompt_mask=move(self.prompt_mask),
            reference=move(self.reference),
        )

    def select(self, index: torch.Tensor | slice) -> Conditioning:
        """The conditioning of a subset of the batch (e.g. one image's tiles)."""

        def pick(value: torch.Tensor | None) -> torch.Tensor | None:
            return None if value is None else value[index]

        return replace(
            self,
            deg_tokens=pick(self.deg_tokens),
            content_tokens=pick(self.content_tokens),
            prompt_tokens=pick(self.prompt_tokens),
            prompt_vector=pick(self.prompt_vector),
            content_mask=pick(self.content_mask),
            prompt_mask=pick(self.prompt_mask),
            reference=pick(self.reference),
        )
