"""The image-level decision: a photo's tiles read together with the whole photo's statistics.

``analyze`` reads degradations on tiles of the training size, but some evidence is only
in the whole photo. Against one tile of sky a colour cast is a blue sky; against the
whole photo's grey-world ratios it is a cast. Faint haze lowers the contrast and the
dark channel of the whole scene, which a tile of a flat wall does not show. The image
head reads two things:

- what the tiles say: each op's presence logit, as mean, max, min and spread over tiles;
- the classical signal statistics (``signal_statistics``) of the whole photo at its own
  resolution and at half of it.

It gives one presence logit per op for the photo: its own, blended with the tiles' mean
logit by a per-op ``tile_weight`` (1: the tiles decide alone). Read alone, a head fitted
to the best F1 is sure of itself where the tiles hesitate (a natural blue dusk, warm skin,
a hazy distance scored 0.9-1.0 as casts or haze where the tiles said 0.2-0.4); half and
half, a clean photo needs both to lean the same way. It is fitted after the tower, on
frozen tile logits of BSD400 training photos (stacking: ``vlir.perception.fit_image_head``),
so it changes what is found, never the embeddings or tokens a restorer was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vlir.perception import signal_statistics as signals

WHOLE_SIDE = 1024
"""The whole-photo statistics read at most a centre crop this large, so a 12-megapixel
photo costs what a 1-megapixel one does (every training photo is smaller)."""


def evidence_dim(ops: int, features: int) -> int:
    """Width of ``image_evidence``: 4 pooled logits per op, the statistics at two scales."""
    return 4 * ops + 2 * features


def image_evidence(tile_logits: torch.Tensor, image: torch.Tensor, features: int) -> torch.Tensor:
    """tile_logits [T, N] of one photo, image [1, 3, H, W] (sides at least 32) -> [1, E].

    ``features``: how many of ``signal_statistics.FEATURE_NAMES`` the model reads."""
    pooled = [
        tile_logits.mean(0),
        tile_logits.amax(0),
        tile_logits.amin(0),
        tile_logits.std(0, unbiased=False),
    ]  # each [N]
    height, width = image.shape[-2:]
    top, left = max(0, (height - WHOLE_SIDE) // 2), max(0, (width - WHOLE_SIDE) // 2)
    whole = image[..., top : top + WHOLE_SIDE, left : left + WHOLE_SIDE]
    half = F.interpolate(whole, scale_factor=0.5, mode="area")
    statistics = [signals.signal_statistics(view)[0, :features] for view in (whole, half)]
    return torch.cat([*pooled, *statistics])[None].float()


def tile_weights(ops: Sequence[str], tile_ops: Sequence[str], blend: float) -> list[float]:
    """Each op's weight of the tiles' mean logit: 1 for ``tile_ops``, else ``blend``."""
    return [1.0 if op in tile_ops else blend for op in ops]


class ImageHead(nn.Module):
    """Evidence [B, E] -> presence logits [B, N]: linear, or one hidden layer, blended with
    the tiles' mean logit (the evidence's first N columns) by ``tile_weight`` [N]."""

    def __init__(
        self, evidence: int, ops: int, hidden: int, tile_weight: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        weight = torch.zeros(ops) if tile_weight is None else torch.tensor(tile_weight)
        # from the config (blend, tile ops), not the weights file
        self.register_buffer("tile_weight", weight.float(), persistent=False)
        # the evidence mixes logits, logs, ratios and shares: standardised by the
        # statistics of the evidence it was fitted on, kept with the weights
        self.register_buffer("evidence_mean", torch.zeros(evidence))
        self.register_buffer("evidence_scale", torch.ones(evidence))
        if hidden == 0:
            self.net: nn.Module = nn.Linear(evidence, ops)
        else:
            self.net = nn.Sequential(nn.Linear(evidence, hidden), nn.GELU(), nn.Linear(hidden, ops))

    def forward(self, evidence: torch.Tensor) -> torch.Tensor:
        own = self.net((evidence - self.evidence_mean) / self.evidence_scale)  # [B, N]
        tiles = evidence[:, : own.shape[1]]  # [B, N] the tiles' mean logit
        return torch.lerp(own, tiles, self.tile_weight)


def fit_head(
    evidence: torch.Tensor,
    truth: torch.Tensor,
    hidden: int,
    *,
    weight_decay: float = 1e-4,
    steps: int = 300,
    seed: int = 0,
) -> ImageHead:
    """A head fitted on evidence [M, E] and truth [M, N] in {0, 1}: the binary
    cross-entropy of every op plus ``weight_decay`` times the squared weights (not the
    biases), minimised by L-BFGS on the whole set at once (a few thousand photos fit in
    one batch, and a first-order method leaves a linear head far from its optimum). It is
    fitted on its own (``tile_weight`` 0): blended with the tiles afterwards, it is a second
    opinion, where fitted through the blend it would learn to outshout them."""
    torch.manual_seed(seed)
    head = ImageHead(evidence.shape[1], truth.shape[1], hidden)
    head.evidence_mean.copy_(evidence.mean(0))
    head.evidence_scale.copy_(evidence.std(0).clamp_min(1e-6))
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    optimizer = torch.optim.LBFGS(
        head.parameters(), max_iter=steps, history_size=20, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(head(evidence), truth)
        loss = loss + weight_decay * sum((w**2).sum() for w in weights)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    return head.eval().requires_grad_(False)
