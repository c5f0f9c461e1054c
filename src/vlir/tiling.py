"""Restore any size in bounded memory: overlapping tiles blended with smooth weights.

Each tile is restored on its own (with the whole image's conditioning) and
written back weighted by a ramp that falls to ~0 at the tile's inner edges, so
seams vanish; weights are normalised by their sum. Tiles are padded by
reflection to the network's size multiple. Cut at the middle of every overlap,
the tiles also partition the image: what each alone owns is where photo-wide
statistics are summed (``vlir.restoration.photo_statistics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

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


def window_starts(length: int, window: int, step: int) -> list[int]:
    """Where windows of ``window`` pixels start along an axis of ``length``: every ``step``,
    the last flush with the far edge (one at 0 when the axis is no longer than a window)."""
    if length <= window:
        return [0]
    return sorted({*range(0, length - window, step), length - window})


def axis_windows(length: int, tile: int, overlap: int, align: int = 8) -> tuple[list[int], int]:
    """Where the tiles along an axis of ``length`` start, and their common length: as few
    as tiles of ``tile`` pixels would need, each only as long as covering the axis takes.
    With every tile ``tile`` long, the last (flush with the far edge) could overlap the one
    before by almost a whole tile: a 1024x1536 photo in 384-px tiles restored 2.2
    megapixels a pass where 1.8 cover it. Where ``tile - overlap`` is a multiple of
    ``align`` (the JPEG grid, which the pipeline puts at the photo's corner; 384 - 32), every
    tile but the last starts on it."""
    if length <= tile:
        return [0], length
    count = -(-(length - overlap) // (tile - overlap))
    even = -(-(length + (count - 1) * overlap) // count)  # equal tiles that just cover it
    size = min(tile, overlap + -(-(even - overlap) // align) * align)
    return window_starts(length, size, size - overlap), size


def _owned(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Each tile's share of [0, length) along one axis, cut at the middle of every overlap
    (tiles then partition the image), in the tile's own coordinates."""
    middles = [(here + tile + after) // 2 for here, after in pairwise(starts)]
    cuts = [0, *middles, length]
    return [(cuts[i] - start, cuts[i + 1] - start) for i, start in enumerate(starts)]


@dataclass(frozen=True)
class Tile:
    y: int
    x: int
    height: int
    width: int
    owned: tuple[int, int, int, int]
    """(top, bottom, left, right) of the pixels no other tile owns, in the tile's frame."""
    first_row: bool
    last_row: bool
    first_column: bool
    last_column: bool


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """The overlapping tiles ``restore_tiled`` cuts an image into, row by row: at most
    ``tile`` pixels a side, all of a row (column) the same height (width)."""
    ys, tile_height = axis_windows(height, tile, overlap)
    xs, tile_width = axis_windows(width, tile, overlap)
    rows, columns = _owned(ys, tile_height, height), _owned(xs, tile_width, width)
    tiles = []
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            owned = (*rows[i], *columns[j])
            edges = (i == 0, i == len(ys) - 1, j == 0, j == len(xs) - 1)
            tiles.append(Tile(y, x, tile_height, tile_width, owned, *edges))
    return tiles


def effective_overlap(tile: int, overlap: int) -> int:
    """The overlap ``restore_tiled`` uses: at most a quarter of the tile."""
    return min(overlap, tile // 4)


def tile_count(height: int, width: int, *, tile: int, overlap: int = 32) -> int:
    """How many times ``restore_tiled`` calls its ``restore`` on an image of this size."""
    if height <= tile and width <= tile:
        return 1
    return len(tile_grid(height, width, tile, effective_overlap(tile, overlap)))


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
    overlap = effective_overlap(tile, overlap)
    output: torch.Tensor | None = None
    total = torch.zeros(1, 1, height, width, dtype=torch.float32)
    for part in tile_grid(height, width, tile, overlap):
        y, x = part.y, part.x
        patch = image[..., y : y + part.height, x : x + part.width]
        padded, (h, w) = pad_to_multiple(patch, multiple)
        restored = restore(padded, (y, x))[..., :h, :w].float().cpu()
        if output is None:
            output = torch.zeros(1, restored.shape[1], height, width, dtype=torch.float32)
        weight = (
            _ramp(h, overlap, part.first_row, part.last_row)[:, None]
            * _ramp(w, overlap, part.first_column, part.last_column)[None, :]
        )
        output[..., y : y + h, x : x + w] += restored * weight
        total[..., y : y + h, x : x + w] += weight
    assert output is not None  # at least one tile
    return output / total.clamp_min(1e-8)
