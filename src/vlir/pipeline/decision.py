"""What a call does with the photo, decided before any network runs: the prompt, the hints
where nothing was found, and whether a blur is divided out or the noise expert denoises."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlir.degradations import RestorationPrompt
from vlir.errors import VlirError
from vlir.perception import Analysis
from vlir.pipeline.blur import Deconvolution, deconvolution_request, hidden_blur_request
from vlir.pipeline.cast import cast_with_noise
from vlir.pipeline.hints import blur_hint, enlarged_hint, haze_hint
from vlir.pipeline.noise import NoiseLevel, noise_level, reads_white
from vlir.pipeline.removal import removes_blur


@dataclass
class Decision:
    """What a call does with the photo, decided before any network runs (``decide``)."""

    prompt: str
    """The restoration prompt the restorer is given: the words, or the analyzer's."""
    automatic: bool
    enlarged: float | None = None
    """Nothing found but it reads enlarged (``enlarged_hint``): returned as it is."""
    hazy: float | None = None
    """Nothing found but it reads faintly hazy (``haze_hint``): told "dehaze"."""
    unseen: bool = False
    """Nothing found otherwise: deblurred if its estimate reads blurred, else kept."""
    deconvolution: Deconvolution | None = None
    """How to divide out a blur that is all there is to remove (None: the restorer)."""
    noise: NoiseLevel | None = None
    """For the noise expert, where white or shot noise is all there is to remove
    (``noise_request``; None: the restorer)."""
    cast: bool = False
    """A colour cast removed with the noise (``cast_with_noise``): the expert denoises, and
    its output takes the restorer's colours (found: ``colours_of``) or has its cast
    corrected by the restorer (named, not found: ``Restorer._cast_conditioning``)."""
    blurred: float | None = None
    """No blur found under the noise, but the blur probabilities sum to
    ``BLUR_UNDER_NOISE_HINT`` or more (``blur_hint``): a Gaussian is fitted and divided out."""


def decide(
    analysis: Analysis,
    prompt: str | None,
    *,
    restoring: bool,
    always_blind: bool,
    max_sigma: float | None,
    grey: bool,
    refine: bool,
    deconvolve: bool,
    pixels: torch.Tensor | None = None,
) -> Decision:
    """What to do with the photo, before any network runs: the prompt (the words, or
    the analyzer's reading), what automatic restoration does where nothing is found
    (the hints), and whether a blur is divided out (``deconvolution_request``) or the
    noise expert removes the noise (``noise_request``) instead (``noise_level``, from
    ``pixels`` [1, 3, H, W]). ``restoring``: a restorer runs (else a diffusion restorer
    samples, and nothing is planned); ``always_blind``: automatic, it is told the blind
    prompt whatever is found (a diffusion restorer trained so); ``max_sigma``: the
    strongest noise the expert removes (None: no expert, or not for this call)."""
    automatic = prompt is None
    if automatic:
        request = analysis.prompt if analysis.found else RestorationPrompt.blind_prompt()
        if always_blind:
            request = RestorationPrompt.blind_prompt()
        elif analysis.note:  # guesses would restore what is not there
            raise VlirError(analysis.note, hint="say what to remove with --prompt")
        prompt = request.format()
    decision = Decision(prompt, automatic)
    if automatic and restoring and not refine and not analysis.found:
        decision.enlarged = enlarged_hint(analysis)
        if decision.enlarged is None and not grey:
            decision.hazy = haze_hint(analysis)
        if decision.hazy is not None:
            decision.prompt = RestorationPrompt.removing(("haze",)).format()
        decision.unseen = decision.enlarged is None and decision.hazy is None
    if decision.enlarged is not None:  # returned as it is: nothing to plan
        return decision
    request = RestorationPrompt.parse(decision.prompt)
    if (deconvolve or decision.unseen) and restoring:
        decision.deconvolution = deconvolution_request(request, analysis, automatic=automatic)
    brightness = 0.5 if pixels is None else float(pixels.mean())  # (for shot noise)
    if max_sigma is not None:
        limit = max_sigma
        decision.noise = noise_level(request, analysis, automatic, pixels, limit)
        if decision.noise is None and not grey and cast_with_noise(request, analysis):
            bare = analysis.without("color_cast")  # the noise, for the expert alone
            kept = tuple(item for item in request.items if item.op != "color_cast")
            words = RestorationPrompt(kept, blind=request.blind)
            noise = noise_level(words, bare, automatic, pixels, limit)
            if noise is not None and reads_white(noise, bare, brightness):
                decision.noise, decision.cast = noise, True  # (coarse noise: the restorer)
    if decision.noise is not None:
        # a blur under the noise: divided out of the expert's output, where removed
        decision.deconvolution = None
        if deconvolve and reads_white(decision.noise, analysis, brightness):
            sigma = decision.noise.photo_sigma(brightness)
            decision.deconvolution = deconvolution_request(
                request, analysis, automatic=automatic, under_noise=sigma
            )
            hinted = (automatic or request.blind) and not grey
            if decision.deconvolution is None and hinted:
                decision.blurred = blur_hint(analysis)
                if decision.blurred is not None:
                    decision.deconvolution = hidden_blur_request(sigma)
        if decision.deconvolution is None and removes_blur(request, analysis):
            decision.noise = None  # --no-deconvolve, or coarse noise: the restorer, both
    return decision
