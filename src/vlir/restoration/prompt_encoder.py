"""LMDIR's query-based prompt encoder.

A handful of learned queries attend over everything the restorer is told (the
restoration prompt's tokens and perception's degradation tokens) and distil it
into a fixed set of prompt tokens plus one prompt vector. Fixed size means the
restorer's cost does not depend on how much the user typed.
"""

from __future__ import annotations

import torch
from torch import nn


class QueryPromptEncoder(nn.Module):
    def __init__(self, dim: int, queries: int = 8, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, queries, dim) * 0.02)
        self.cross = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(layers)
        )
        self.self_attention = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3 * layers))
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            for _ in range(layers)
        )
        self.to_vector = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, T, D] (mask [B, T]) -> (prompt tokens [B, Q, D], prompt vector [B, D])."""
        queries = self.queries.expand(tokens.shape[0], -1, -1)
        padding = None if mask is None else mask < 0.5
        for index, (cross, self_attention, ffn) in enumerate(
            zip(self.cross, self.self_attention, self.ffn, strict=True)
        ):
            n1, n2, n3 = self.norms[3 * index : 3 * index + 3]
            attended, _ = cross(
                n1(queries), tokens, tokens, key_padding_mask=padding, need_weights=False
            )
            queries = queries + attended
            normed = n2(queries)
            mixed, _ = self_attention(normed, normed, normed, need_weights=False)
            queries = queries + mixed
            queries = queries + ffn(n3(queries))
        return queries, self.to_vector(queries.mean(1))
