"""LMDIR's conditioned restorer with SPIRE's prompt modulation."""

from vlir.restoration.conditioner import make_conditioning, semantic_tower
from vlir.restoration.network import RestorerConfig, RestorerModel

__all__ = ["RestorerConfig", "RestorerModel", "make_conditioning", "semantic_tower"]
