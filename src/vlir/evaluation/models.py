"""vlir checkpoints as benchmark methods, beside the classical baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlir.degradations import imresize
from vlir.evaluation.baselines import Method, Sample


class RestorerMethod(Method):
    """A restorer checkpoint in automatic mode (perception decides the prompt).

    For super-resolution the low-resolution input is first MATLAB-bicubic
    upsampled: the restorer was trained to undo down-sampling at the same size.
    """

    def __init__(self, path: str, *, prompt: str | None = None) -> None:
        from vlir.pipeline import Restorer

        self.name = Path(path).name + ("" if prompt is None else f" [{prompt}]")
        self.restorer = Restorer.from_pretrained(path)
        self.prompt = prompt

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        if sample.scale > 1:
            image = imresize(np.clip(image, 0, 1), sample.scale)
        return self.restorer(image, prompt=self.prompt).image
