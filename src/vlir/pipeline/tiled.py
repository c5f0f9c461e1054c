"""A network over a photo's views and overlapping tiles, in bounded memory, counting its
passes for a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F

from vlir.perception.jpeg_grid import GRID
from vlir.pipeline.frames import UPRIGHT_VIEWS, dihedral_view, undo_dihedral_view
from vlir.restoration.denoiser import DenoiserConfig
from vlir.restoration.network import RestorerConfig
from vlir.restoration.photo_statistics import gather_photo_statistics
from vlir.tiling import pad_to_multiple, restore_tiled, tile_count

AUTO_TILE_PIXELS = 512 * 512
"""Images larger than this restore in tiles (bounded memory); smaller ones in one pass."""


DEFAULT_TILE = 384


CHANNELS_LAST = torch.channels_last
"""The restorer's and the refiner's memory format on CPU. A 481x321 photo's forward pass
took 1.64 s in NCHW and 0.67 s in it (2 threads, median of 7; outputs within 1e-6), and
restoring it with ``refine=True`` 2.05 against 1.68 s; the perception towers gained
nothing (0.153 / 0.152 s), so they keep NCHW."""


class PassCounter:
    """Counts a call's network passes (one per tile, view, gathering pass and refinement)
    and tells ``progress(done, total)`` after each: a 12-megapixel photo takes minutes on
    a CPU, and a person waiting wants to see it move."""

    def __init__(self, progress: Callable[[int, int], None] | None) -> None:
        self.progress = progress
        self.done = 0
        self.total = 0

    def plan(self, passes: int) -> None:
        self.total += passes

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def tile_overlap(config: RestorerConfig | DenoiserConfig) -> int:
    """Tiles overlap by a quarter of a statistics window (where there is one): near a
    tile's edge, where its windows are cut differently from the whole photo's, its weight
    blends away (tiled and untiled agree to ~52 dB: benchmarks/statistics_window.py)."""
    window = getattr(config, "statistics_window", None)
    return 32 if window is None else max(32, window // 4)


def restore_views(
    pixels: torch.Tensor,
    reference: torch.Tensor | None,
    forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    passes: PassCounter,
    *,
    device: torch.device,
    config: RestorerConfig | DenoiserConfig,
    views: tuple[int, ...],
    tile: int | None,
    gather: int,
) -> tuple[torch.Tensor, int]:
    """A network (``forward(patch, reference part or None)``, ``config`` its own) over
    each view of ``pixels`` [1, 3, H, W] in tiles (``tile`` None: one), each tile on
    ``device`` and back, the views averaged back in the photo's frame; and the gathering
    passes run (``photo_statistics``: 0 where there is one tile, or the network's statistics are
    windowed, a tile's own by design)."""
    height, width = pixels.shape[-2:]
    source, source_reference = pixels, reference
    if views == UPRIGHT_VIEWS:  # flipped, a side off the grid moves it off the corner
        source, _ = pad_to_multiple(pixels, GRID)
        if reference is not None:
            source_reference, _ = pad_to_multiple(reference, GRID)
    layout = {
        "tile": tile or max(source.shape[-2:]),
        "overlap": tile_overlap(config),
        "multiple": config.multiple,
    }
    several = max(source.shape[-2:]) > layout["tile"]
    windowed = getattr(config, "statistics_window", None) is not None
    gathered = gather if gather > 0 and several and not windowed else 0
    covering = tile_count(*source.shape[-2:], tile=layout["tile"], overlap=layout["overlap"])
    passes.plan(len(views) * (gathered + 1) * covering)
    restored = torch.zeros_like(source)
    for view in views:
        view_pixels = dihedral_view(source, view)
        view_reference = None
        if source_reference is not None:
            view_reference = dihedral_view(source_reference, view)
        run = tile_runner(forward, view_reference, passes, device)
        shared: AbstractContextManager = nullcontext()  # each tile its own statistics
        if gathered:
            shared = gather_photo_statistics(view_pixels, run, **layout, passes=gather).active()
        with shared:
            view_restored = restore_tiled(view_pixels, run, **layout)
        restored += undo_dihedral_view(view_restored, view) / len(views)
    return restored[..., :height, :width], gathered


def tile_runner(
    forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    reference: torch.Tensor | None,
    passes: PassCounter,
    device: torch.device,
) -> Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]:
    """``run(patch, corner)`` for ``restore_tiled``: the network on one tile, given
    the part of ``reference`` (in the same view's frame) that lies under it."""

    def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
        part = None
        if reference is not None:
            y, x = corner
            part = reference[..., y : y + patch.shape[-2], x : x + patch.shape[-1]]
            # a tile padded to the network's multiple gets its reference padded alike
            pad = (0, patch.shape[-1] - part.shape[-1], 0, patch.shape[-2] - part.shape[-2])
            part = F.pad(part, pad, mode="replicate").to(device)
        on_device = patch.to(device, memory_format=CHANNELS_LAST)
        restored_patch = forward(on_device, part).cpu()
        passes.tick()
        return restored_patch

    return run
