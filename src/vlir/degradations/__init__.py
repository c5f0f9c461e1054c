"""SPIRE's parameterised degradation engine: ops, records, partial targets, prompts.

>>> rng = np.random.default_rng(0)
>>> degraded, record = DegradationPipeline()(clean, rng)
>>> record.prompt().format()          # "deblur with sigma 1.5; denoise with sigma 25"
>>> record.partial_target(clean, RestorationPrompt.removing(["noise"]))  # still blurred
"""

from vlir.degradations.base import Op, ParamRange
from vlir.degradations.paraphrase import paraphrase
from vlir.degradations.pipeline import DegradationPipeline, parse_ops
from vlir.degradations.prompt import BLIND, PromptItem, RestorationPrompt
from vlir.degradations.record import DegradationRecord, Step
from vlir.degradations.registry import OP_NAMES, OPS, get_op
from vlir.degradations.resize import imresize

__all__ = [
    "BLIND",
    "OPS",
    "OP_NAMES",
    "DegradationPipeline",
    "DegradationRecord",
    "Op",
    "ParamRange",
    "PromptItem",
    "RestorationPrompt",
    "Step",
    "get_op",
    "imresize",
    "paraphrase",
    "parse_ops",
]
