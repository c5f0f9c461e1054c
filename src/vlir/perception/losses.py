"""VLMIR's stage-1 objectives.

- ``contrastive``: CLIP's symmetric InfoNCE between image-side and text-side
  embeddings. Samples whose texts are identical (two images with the same op
  combination) are all positives, so they are not pushed apart.
- ``caption_alignment``: the cosine loss that pulls the (LoRA-tuned) embedding of
  a low-quality image's caption onto the frozen embedding of the clean caption.
- ``predictor``: which ops (binary cross-entropy) and how strong (L1 on present ops).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def contrastive(
    image_embedding: torch.Tensor,
    text_embedding: torch.Tensor,
    logit_scale: torch.Tensor,
    texts: Sequence[str] | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of [B, D] normalised embeddings; equal texts count as positives."""
    logits = logit_scale.clamp(max=4.6052).exp() * image_embedding @ text_embedding.t()  # [B, B]
    if texts is None:
        targets = torch.eye(len(logits), device=logits.device)
    else:
        same = [[float(a == b) for b in texts] for a in texts]
        targets = torch.tensor(same, device=logits.device)
    targets = targets / targets.sum(dim=1, keepdim=True)
    image_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    text_to_image = -(targets.t() * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (image_to_text + text_to_image) / 2


def caption_alignment(low_quality: torch.Tensor, high_quality: torch.Tensor) -> torch.Tensor:
    """1 - cos between LQ-caption embeddings and (detached) HQ-caption embeddings."""
    return (1.0 - F.cosine_similarity(low_quality, high_quality.detach(), dim=-1)).mean()


def predictor(
    presence_logits: torch.Tensor,
    strength: torch.Tensor,
    presence: torch.Tensor,
    strength_target: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(classification, regression) losses; strength counts only where the op is present."""
    classification = F.binary_cross_entropy_with_logits(presence_logits, presence)
    weight = presence.sum().clamp_min(1.0)
    regression = ((strength - strength_target).abs() * presence).sum() / weight
    return classification, regression
