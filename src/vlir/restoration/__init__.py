"""LMDIR's conditioned restorer with SPIRE's prompt modulation, and the noise expert."""

from vlir.restoration.conditioner import make_conditioning, semantic_tower
from vlir.restoration.denoiser import DenoiserConfig, DenoiserModel
from vlir.restoration.network import RestorerConfig, RestorerModel

__all__ = [
    "DenoiserConfig",
    "DenoiserModel",
    "RestorerConfig",
    "RestorerModel",
    "make_conditioning",
    "semantic_tower",
]
