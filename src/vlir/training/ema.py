"""An exponential moving average of a model's weights, validated and exported in its place.

Small models trained with small batches on random degradations wander from step to step:
perception's validation F1 moved by 0.01 between neighbouring checkpoints. The average
of the last ~1/(1 - decay) steps' weights (BasicSR's ``net_g_ema``, timm's ``ModelEma``)
smooths that wander at no cost at inference, since it is one set of weights of the same
shape.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from vlir.errors import VlirError


class WeightAverage:
    """``decay`` close to 1 averages over more steps; early on the average follows the
    model more closely ((1 + n) / (10 + n) after n updates, as timm's warm-up), so a run
    started from random weights is not dragged back to them."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise VlirError(f"ema must be between 0 and 1 (its decay), not {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s weights (and copy its buffers' counters)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        live = model.state_dict()
        for key, average in self.model.state_dict().items():
            current = live.get(key)
            if current is None or current.shape != average.shape:
                continue  # a part only the export holds (e.g. a stored text LoRA)
            if average.is_floating_point():
                average.lerp_(current.to(average.dtype), 1.0 - decay)
            else:
                average.copy_(current)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def resume_average(
    model: nn.Module, decay: float, checkpoint: Mapping | None
) -> WeightAverage | None:
    """The run's average (None when ``decay`` is 0), resumed from ``checkpoint`` when it
    kept one; a run resumed with ``ema`` newly set starts its average from the weights it
    resumes."""
    if not decay:
        return None
    average = WeightAverage(model, decay)
    if checkpoint is not None and "ema" in checkpoint:
        average.load_state_dict(checkpoint["ema"])
    return average
