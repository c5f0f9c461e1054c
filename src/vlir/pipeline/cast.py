"""A colour cast removed with the noise: the expert denoises, and the cast is taken off its
output (in the restorer's colours where it was found; by the restorer reading the denoised
photo where it was named but not found)."""

from __future__ import annotations

import torch

from vlir.degradations import RestorationPrompt
from vlir.perception import Analysis
from vlir.pipeline.noise import EXPERT_NOISES
from vlir.pipeline.removal import removed_ops


def cast_with_noise(request: RestorationPrompt, analysis: Analysis) -> bool:
    """Whether what was found is white or shot noise alone, or with a colour cast, and the
    request removes both (automatic or blind where the cast was found; named, found or
    not). The expert then denoises, and the cast is removed from its output: in the
    restorer's colours where it was found (``colours_of``), by the restorer reading the
    denoised photo where it was not (``Restorer._cast_conditioning``). Only where the noise
    measures as strong as it reads (``reads_white``): RNI15's Glass and Pattern3, real
    noise read 8 and 11 but measured 3 and 5.3, keep the restorer, which denoises them as
    it sees them."""
    noise = {finding.op for finding in analysis.found} - {"color_cast"}
    if request.text or len(noise) != 1 or not noise <= set(EXPERT_NOISES):
        return False
    return removed_ops(request, analysis) == noise | {"color_cast"}


CAST_WORDS = "correct the color cast"
"""What the restorer is told where it corrects the cast of the noise expert's output, a
cast named but not found under the noise (``Restorer._cast_conditioning``): the photo it reads
then is the denoised one, where the cast is all there is to remove."""


def colours_of(colours: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
    """``detail`` [1, 3, H, W] (the noise expert's output) with the colours of ``colours``
    (the restorer's, which corrected a cast): per channel, the gain and offset that bring
    one nearest the other in least squares. The engine's cast is a gain per channel, so
    this keeps the expert's detail and the restorer's cast correction. On 12 BSD400
    training photos of its noise and cast where both were found: 24.68 dB with the
    restorer alone, 25.23 this way, none worse; on the 15 such of CBSD68's 68, 27.11 ->
    27.65, 3 worse by 0.16-0.62 (by script)."""
    source = detail[0].flatten(1).double()  # [3, H*W]
    target = colours[0].flatten(1).double()
    centred = source - source.mean(dim=1, keepdim=True)
    covariance = (centred * (target - target.mean(dim=1, keepdim=True))).sum(dim=1)  # [3]
    gain = covariance / centred.pow(2).sum(dim=1).clamp_min(1e-12)
    offset = target.mean(dim=1) - gain * source.mean(dim=1)
    mapped = detail[0] * gain.float()[:, None, None] + offset.float()[:, None, None]
    return mapped.clamp(0, 1)[None]
