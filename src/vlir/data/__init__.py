"""Datasets: clean photo folders with captions, degraded on the fly from records."""

from vlir.data.clean import CleanImages, load_captions
from vlir.data.degraded import DegradedBatch, DegradedSampler

__all__ = ["CleanImages", "DegradedBatch", "DegradedSampler", "load_captions"]
