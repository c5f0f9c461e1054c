"""vlir checkpoints as benchmark methods, beside the classical baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlir.degradations import imresize
from vlir.evaluation.baselines import Method, Sample

ENSEMBLE_SUFFIX = "+x8"
"""A restorer method named with this suffix ("restorer+x8") averages its 8 flips and
quarter turns, the 4 upright flips where JPEG is removed (``Restorer(...,
ensemble=True)``)."""
ALONE_SUFFIX = "+alone"
"""A restorer method named with this suffix ("restorer+alone") removes white noise with
the restorer network too, not the noise expert (``Restorer(..., noise_expert=False)``):
restorer checkpoints compared on the denoising rows."""


def restorer_variant(name: str) -> tuple[str, bool, bool]:
    """(checkpoint, self-ensemble, restorer alone) of a method name with its suffixes
    (``ENSEMBLE_SUFFIX``, ``ALONE_SUFFIX``, in either order)."""
    ensemble = alone = False
    while name.endswith((ENSEMBLE_SUFFIX, ALONE_SUFFIX)):
        if name.endswith(ENSEMBLE_SUFFIX):
            name, ensemble = name.removesuffix(ENSEMBLE_SUFFIX), True
        else:
            name, alone = name.removesuffix(ALONE_SUFFIX), True
    return name, ensemble, alone


class RestorerMethod(Method):
    """A restorer checkpoint in automatic mode (perception decides the prompt),
    optionally followed by ``refine_steps`` of the diffusion refiner (fixed seed).

    For super-resolution the low-resolution input is first MATLAB-bicubic
    upsampled: the restorer was trained to undo down-sampling at the same size.
    """

    def __init__(
        self,
        path: str,
        *,
        prompt: str | None = None,
        refiner: str = "refiner",
        refine_steps: int = 0,
        seed: int = 0,
        ensemble: bool = False,
        alone: bool = False,
        device: str = "cpu",
    ) -> None:
        from vlir.pipeline import Restorer

        self.name = Path(path).name + ("" if prompt is None else f" [{prompt}]")
        if refine_steps:
            self.name += f"+refine{refine_steps}"
        if alone:
            self.name += ALONE_SUFFIX
        if ensemble:
            self.name += ENSEMBLE_SUFFIX
        expert = None if alone else "denoiser"
        self.restorer = Restorer.from_pretrained(
            path, refiner=refiner, denoiser=expert, device=device
        )
        self.prompt, self.refine_steps, self.seed = prompt, refine_steps, seed
        self.ensemble, self.alone = ensemble, alone

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        if sample.scale > 1:
            image = imresize(np.clip(image, 0, 1), sample.scale)
        refine = self.refine_steps > 0
        return self.restorer(
            image,
            prompt=self.prompt,
            refine=refine,
            steps=self.refine_steps or None,  # a diffusion restorer: its own steps
            seed=self.seed,
            ensemble=self.ensemble,
            noise_expert=not self.alone,
        ).image


def refiner_method(path: str, steps: int = 1, *, device: str = "cpu") -> RestorerMethod:
    """A refiner checkpoint as a method: its restorer, then ``steps`` of refinement; a
    diffusion restorer (no restorer before it: vlmir, spire) samples its own steps."""
    from vlir.diffusion import RefinerAdaptor

    restorer = RefinerAdaptor.config_from_dict(
        json.loads((Path(path) / "config.json").read_text())
    ).restorer
    if restorer is None:
        return RestorerMethod(path, device=device)
    method = RestorerMethod(restorer, refiner=path, refine_steps=steps, device=device)
    method.name = f"{Path(path).name}{steps}"
    return method
