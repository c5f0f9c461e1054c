"""A blur that is all there is to remove, divided out instead of restored: how its kernel
is found (estimated, stated, read, or a Gaussian fitted) and at what balance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlir.deconvolution import (
    IMPLAUSIBLE_SPREAD,
    SHARP_SPREAD,
    WIENER_BALANCE_BY_BLUR,
    blur_spread,
    estimate_blur_kernel,
    gaussian_psf,
    gaussian_width,
    kernel_size_for,
    kernel_spread,
    narrowest_gaussian,
    wiener_balance,
)
from vlir.deconvolution.gaussian import FIT_NARROWING
from vlir.degradations import RestorationPrompt, get_op
from vlir.perception import Analysis
from vlir.pipeline.hints import enlarged_hint
from vlir.pipeline.noise import EXPERT_NOISES
from vlir.pipeline.removal import removed_ops

UNSEEN_BLUR_SPREAD = 1.0
"""Where the analyzer found nothing, an estimate must spread this far (pixels) to be
deconvolved: past every sharp photo measured (80 BSD400 training photos read at most 0.89;
as a check, CBSD68, Set5, Set14 and LIVE1 as they are at most 0.92, Set5's bird). The
faint blurs the analyzer missed among the first 20 CBSD68 photos of the motion, Gaussian
and defocus tasks read 0.94-2.29 (4 of 5 at 1.0 or more); below this the photo reads sharp,
and automatic restoration returns it as it is (``Restoration.kept``)."""


LIGHT_JPEG_QUALITY = 75
"""A JPEG of this quality or above, stated or found with a blur, is left as it is and the
blur deconvolved: a blurred photo saved as a JPEG (quality 90, as cameras and phones
write) reads as blur plus JPEG of quality 76-90, and the restorer, given both, leaves the
blur. 13 BSD400 training photos with each of the three blurs, saved at quality 90: input
24.73, the restorer 24.98, this rule 26.51 dB (26 of 39 deconvolved, none worse by 0.1 dB);
the first 12 CBSD68 photos of the defocus and Gaussian tasks: 24.54 / 25.01 / 25.98.
Heavier JPEG stays the restorer's, blur and all."""


@dataclass(frozen=True)
class Deconvolution:
    """How to undo a blur that is all a request removes."""

    side: int
    """The odd side of the kernel to estimate."""
    balance: float
    """The Wiener inverse's noise-to-signal balance (``WIENER_BALANCE_BY_BLUR``)."""
    least_spread: float = 0.0
    """Deconvolve only an estimate spread at least this far (pixels; else the restorer
    runs): ``UNSEEN_BLUR_SPREAD`` where nothing was found, ``SHARP_SPREAD`` (any blur at
    all) where a light JPEG rides along."""
    left: tuple[str, ...] = ()
    """Ops of the request the deconvolution leaves as they are (a light JPEG)."""
    stated_sigma: float | None = None
    """The width of a Gaussian blur, all there is to remove, that the request states:
    divided out as it is (a width under the true one leaves the rest), nothing estimated."""
    read_sigma: float | None = None
    """The width the analyzer read where Gaussian blur is all the request removes and no
    width is stated: checked against the estimate (``narrowest_gaussian``), and that
    Gaussian divided out."""
    sized: float | None = None
    """The spread the blur's stated or read size implies (``blur_spread``; the widest of
    the blurs removed; None: a blur of no known size): an estimate spread more than
    ``IMPLAUSIBLE_SPREAD`` times this is the photo's pattern, not the blur, and the
    restorer runs instead."""
    fitted: bool = False
    """Divide out the Gaussian fitted to the estimate (``gaussian_width``, made up for
    ``FIT_NARROWING``) rather than the estimate: under noise the expert removed first
    (``deconvolution_request``'s ``under_noise``), where the blur reads Gaussian. The
    estimate from a denoised photo is rough: on 39 BSD400 training photos
    with a Gaussian blur under noise the fitted Gaussian gained 0.63 dB over the expert's
    output, the estimate 0.44; on 40 with defocus the estimate did better (0.49 against
    0.41), so a blur read as defocus or camera shake alone keeps the estimate."""

    def kernel(self, photo: np.ndarray) -> tuple[np.ndarray, float | None] | None:
        """The kernel to divide out of ``photo`` [H, W, 3] and, where it is a Gaussian,
        its width; None where the estimate spreads less than ``least_spread``, or more than
        ``IMPLAUSIBLE_SPREAD`` times ``sized`` (the restorer runs). A point: the photo reads
        sharp."""
        if self.stated_sigma is not None:
            return gaussian_psf(self.stated_sigma), self.stated_sigma
        estimate = estimate_blur_kernel(photo, self.side)
        spread = kernel_spread(estimate)
        if spread < self.least_spread:
            return None
        if spread == 0.0 or (self.read_sigma is None and not self.fitted):
            if self.sized is not None and spread > IMPLAUSIBLE_SPREAD * self.sized:
                return None
            return estimate, None
        if self.read_sigma is None:
            sigma = gaussian_width(estimate) / FIT_NARROWING
        else:
            sigma = narrowest_gaussian(self.read_sigma, estimate)
        return gaussian_psf(sigma), sigma


@dataclass
class Deblurred:
    """A photo whose blur was divided out, no network run."""

    kernel: np.ndarray
    """The kernel divided out (a point: the photo read sharp and is returned as it is)."""
    sigma: float | None
    """The Gaussian's width where the kernel is one (``Restoration.sigma``)."""
    image: np.ndarray
    """[H, W, 3]."""


def hidden_blur_request(under_noise: float) -> Deconvolution:
    """How to divide a blur not found, but hinted (``blur_hint``), out of the noise
    expert's output (``under_noise``: the noise's sigma, 0-255): the Gaussian fitted to
    the estimate, at the balance a found Gaussian would get; an estimate that reads sharp
    leaves the expert's output as it is."""
    balance = wiener_balance(("blur",), under_noise)
    return Deconvolution(kernel_size_for(None), balance, fitted=True)


def deconvolution_request(
    request: RestorationPrompt,
    analysis: Analysis,
    *,
    automatic: bool = False,
    under_noise: float | None = None,
) -> Deconvolution | None:
    """Where blur is all there is to remove (the request names only blur-family ops, or is
    blind and the analyzer found only those), how to deconvolve it; None otherwise. In
    other mixtures the restorer does everything: its output is not a sharp photo convolved
    with one kernel, and deconvolving it lost 0.2-1.7 dB on each of six held-out mixtures
    with camera shake (the noise expert's output is one: ``under_noise``). A stated motion
    length, else the perceived one, sizes the kernel. A light JPEG
    (``LIGHT_JPEG_QUALITY``) with the blur is left as it is. A Gaussian blur alone
    is divided out as a Gaussian: of the width the words state, else of the width read
    (``Deconvolution.read_sigma``); ``automatic``: the request is the analyzer's own
    prompt, whose numbers are readings, not words.

    Blind with nothing found: deconvolve if the photo reads clearly blurred after all (the
    analyzer misses faint blur: sigma-0.8 Gaussians, radius-1 disks) and not enlarged
    (``enlarged_hint``: an enlarged photo's softness is no blur to divide out); an estimate
    that reads sharp gives no kernel (``Deconvolution.kernel``): automatic restoration then
    keeps the photo, words ("remove all degradation") run the restorer's blind mode.

    ``under_noise``: the sigma (0-255) of the noise the noise expert removes first
    (``noise_request``; shot noise's at the photo's mean brightness,
    ``NoiseLevel.photo_sigma``); the blur is then divided out of its output, not the photo's
    (on CBSD68's blur + noise task, 24.16 -> 24.44 dB, 32 of 68 photos better, none
    worse; ``benchmarks/restore.py --tasks blur+noise``). Where the blur reads Gaussian,
    the Gaussian fitted to the estimate is divided out (``Deconvolution.fitted``), at a
    balance that grows with the sigma (``wiener_balance``). A blur the analyzer missed
    under the noise is planned apart, where its probabilities hint at it
    (``blur_hint``, ``hidden_blur_request``)."""
    found = {finding.op: finding for finding in analysis.found}
    if request.text:
        return None
    if request.blind and not found:
        if enlarged_hint(analysis) is not None:  # its softness is the enlargement's
            return None
        faint = WIENER_BALANCE_BY_BLUR["blur"]  # what goes unseen: faint Gaussians, disks
        return Deconvolution(kernel_size_for(None), faint, UNSEEN_BLUR_SPREAD)
    removing = removed_ops(request, analysis)
    if request.blind:
        quality = found["jpeg"].strength if "jpeg" in found else None
    else:
        jpeg = request.item_for("jpeg")
        quality = jpeg.stated.get("quality") if jpeg is not None else None
    left = ("jpeg",) if quality is not None and quality >= LIGHT_JPEG_QUALITY else ()
    blurs = removing - set(left) - (set(EXPERT_NOISES) if under_noise is not None else set())
    if not blurs or any(get_op(name).family != "blur" for name in blurs):
        return None
    item = request.item_for("motion_blur")
    length = (item.stated if item is not None else {}).get("length")
    if length is None and "motion_blur" in found:
        length = found["motion_blur"].strength
    balance = wiener_balance(blurs, under_noise or 0.0)
    stated_sigma, read_sigma = None, None
    if blurs == {"blur"}:  # a Gaussian, one number
        item = request.item_for("blur")
        stated_sigma = None if automatic or item is None else item.stated.get("sigma")
        if stated_sigma is None and "blur" in found:
            read_sigma = found["blur"].strength
    sizes = []
    for name in blurs:
        item = request.item_for(name)
        size = None if automatic or item is None else item.stated.get(get_op(name).strength)
        if size is None and name in found:
            size = found[name].strength
        sizes.append(None if size is None else blur_spread(name, size))
    spread = SHARP_SPREAD if left else 0.0
    return Deconvolution(
        kernel_size_for(length),
        balance,
        spread,
        left,
        stated_sigma=stated_sigma,
        read_sigma=read_sigma,
        sized=None if None in sizes else max(sizes),
        fitted=under_noise is not None and "blur" in blurs,
    )
