"""Statistics over a training-crop-sized window instead of the whole map (TLC).

The restorer's normalisation and channel attention average over the whole
feature map. Trained on crops, it learned the statistics of crops; restoring a
whole photo, or a tile of one, it would see statistics of something else, and a
tile's output would depend on where the tile was cut. Chu et al.'s Test-time
Local Converter (ECCV 2022) averages instead over the window a training crop
would have covered around each position, shifted to lie inside the map, so a
pixel gets the same statistics whether its photo was tiled or not (away from
tile edges, which blending hides). A map no larger than the window keeps its
exact global mean, so training on crops of the window's size is unchanged.

Windows move in blocks of 1/8 of their side: means are summed per block, boxed
over blocks, and interpolated back to pixels (a 1x1 convolution commutes with
that interpolation, so channel attention runs on the small grid). That costs
about one pass over the map, where exact per-pixel windows cost several.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STEPS_PER_WINDOW = 8


def window_at(window: int | None, level: int) -> int | None:
    """A statistics window of ``window`` pixels, in pixels of the map ``level``
    down-samplings deep (None: the whole map)."""
    return None if window is None else max(1, window // 2**level)


def _valid_window_sums(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sums of every run of ``size`` entries along ``dim`` (length L -> L - size + 1)."""
    total = torch.cumsum(x, dim)
    total = torch.cat([torch.zeros_like(total.narrow(dim, 0, 1)), total], dim)
    length = x.shape[dim]
    return total.narrow(dim, size, length - size + 1) - total.narrow(dim, 0, length - size + 1)


def _shifted_boxes(sums: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[..., Hb, Wb] -> at each entry, the sum over the ``size`` box around it, the box
    shifted to lie inside the grid."""
    height, width = sums.shape[-2:]
    box_h, box_w = min(size[0], height), min(size[1], width)
    boxed = _valid_window_sums(_valid_window_sums(sums, box_h, -2), box_w, -1)
    rows = (torch.arange(height, device=sums.device) - box_h // 2).clamp(0, height - box_h)
    cols = (torch.arange(width, device=sums.device) - box_w // 2).clamp(0, width - box_w)
    return boxed.index_select(-2, rows).index_select(-1, cols)


def local_mean(x: torch.Tensor, window: int | None) -> torch.Tensor:
    """x [B, C, H, W] -> its mean over ``window`` x ``window`` pixels around each block of
    the map, [B, C, Hb, Wb]; the global mean [B, C, 1, 1] where the map fits in one window
    (or ``window`` is None). ``to_pixels`` brings either to [.., H, W]."""
    height, width = x.shape[-2:]
    if window is None or (height <= window and width <= window):
        return x.mean(dim=(-2, -1), keepdim=True)
    block = max(1, window // STEPS_PER_WINDOW)
    pad = (0, (-width) % block, 0, (-height) % block)
    area = block * block
    sums = F.avg_pool2d(F.pad(x, pad), block) * area  # [B, C, Hb, Wb]
    counts = F.avg_pool2d(F.pad(x.new_ones(1, 1, height, width), pad), block) * area
    boxes = (window // block, window // block)  # in blocks; clipped to the grid
    # float64 for the running sums over the (small) grid: no digits lost to cancellation
    total = _shifted_boxes(sums.double(), boxes)
    count = _shifted_boxes(counts.double(), boxes)
    return (total / count).to(x.dtype)


def to_pixels(statistic: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A ``local_mean`` grid [B, C, Hb, Wb] interpolated to [B, C, H, W] (block centres
    hold their values); a global [B, C, 1, 1] is returned to broadcast as it is."""
    if statistic.shape[-2:] == (1, 1):
        return statistic
    return F.interpolate(statistic, size=size, mode="bilinear", align_corners=False)


def local_group_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, window: int, eps: float
) -> torch.Tensor:
    """One-group GroupNorm of x [B, C, H, W] with mean and variance over channels and the
    window around each position."""
    size = x.shape[-2:]
    mean = local_mean(x.mean(dim=1, keepdim=True), window)  # [B, 1, Hb, Wb]
    mean_square = local_mean(x.square().mean(dim=1, keepdim=True), window)
    variance = (mean_square.double() - mean.double().square()).clamp_min(0)
    scale = torch.rsqrt(variance + eps).to(x.dtype)
    normed = (x - to_pixels(mean, size)) * to_pixels(scale, size)
    return normed * weight[:, None, None] + bias[:, None, None]
