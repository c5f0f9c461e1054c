"""Diffusion refinement: SPIRE's frozen prior steered by a ControlNet-style adaptor
(gamma/beta fusion), VLMIR's cross-attention to the perception tokens, and the
Stable Diffusion backend for users who bring its weights."""

from vlir.diffusion.adaptor import RefinerAdaptor, RefinerConfig
from vlir.diffusion.prior import PriorConfig, PriorDenoiser
from vlir.diffusion.refiner import Refiner

__all__ = ["PriorConfig", "PriorDenoiser", "Refiner", "RefinerAdaptor", "RefinerConfig"]
