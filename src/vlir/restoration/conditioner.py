"""Assembling a Conditioning from perception and the text tower (training and inference alike)."""

from __future__ import annotations

import torch

from vlir.conditioning import Conditioning
from vlir.perception.model import Perception, PerceptionModel
from vlir.text import TextEncoder, TextEncoding


def semantic_tower(perception: PerceptionModel, text: TextEncoder, aligned: bool) -> TextEncoder:
    """The tower that reads semantic prompts: ``text`` itself, or with ``aligned`` the
    one carrying perception's caption-alignment LoRA (VLMIR), loaded beside it."""
    return perception.aligned_text_encoder().to(text.device) if aligned else text


def make_conditioning(
    perception: Perception,
    prompt: TextEncoding,
    semantic: TextEncoding | None = None,
    has_semantic: torch.Tensor | None = None,
    reference: torch.Tensor | None = None,
) -> Conditioning:
    """Content tokens are perception's, followed by the semantic prompt's where one is given.

    ``has_semantic`` [B] marks which images have a semantic prompt; the others'
    semantic tokens are masked out, so one batch can mix both.
    """
    content = perception.content_tokens
    content_mask = torch.ones(content.shape[:2], device=content.device)
    if semantic is not None:
        mask = semantic.mask.to(content_mask.dtype)
        if has_semantic is not None:
            mask = mask * has_semantic.to(mask.dtype)[:, None]
        content = torch.cat([content, semantic.tokens.to(content.dtype)], dim=1)
        content_mask = torch.cat([content_mask, mask], dim=1)
    return Conditioning(
        deg_tokens=perception.deg_tokens,
        content_tokens=content,
        prompt_tokens=prompt.tokens,
        prompt_vector=prompt.pooled,
        content_mask=content_mask,
        prompt_mask=prompt.mask,
        reference=reference,
    )
