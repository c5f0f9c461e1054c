"""Classical signal statistics of an image: the evidence a small CNN pools away.

A tower that summarises feature maps by their mean and standard deviation cannot
easily tell *how* a statistic varies across the image: Gaussian noise and
Poisson (shot) noise differ only in how the noise level follows brightness,
JPEG in which 8-pixel phase its edges fall on, an upsampled image in the
periodicity its interpolation leaves, a colour cast in the ratios between
channel means. Image forensics and quality assessment measure exactly these,
so perception reads them next to its learned features:

- noise level function: Immerkaer's estimate (a Laplacian difference filter
  that cancels first-order structure) on the smoother half of the pixels, in
  six brightness bins, and the share of pixels in each bin;
- blockiness: mean absolute step across each of the 8 column (row) phases, at
  the grid and the strongest phase against the rest;
- resampling periodicity: first- and second-difference energy over the phases
  of periods 2, 3 and 4, strongest against weakest (a 2x bicubic upsampling
  alternates short and long steps; 3x leaves every third pixel a sample);
- sharpness: high-pass energy at three scales and their ratios;
- colour: grey-world, bright-pixel and grey-edge channel ratios, saturation;
- light and contrast: luma mean, spread, 1st/99th percentiles, dark channel;
- (appended later) how the noise level grows with brightness, as one slope, on the
  values as given (float AWGN is not clipped) and clipped to [0, 1] (as a file holds
  them); and edge steepness: at the strongest edges, the largest one-pixel step against
  the contrast across a 3x3 / 7x7 window (blur spreads a step over several pixels, so the
  ratio falls; along x and y apart for motion's one direction); and the bright-pixel,
  grey-edge and spread channel ratios again on the image averaged over 8x8 blocks
  (noise, added after a cast and equal in every channel, swamps all three at full
  resolution and pulls their ratios to 1: after a temperature-0.9 cast, sigma-50 noise
  takes their log red/green shift from 0.26 to -0.01 / -0.06 / 0.03, against 0.24 / 0.15
  / 0.23 on the averaged image; means over 144-pixel crops of 8 held-out BSD400 photos).

All are computed per image in one batched pass, unlearned, logs of ratios where
possible so a brighter or darker photo moves them little. New statistics are only ever
appended to ``FEATURE_NAMES``: a model reads the leading ``signal_features`` it was
trained with.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)
NOISE_BINS = (0.0, 0.1, 0.25, 0.45, 0.65, 0.85, 1.0001)
EPS = 1e-4

# Immerkaer (1996): M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]], a difference of two
# Laplacians; noise sigma = sqrt(pi / 2) / 6 * mean |I * M|.
_IMMERKAER_GAIN = math.sqrt(math.pi / 2.0) / 6.0

FEATURE_NAMES: tuple[str, ...] = (
    *(f"noise_level_bin{i}" for i in range(len(NOISE_BINS) - 1)),
    *(f"noise_share_bin{i}" for i in range(len(NOISE_BINS) - 1)),
    "noise_level_all",
    "block_grid_x",
    "block_peak_x",
    "block_grid_y",
    "block_peak_y",
    *(f"period{p}_{kind}_{axis}" for kind in ("step", "curve") for p in (2, 3, 4) for axis in "xy"),
    "highpass_3",
    "highpass_5",
    "highpass_9",
    "highpass_ratio_3_5",
    "highpass_ratio_5_9",
    "greyworld_r",
    "greyworld_b",
    "bright_r",
    "bright_b",
    "grey_edge_r",
    "grey_edge_b",
    "saturation",
    "channel_spread_r",
    "channel_spread_b",
    "luma_mean",
    "luma_std",
    "luma_p01",
    "luma_p99",
    "dark_channel",
    "noise_slope",
    "noise_slope_clipped",
    "edge_steepness_3",
    "edge_steepness_7",
    "edge_steepness_7_x",
    "edge_steepness_7_y",
    "bright_coarse_r",
    "bright_coarse_b",
    "grey_edge_coarse_r",
    "grey_edge_coarse_b",
    "channel_spread_coarse_r",
    "channel_spread_coarse_b",
)
DIM = len(FEATURE_NAMES)
FIRST_DIM = 48
"""How many the first perception with signal statistics read (before the noise slope)."""
COARSE_COLOUR = 8
"""Block side over which the coarse colour ratios average the image."""
NOISE_BIN_CENTRES = tuple((a + b) / 2 for a, b in itertools.pairwise(NOISE_BINS))


def _log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.clamp_min(EPS))


def _log_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(a / b), 0 where both vanish (a black or flat crop)."""
    return torch.log((a + EPS) / (b + EPS))


