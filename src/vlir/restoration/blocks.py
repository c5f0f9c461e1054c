"""LMDIR's blocks and SPIRE's modulation, each small enough to read top to bottom.

Full-resolution work is convolutional (NAFNet-style: linear cost in pixels);
attention to text and perception tokens happens at the U-Net's bottleneck,
where the feature map is small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlir.restoration.local_statistics import local_group_norm, local_mean, to_pixels
from vlir.restoration.photo_statistics import active_statistics


def channel_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """LayerNorm of x [B, C, H, W] over channels at each pixel (NAFNet's LayerNorm2d):
    nothing outside a pixel enters its output, so tiles normalise as the whole map."""
    normed = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], weight, bias, eps)
    return normed.permute(0, 3, 1, 2)


class LayerNorm2d(nn.Module):
    """Normalises each [C, H, W] map over channels *and* positions (one-group GroupNorm),
    or with ``per_pixel`` over channels at each pixel alone (NAFNet's LayerNorm2d).

    Over the whole map the output depends on the statistics of everything in it, so a
    tile restores differently from the same pixels in the whole photo unless the photo's
    statistics are shared with it (``photo_statistics``); ``window`` (pixels of this map)
    instead limits them to a training crop's extent around each position (TLC,
    ``local_statistics``). Per pixel there is nothing to limit: a tile normalises exactly
    as the whole photo does. All keep their weights in ``norm``, so one checkpoint can
    start another.
    """

    def __init__(self, channels: int, window: int | None = None, per_pixel: bool = False) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.window = window
        self.per_pixel = per_pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        if self.per_pixel:
            return channel_norm(x, norm.weight, norm.bias, norm.eps)
        if self.window is None:
            statistics = active_statistics()
            if statistics is None:
                return norm(x)
            # [B, 2, H, W]: the mean and mean square over channels at each pixel
            moments = torch.cat([x.mean(1, keepdim=True), x.square().mean(1, keepdim=True)], 1)
            mean, mean_square = statistics.mean(self, moments).double().unbind(1)  # [B, 1, 1]
            own_mean, own_square = moments.double().mean(dim=(-2, -1)).unbind(1)
            # Never a smaller spread than the tile's own: a deep site's photo statistics were
            # gathered under other shallow ones and can fall short, and the blocks' gates
            # multiply features, so an under-normalised tile grows without bound (to NaN).
            variance = torch.maximum(mean_square - mean.square(), own_square - own_mean.square())
            scale = torch.rsqrt(variance.clamp_min(0) + norm.eps).to(x.dtype)[:, None]
            normed = (x - mean.to(x.dtype)[:, None]) * scale
            return normed * norm.weight[:, None, None] + norm.bias[:, None, None]
        height, width = x.shape[-2:]
        if height <= self.window and width <= self.window:
            return norm(x)
        return local_group_norm(x, norm.weight, norm.bias, self.window, norm.eps)


class ModulationFusion(nn.Module):
    """SPIRE's fusion: the prompt vector predicts per-channel scale (gamma) and shift (beta).

    Starts as the identity (zero-initialised), so an untrained prompt path cannot
    hurt, and learns how the words should change each feature.
    """

    def __init__(self, prompt_dim: int, channels: int) -> None:
        super().__init__()
        self.to_gamma_beta = nn.Linear(prompt_dim, 2 * channels)
        nn.init.zeros_(self.to_gamma_beta.weight)
        nn.init.zeros_(self.to_gamma_beta.bias)

    def forward(self, x: torch.Tensor, prompt_vector: torch.Tensor | None) -> torch.Tensor:
        if prompt_vector is None:
            return x
        gamma, beta = self.to_gamma_beta(prompt_vector).chunk(2, dim=-1)  # [B, C] each
        return x * (1 + gamma[..., None, None]) + beta[..., None, None]


class NAFBlock(nn.Module):
    """NAFNet's block (SimpleGate, simplified channel attention), with prompt modulation."""

    def __init__(
        self,
        channels: int,
        prompt_dim: int,
        expand: int = 2,
        *,
        modulated: bool = True,
        window: int | None = None,
        per_pixel_norm: bool = False,
    ) -> None:
        super().__init__()
        hidden = channels * expand
        self.window = window
        """Positions the statistics cover (None: the whole map); see ``LayerNorm2d``."""
        self.norm1 = LayerNorm2d(channels, window, per_pixel_norm)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        # The pooling is ``local_mean`` in forward; index 0 stays so checkpoints keep their
        # ``channel_attention.1.*`` keys.
        self.channel_attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden // 2, hidden // 2, 1)
        )
        self.conv2 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels, window, per_pixel_norm)
        self.ffn1 = nn.Conv2d(channels, hidden, 1)
        self.ffn2 = nn.Conv2d(hidden // 2, channels, 1)
        self.modulation = ModulationFusion(prompt_dim, channels) if modulated else None
        self.alpha = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    @staticmethod
    def simple_gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b

    def forward(self, x: torch.Tensor, prompt_vector: torch.Tensor | None) -> torch.Tensor:
        y = self.simple_gate(self.dwconv(self.conv1(self.norm1(x))))
        statistics = active_statistics() if self.window is None else None
        # [B, C, 1, 1] over the map (or the whole photo it is a tile of), or a grid of
        # window means
        pooled = local_mean(y, self.window) if statistics is None else statistics.mean(self, y)
        attention = self.channel_attention[1](pooled)  # 1x1: the same on the grid or pixels
        y = self.conv2(y * to_pixels(attention, y.shape[-2:]))
        if self.modulation is not None:
            y = self.modulation(y, prompt_vector)
        x = x + self.alpha * y
        y = self.ffn2(self.simple_gate(self.ffn1(self.norm2(x))))
        return x + self.beta * y


class CrossAttentionBlock(nn.Module):
    """Pixels of a small map attend to a token set, then a feed-forward; pre-norm, residual.

    The degradation-aware and content-aware blocks of LMDIR are this block with
    different tokens (degradation tokens; content and semantic tokens).
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.project_tokens = nn.Linear(token_dim, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.ffn = nn.Sequential(
            nn.LayerNorm(channels),
            nn.Linear(channels, 2 * channels),
            nn.GELU(),
            nn.Linear(2 * channels, channels),
        )
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(
        self, x: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, channels, height, width = x.shape
        queries = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        keys = self.project_tokens(tokens)  # [B, K, C]
        padding = None if mask is None else mask < 0.5
        attended, _ = self.attention(
            self.norm(queries), keys, keys, key_padding_mask=padding, need_weights=False
        )
        queries = queries + self.gate.tanh() * attended
        queries = queries + self.gate.tanh() * self.ffn(queries)
        return queries.transpose(1, 2).reshape(batch, channels, height, width)


class ReferenceBlock(nn.Module):
    """LMDIR's reference prior: local attention to the reference at the same place,
    plus global attention to a summary of the whole reference.

    Local: each pixel attends to the k x k neighbourhood of the reference features
    around its own position (linear in pixels). Global: each pixel attends to the
    reference map pooled to ``grid`` x ``grid`` tokens.
    """

    def __init__(
        self,
        channels: int,
        window: int = 3,
        grid: int = 8,
        heads: int = 4,
        per_pixel_norm: bool = False,
    ) -> None:
        super().__init__()
        self.window, self.grid = window, grid
        self.norm_x = LayerNorm2d(channels, per_pixel=per_pixel_norm)
        self.norm_ref = LayerNorm2d(channels, per_pixel=per_pixel_norm)
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.global_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.out = nn.Conv2d(2 * channels, channels, 1)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        if reference.shape[-2:] != x.shape[-2:]:
            reference = F.interpolate(
                reference, size=(height, width), mode="bilinear", align_corners=False
            )
        xn, rn = self.norm_x(x), self.norm_ref(reference)
        q = self.query(xn).flatten(2).transpose(1, 2)  # [B, HW, C]
        k = F.unfold(self.key(rn), self.window, padding=self.window // 2)  # [B, C*w*w, HW]
        v = F.unfold(self.value(rn), self.window, padding=self.window // 2)
        k = k.view(batch, channels, -1, height * width).permute(0, 3, 2, 1)  # [B, HW, w*w, C]
        v = v.view(batch, channels, -1, height * width).permute(0, 3, 2, 1)
        weights = torch.softmax((k @ q[..., None]).squeeze(-1) / channels**0.5, dim=-1)
        local = (weights[..., None] * v).sum(2)  # [B, HW, C]
        summary = F.adaptive_avg_pool2d(rn, self.grid).flatten(2).transpose(1, 2)
        global_, _ = self.global_attention(q, summary, summary, need_weights=False)
        fused = (
            torch.cat([local, global_], dim=-1)
            .transpose(1, 2)
            .reshape(batch, 2 * channels, height, width)
        )
        return x + self.gate.tanh() * self.out(fused)
