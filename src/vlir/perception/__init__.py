"""VLMIR stage 1: image tower, degradation predictor, embeddings, analysis."""

from vlir.perception.analyze import Analysis, Finding, analyze
from vlir.perception.model import (
    Perception,
    PerceptionConfig,
    PerceptionModel,
    load_perception,
)

__all__ = [
    "Analysis",
    "Finding",
    "Perception",
    "PerceptionConfig",
    "PerceptionModel",
    "analyze",
    "load_perception",
]
