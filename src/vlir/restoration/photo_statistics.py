"""Whole-photo statistics for tiled restoration: gathered over the tiles, shared by all.

The restorer's map norm and channel attention average over the whole feature
map. Restored in one piece, every pixel of a photo sees the photo's statistics;
cut into tiles, each tile sees its own, so tiles disagree with the untiled
result (~41 dB apart on a 512x512 photo) and with each other where they meet.
Windowed statistics (TLC) or a per-pixel norm make tiles agree, but change what
the trained weights see: global ops such as low light and haze lose ~2 dB.

Here the statistics stay the whole photo's. A gathering pass runs every tile
and sums, at each averaging site, its input over the part of the photo that
tile owns (tiles partition the photo at the middle of their overlaps); the
restoring pass then gives every tile those means. Memory stays one tile's plus
a few numbers per site; time is one more pass over the tiles per gathering pass.

A deep site's sums come from features that earlier sites normalised with the
tile's own statistics (or, in a later gathering pass, the previous pass's), so
they can fall short of what the restoring pass meets: a tile then comes out of
a map norm wider than unit spread, the blocks' gates multiply it, and within a
few blocks it is infinite (5 of 16 held-out photos, before the guard). So the
map norm never divides by less than the tile's own spread (``LayerNorm2d``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from vlir.tiling import effective_overlap, pad_to_multiple, tile_grid

_ACTIVE: ContextVar[PhotoStatistics | None] = ContextVar("photo_statistics", default=None)


class PhotoStatistics:
    """Per averaging site, the photo-wide mean of what it averages."""

    def __init__(self) -> None:
        self.shared: dict[int, torch.Tensor] = {}
        """Site -> mean over the photo [B, K, 1, 1] (float64), from the last gathering pass."""
        self._sums: dict[int, torch.Tensor] = {}
        self._counts: dict[int, int] = {}
        self._owned: tuple[float, float, float, float] | None = None
        """While gathering: the current tile's own pixels as fractions of its padded size."""

    def mean(self, site: object, values: torch.Tensor) -> torch.Tensor:
        """values [B, K, H, W] -> their mean over positions [B, K, 1, 1]: the photo's (from
        the last gathering pass) where there is one, else this map's. While gathering, the
        part of ``values`` the current tile owns is also summed into this site's total."""
        key = id(site)
        if self._owned is not None:
            height, width = values.shape[-2:]
            top, bottom, left, right = self._owned
            owned = values[
                ..., round(top * height) : round(bottom * height),
                round(left * width) : round(right * width),
            ]  # fmt: skip
            total = owned.double().sum(dim=(-2, -1), keepdim=True)
            self._sums[key] = self._sums[key] + total if key in self._sums else total
            self._counts[key] = self._counts.get(key, 0) + owned.shape[-2] * owned.shape[-1]
        if key in self.shared:
            return self.shared[key].to(values.dtype)
        return values.mean(dim=(-2, -1), keepdim=True)

    @contextmanager
    def gathering(self, owned: tuple[int, int, int, int], size: tuple[int, int]) -> Iterator[None]:
        """Sum what the sites average over ``owned`` (top, bottom, left, right, in pixels of
        a tile of ``size``) while the body runs the restorer on that tile."""
        height, width = size
        top, bottom, left, right = owned
        self._owned = (top / height, bottom / height, left / width, right / width)
        try:
            with self.active():
                yield
        finally:
            self._owned = None

    def end_pass(self) -> None:
        """The sums of the finished gathering pass become the shared means."""
        self.shared = {key: total / self._counts[key] for key, total in self._sums.items()}
        self._sums, self._counts = {}, {}

    @contextmanager
    def active(self) -> Iterator[None]:
        """Averaging sites consult these statistics while the body runs."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


def active_statistics() -> PhotoStatistics | None:
    """The photo statistics the running restoration shares, if any."""
    return _ACTIVE.get()


def gather_photo_statistics(
    image: torch.Tensor,
    restore: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor],
    *,
    tile: int,
    overlap: int,
    multiple: int,
    passes: int = 1,
) -> PhotoStatistics:
    """Run ``restore`` (as ``restore_tiled`` would) over the tiles of ``image`` [1, C, H, W]
    ``passes`` times and return the photo's statistics for the restoring pass."""
    statistics = PhotoStatistics()
    height, width = image.shape[-2:]
    for _ in range(passes):
        for part in tile_grid(height, width, tile, effective_overlap(tile, overlap)):
            patch = image[..., part.y : part.y + part.height, part.x : part.x + part.width]
            padded, _ = pad_to_multiple(patch, multiple)
            with statistics.gathering(part.owned, padded.shape[-2:]):
                restore(padded, (part.y, part.x))
        statistics.end_pass()
    return statistics