def _phase_profile(steps: torch.Tensor, period: int, dim: int) -> torch.Tensor:
    """steps [B, H, W] -> [B, period]: the mean at each index modulo ``period`` along ``dim``."""
    length = steps.shape[dim] // period * period
    trimmed = steps.narrow(dim, 0, length)
    if dim == 2:  # along x: [B, H, L/p, p]
        folded = trimmed.reshape(steps.shape[0], steps.shape[1], length // period, period)
        return folded.mean(dim=(1, 2))
    folded = trimmed.reshape(steps.shape[0], length // period, period, steps.shape[2])
    return folded.mean(dim=(1, 3))


def _quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """values [B, N] -> [B], the order statistic at ``q`` (a selection, not a sort)."""
    k = min(values.shape[1], max(1, round(q * (values.shape[1] - 1)) + 1))
    return values.kthvalue(k, dim=1).values


def _window_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over a size x size window, zero outside, as two 1-D passes of shifted sums (on
    CPU several times faster than pooling with stride 1)."""
    pad, (height, width) = size // 2, x.shape[-2:]
    rows = F.pad(x, (0, 0, pad, pad))
    out = rows[..., :height, :]
    for shift in range(1, size):
        out = out + rows[..., shift : shift + height, :]
    columns = F.pad(out, (pad, pad))
    out = columns[..., :width]
    for shift in range(1, size):
        out = out + columns[..., shift : shift + width]
    return out


def _box(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a size x size window (shrinking at the border)."""
    counts = _window_sum(torch.ones_like(x[:1, :1]), size)
    return _window_sum(x, size) / counts


def _noise_level_function(luma: torch.Tensor) -> list[torch.Tensor]:
    """luma [B, 1, H, W] -> noise level per brightness bin, bin shares, overall level."""
    # the mask is the outer product of [1, -2, 1] with itself: second differences along
    # x, then along y
    along_x = luma[..., :, 2:] - 2 * luma[..., :, 1:-1] + luma[..., :, :-2]
    both = along_x[..., 2:, :] - 2 * along_x[..., 1:-1, :] + along_x[..., :-2, :]
    estimate = both.abs()[:, 0] * _IMMERKAER_GAIN  # [B, H-2, W-2]
    local_mean = _box(luma, 3)[:, 0, 1:-1, 1:-1]  # [B, H-2, W-2], whole windows only
    # Texture inflates the estimate: keep the flatter half of each image, judged on the
    # smoothed map so that the noise itself does not pick its own quietest pixels.
    padded = F.pad(local_mean[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    gx = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]
    gy = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]
    gradient = (gx.abs() + gy.abs()).flatten(1)  # [B, (H-2)(W-2)]
    flat = gradient <= gradient.median(dim=1, keepdim=True).values  # median: a selection
    estimate, local_mean = estimate.flatten(1), local_mean.flatten(1)
    overall = (estimate * flat).sum(1) / flat.sum(1).clamp_min(1)
    levels, shares = [], []
    for low, high in itertools.pairwise(NOISE_BINS):
        inside = flat & (local_mean >= low) & (local_mean < high)
        count = inside.sum(1)
        level = (estimate * inside).sum(1) / count.clamp_min(1)
        # An empty bin reads as the overall level: no evidence either way.
        levels.append(_log(torch.where(count > 16, level, overall)))
        shares.append(count / flat.sum(1).clamp_min(1))
    return [*levels, *shares, _log(overall)]


def _noise_slope(levels: list[torch.Tensor], shares: list[torch.Tensor]) -> torch.Tensor:
    """Slope of log noise level against log brightness over the bins holding at least 2%
    of the flat pixels: 0 for signal-independent (Gaussian) noise, 1/2 for photon noise,
    whose variance is proportional to the signal. 0 when fewer than two bins qualify."""
    level = torch.stack(levels, 1)  # [B, bins]
    weight = (torch.stack(shares, 1) > 0.02).float()  # [B, bins]
    centre = torch.tensor(NOISE_BIN_CENTRES).to(level).log()[None]  # [1, bins]
    count = weight.sum(1, keepdim=True).clamp_min(1)
    centred = (centre - (centre * weight).sum(1, keepdim=True) / count) * weight
    spread = (centred**2).sum(1)
    covariance = (centred * (level - (level * weight).sum(1, keepdim=True) / count)).sum(1)
    return torch.where(spread > 1e-6, covariance / spread.clamp_min(1e-6), 0.0)


def _max_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Maximum over a size x size window (shrinking at the border), as two 1-D passes of
    shifted maxima: on CPU 20-40 times faster than ``max_pool2d`` with stride 1, and exact."""
    pad, (height, width) = size // 2, x.shape[-2:]
    rows = F.pad(x, (0, 0, pad, pad), value=float("-inf"))
    out = rows[..., :height, :]
    for shift in range(1, size):
        out = torch.maximum(out, rows[..., shift : shift + height, :])
    columns = F.pad(out, (pad, pad), value=float("-inf"))
    out = columns[..., :width]
    for shift in range(1, size):
        out = torch.maximum(out, columns[..., shift : shift + width])
    return out


def _edge_steepness(
    luma: torch.Tensor, step_x: torch.Tensor, step_y: torch.Tensor, q: float = 0.98
) -> list[torch.Tensor]:
    """At the pixels whose local contrast (max - min over a window) is in the top 2%: the
    largest one-pixel step in the window over that contrast, log. A sharp edge makes its
    whole contrast in one step; a blurred one spreads it, and the ratio falls with the blur
    width rather than with the photo's contrast. 3x3 and 7x7 windows, then 7x7 with steps
    along x and along y apart (motion blur spreads one direction only)."""
    step_x = F.pad(step_x[:, None], (0, 1))  # [B, 1, H, W]
    step_y = F.pad(step_y[:, None], (0, 0, 0, 1))
    features = []
    for size in (3, 7):
        contrast = (_max_filter(luma, size) + _max_filter(-luma, size)).flatten(1)  # [B, HW]
        strong = contrast >= _quantile(contrast, q)[:, None]
        total = (contrast * strong).sum(1)
        largest_x = _max_filter(step_x, size).flatten(1)
        largest_y = _max_filter(step_y, size).flatten(1)
        largest = [torch.maximum(largest_x, largest_y)]
        if size == 7:
            largest += [largest_x, largest_y]
        features += [_log_ratio((steps * strong).sum(1), total) for steps in largest]
    return features


def _blockiness(step_x: torch.Tensor, step_y: torch.Tensor) -> list[torch.Tensor]:
    """Step size at the 8-pixel grid boundary and at the strongest phase, each against the
    mean step; columns then rows."""
    features = []
    for steps, dim in ((step_x, 2), (step_y, 1)):
        profile = _phase_profile(steps, 8, dim)  # [B, 8]; index 7 spans pixels 7|8
        mean = profile.mean(1)
        features += [_log_ratio(profile[:, 7], mean), _log_ratio(profile.max(1).values, mean)]
    return features


def _periodicity(
    luma: torch.Tensor, step_x: torch.Tensor, step_y: torch.Tensor
) -> list[torch.Tensor]:
    """Interpolation leaves steps and curvature that repeat with the upsampling factor."""
    curve_x = (luma[..., :, 2:] - 2 * luma[..., :, 1:-1] + luma[..., :, :-2]).abs()[:, 0]
    curve_y = (luma[..., 2:, :] - 2 * luma[..., 1:-1, :] + luma[..., :-2, :]).abs()[:, 0]
    features = []
    for along_x, along_y in ((step_x, step_y), (curve_x, curve_y)):
        for period in (2, 3, 4):
            for steps, dim in ((along_x, 2), (along_y, 1)):
                profile = _phase_profile(steps, period, dim)
                features.append(_log_ratio(profile.max(1).values, profile.min(1).values))
    return features


def _sharpness(luma: torch.Tensor) -> list[torch.Tensor]:
    energies = []
    for size in (3, 5, 9):
        smooth = _box(luma, size)
        energies.append((luma - smooth).abs().mean(dim=(1, 2, 3)))
    logs = [_log(e) for e in energies]
    return [*logs, logs[0] - logs[1], logs[1] - logs[2]]


def _bright_edge_spread(image: torch.Tensor, luma: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel means of the brightest 5% of pixels, grey-edge energies and spreads,
    each [B, 3]."""
    red, green, blue = image[:, 0], image[:, 1], image[:, 2]  # [B, H, W]
    flat_luma = luma.flatten(1)
    bright = flat_luma >= _quantile(flat_luma, 0.95)[:, None]
    bright_means = (image.flatten(2) * bright[:, None]).sum(2) / bright.sum(1, keepdim=True)
    edges = torch.stack(
        [
            (c[:, :, 1:] - c[:, :, :-1]).abs().mean(dim=(1, 2))
            + (c[:, 1:, :] - c[:, :-1, :]).abs().mean(dim=(1, 2))
            for c in (red, green, blue)
        ],
        dim=1,
    )  # [B, 3]
    spreads = image.std(dim=(2, 3))  # [B, 3]
    return [bright_means, edges, spreads]


def _ratios(values: torch.Tensor) -> list[torch.Tensor]:
    """[B, 3] -> log red/green and log blue/green, each [B]."""
    return [_log_ratio(values[:, 0], values[:, 1]), _log_ratio(values[:, 2], values[:, 1])]


def _colour(image: torch.Tensor, luma: torch.Tensor) -> list[torch.Tensor]:
    """Channel ratios under three colour-constancy assumptions: the scene averages to grey,
    its brightest pixels are white, its edges are achromatic (grey-edge)."""
    means = image.mean(dim=(2, 3))  # [B, 3]
    bright_means, edges, spreads = _bright_edge_spread(image, luma)
    saturation = (image.amax(1) - image.amin(1)).mean(dim=(1, 2))
    features = []
    for values in (means, bright_means, edges):
        features += _ratios(values)
    features.append(saturation)
    features += _ratios(spreads)
    return features


def _colour_coarse(image: torch.Tensor, luma: torch.Tensor) -> list[torch.Tensor]:
    """The bright-pixel, grey-edge and spread ratios on the image averaged over blocks,
    where noise no longer hides a cast (the smallest image taken, 16 pixels a side, keeps
    2 blocks a side)."""
    coarse_image = F.avg_pool2d(image, COARSE_COLOUR)
    coarse_luma = F.avg_pool2d(luma, COARSE_COLOUR)
    return [
        ratio
        for values in _bright_edge_spread(coarse_image, coarse_luma)
        for ratio in _ratios(values)
    ]


def _light(image: torch.Tensor, luma: torch.Tensor) -> list[torch.Tensor]:
    flat = luma.flatten(1)
    # He et al.'s dark channel: haze lifts the darkest channel of every patch (7x7 minimum).
    dark = -_max_filter(-image.amin(1, keepdim=True), 7)
    return [
        flat.mean(1),
        flat.std(1),
        _quantile(flat, 0.01),
        _quantile(flat, 0.99),
        dark.mean(dim=(1, 2, 3)),
    ]


@torch.no_grad()
def signal_statistics(image: torch.Tensor) -> torch.Tensor:
    """``image`` [B, 3, H, W], H and W at least 16 -> [B, DIM] (``FEATURE_NAMES``). Values
    outside [0, 1] (float AWGN) are clipped for all but ``noise_slope``."""
    weights = torch.tensor(LUMA).to(image.device, torch.float32)[None, :, None, None]
    luma_as_given = (image.float() * weights).sum(1, keepdim=True)  # AWGN stays unclipped
    image = image.float().clamp(0.0, 1.0)
    luma = (image * weights).sum(1, keepdim=True)
    noise = _noise_level_function(luma)
    noise_as_given = _noise_level_function(luma_as_given)
    bins = len(NOISE_BINS) - 1
    step_x = (luma[..., :, 1:] - luma[..., :, :-1]).abs()[:, 0]  # [B, H, W-1]
    step_y = (luma[..., 1:, :] - luma[..., :-1, :]).abs()[:, 0]  # [B, H-1, W]
    features = [
        *noise,
        *_blockiness(step_x, step_y),
        *_periodicity(luma, step_x, step_y),
        *_sharpness(luma),
        *_colour(image, luma),
        *_light(image, luma),
        _noise_slope(noise_as_given[:bins], noise_as_given[bins : 2 * bins]),
        _noise_slope(noise[:bins], noise[bins : 2 * bins]),
        *_edge_steepness(luma, step_x, step_y),
        *_colour_coarse(image, luma),
    ]
    return torch.stack(features, dim=1)
