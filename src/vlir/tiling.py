"""Restore any size in bounded memory: overlapping tiles blended with smooth weights.

Each tile is restored on its own (with the whole image's conditioning) and
written back weighted by a ramp that falls to ~0 at the tile's inner edges, so
seams vanish; weights are normalised by their sum. Tiles are padded by
reflection to the network's size multiple.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(image: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad [B, C, H, W] on the bottom/right so H and W are multiples."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if height > pad_h and width > pad_w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image, (height, width)


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    if overlap > 0:
        rise = torch.linspace(0, 1, overlap + 2)[1:-1]
        if not at_start:
            weight[:overlap] = rise
        if not at_end:
            weight[-overlap:] = rise.flip(0)
    return weight


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    return sorted({*range(0, length - tile, step), length - tile})


def restore_tiled(
    image: torch.Tensor,
    restore: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor],
    *,
    tile: int,
    overlap: int = 32,
    multiple: int = 4,
) -> torch.Tensor:
    """Apply ``restore(patch [1, C, h, w], (y, x)) -> [1, C', h, w]`` over tiles of ``image``.

    ``(y, x)`` is where the patch sits in the image (for spatially aligned inputs);
    ``image`` may stack several aligned inputs along channels (the refiner's
    restored image, degraded image and noise), the output has the tiles' channels.
    """
    _, _, height, width = image.shape
    if height <= tile and width <= tile:
        padded, (h, w) = pad_to_multiple(image, multiple)
        return restore(padded, (0, 0))[..., :h, :w]
    overlap = min(overlap, tile // 4)
    step = tile - overlap
    output: torch.Tensor | None = None
    total = torch.zeros(1, 1, height, width, dtype=torch.float32)
    ys, xs = _starts(height, tile, step), _starts(width, tile, step)
    for y in ys:
        for x in xs:
            patch = image[..., y : y + tile, x : x + tile]
            padded, (h, w) = pad_to_multiple(patch, multiple)
            restored = restore(padded, (y, x))[..., :h, :w].float().cpu()
            if output is None:
                output = torch.zeros(1, restored.shape[1], height, width, dtype=torch.float32)
            weight = (
                _ramp(h, overlap, y == ys[0], y == ys[-1])[:, None]
                * _ramp(w, overlap, x == xs[0], x == xs[-1])[None, :]
            )
            output[..., y : y + h, x : x + w] += restored * weight
            total[..., y : y + h, x : x + w] += weight
    assert output is not None  # at least one tile
    return output / total.clamp_min(1e-8)
