"""A frozen text tower that remembers each sentence's encoding.

Training draws the same sentences again and again (the blind prompt alone is a
quarter of the restorer's requests, and there are 400 captions). Encoding only
sentences not seen before skips the tower for most of them: on 2 CPU cores the
tower was ~14% of a step (batch 4, 64x64); on the H100 the cache made no
measurable difference. Only for frozen towers, or with ``base=True`` for the
frozen base of a tower whose LoRA trains (VLMIR's alignment target): a cached
encoding of a changing tower would go stale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from vlir.text.encoder import TextEncoder, TextEncoding


class CachedTextEncoder:
    def __init__(self, encoder: TextEncoder, capacity: int = 50_000, *, base: bool = False) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self.base = base
        self.entries: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        """sentence -> (token states [T, D] of its real tokens, pooled [D])."""

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> TextEncoding:
        missing = list(dict.fromkeys(t for t in texts if t not in self.entries))
        if missing:
            if len(self.entries) + len(missing) > self.capacity:
                self.entries.clear()  # start over, keeping memory bounded
                missing = list(dict.fromkeys(texts))
            adapters_off = self.base and self.encoder.has_lora
            with self.encoder.without_lora() if adapters_off else contextlib.nullcontext():
                encoded = self.encoder(missing)
            lengths = encoded.mask.sum(1).long().tolist()
            for index, text in enumerate(missing):
                # Tokenizers here pad on the right: the real tokens come first.
                states = encoded.tokens[index, : lengths[index]].clone()
                self.entries[text] = (states, encoded.pooled[index].clone())
        states = [self.entries[t][0] for t in texts]
        tokens = pad_sequence(states, batch_first=True)  # [B, T, D], zeros after each end
        mask = pad_sequence(
            [torch.ones(len(s), device=tokens.device, dtype=tokens.dtype) for s in states],
            batch_first=True,
        )  # [B, T]
        pooled = torch.stack([self.entries[t][1] for t in texts])  # [B, D]
        return TextEncoding(tokens, mask, pooled)
