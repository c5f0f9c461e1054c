"""Image in, image out: analyse, condition, restore in overlapping tiles, optionally refine.

>>> restorer = Restorer.from_pretrained()            # shipped weights, no network
>>> result = restorer(image)                         # automatic: perception decides
>>> result = restorer(image, prompt="remove the rain but keep the blur", semantic="a cat")
>>> result = restorer(image, refine=True, steps=1, seed=0)   # + the diffusion refiner
>>> result = restorer(image, ensemble=True)           # 8 flips and turns, averaged
>>> result.image, result.report()

The same class runs every restoring checkpoint: a restorer (``restorer``,
``lmdir``), or a diffusion restorer with no restorer before it (``vlmir``,
``spire``: a refiner checkpoint whose config names no restorer), for which
every call is ``steps`` of diffusion sampling from the degraded input.

Beside a restorer, three requests skip it: a blur that is all there is to remove is
divided out (``vlir.deconvolution``); white noise that is all there is to remove
goes to the noise expert (``vlir.restoration.denoiser``, ``noise_request``), as does shot
noise, through the Anscombe transform (``vlir.restoration.anscombe``); and a blur under
either noise goes to the expert, then is divided out of its output. A colour cast removed
with the noise goes to the expert too, then takes the restorer's colours (found) or is
corrected by the restorer on the expert's output (named, not found).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from vlir.conditioning import Conditioning
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
    wiener_deconvolve,
)
from vlir.deconvolution.gaussian import FIT_NARROWING
from vlir.degradations import RestorationPrompt, get_op
from vlir.errors import VlirError
from vlir.io import as_hwc, grey_rgb, is_grey, to_tensor
from vlir.modeling import CONFIG_NAME, resolve_checkpoint, resolve_device, weights_fingerprint
from vlir.perception import Analysis, PerceptionModel, analyze, load_perception
from vlir.perception.analyze import too_small
from vlir.perception.jpeg_grid import (
    GRID,
    QUANTISED_PEAK,
    jpeg_grid_start,
    quantisation_peak,
)
from vlir.perception.model import Perception
from vlir.perception.noise_level import (
    censored_sigma,
    clipped_share,
    noise_kind,
    white_noise_sigma,
)
from vlir.restoration import RestorerModel, make_conditioning, semantic_tower
from vlir.restoration.anscombe import anscombe, inverse_anscombe, measured_peak, stabilised_sigma
from vlir.restoration.denoiser import DenoiserConfig, DenoiserModel
from vlir.restoration.network import RestorerConfig
from vlir.restoration.photo_statistics import gather_photo_statistics
from vlir.text import TextEncoder, TextEncoding, load_text_encoder
from vlir.tiling import pad_to_multiple, restore_tiled, tile_count

if TYPE_CHECKING:  # diffusers takes seconds to import: only --refine pays for it
    from vlir.diffusion import Refiner

AUTO_TILE_PIXELS = 512 * 512
"""Images larger than this restore in tiles (bounded memory); smaller ones in one pass."""
DEFAULT_TILE = 384
CHANNELS_LAST = torch.channels_last
"""The restorer's and the refiner's memory format on CPU. A 481x321 photo's forward pass
took 1.64 s in NCHW and 0.67 s in it (2 threads, median of 7; outputs within 1e-6), and
restoring it with ``refine=True`` 2.05 against 1.68 s; the perception towers gained
nothing (0.153 / 0.152 s), so they keep NCHW."""


def dihedral_view(pixels: torch.Tensor, view: int) -> torch.Tensor:
    """View 0-7 of [..., H, W]: a quarter turn ``view % 4`` times, mirrored for 4-7."""
    pixels = pixels.flip(-1) if view >= 4 else pixels
    return torch.rot90(pixels, view % 4, dims=(-2, -1))


def undo_dihedral_view(pixels: torch.Tensor, view: int) -> torch.Tensor:
    """The inverse of ``dihedral_view``: back to the photo's own frame."""
    pixels = torch.rot90(pixels, -(view % 4), dims=(-2, -1))
    return pixels.flip(-1) if view >= 4 else pixels


UPRIGHT_VIEWS = (0, 2, 4, 6)
"""The self-ensemble's views for a photo whose JPEG artifacts are removed: the photo, its
half turn and both mirrors. A quarter turn transposes each 8x8 block's quantisation (the
standard tables are not symmetric), which the restorer never saw in training. On the
first 12 LIVE1 photos as grey JPEGs of quality 20, all 8 views scored 29.46 dB against
the restorer's 29.49; these 4 score 27.27 / 29.51 / 31.82 against 27.25 / 29.49 / 31.78
at quality 10 / 20 / 40 (34 of the 36 photos better, none worse by more than 0.005 dB)."""


def grid_margin(grid: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns to add above and left of a photo whose JPEG grid starts at ``grid``
    (row, column) so that it starts at the corner."""
    return (-grid[0]) % GRID, (-grid[1]) % GRID


def onto_grid(planes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``planes`` [..., H, W] mirrored above and left (``grid_margin``) so that a JPEG grid
    starting at ``grid`` starts at the corner, where the restorer saw every JPEG's grid."""
    top, left = grid_margin(grid)
    return F.pad(planes, (left, 0, top, 0), mode="reflect") if top or left else planes


def in_frame(reference: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A reference photo as [1, 3, H, W] at the photo's ``size`` (bilinear): the reference
    block attends to the same place in both."""
    reference_chw = as_hwc(reference).transpose(2, 0, 1)
    return F.interpolate(
        torch.from_numpy(np.ascontiguousarray(reference_chw))[None],
        size=size,
        mode="bilinear",
        align_corners=False,
    )


class PassCounter:
    """Counts a call's network passes (one per tile, view, gathering pass and refinement)
    and tells ``progress(done, total)`` after each: a 12-megapixel photo takes minutes on
    a CPU, and a person waiting wants to see it move."""

    def __init__(self, progress: Callable[[int, int], None] | None) -> None:
        self.progress = progress
        self.done = 0
        self.total = 0

    def plan(self, passes: int) -> None:
        self.total += passes

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


@dataclass
class Restoration:
    image: np.ndarray
    """[H, W, 3] float32 in [0, 1]."""
    analysis: Analysis
    prompt: str
    """The restoration prompt the restorer was given (or would have been: ``enlarged``,
    ``kept``)."""
    automatic: bool
    seconds: float
    tiles: bool
    refine_steps: int = 0
    """Diffusion steps taken: refinement after restoring, or the whole restoration of a
    diffusion restorer (0: none)."""
    seed: int | None = None
    diffusion: bool = False
    """Restored by diffusion sampling alone (no restorer)."""
    reference: bool | None = None
    """Whether a reference photo was used; None: the model has no reference block."""
    gathered: int = 0
    """Passes that gathered the photo's statistics over its tiles (0: none, or untiled)."""
    kernel: np.ndarray | None = None
    """The blur kernel deconvolved: the estimate, or the Gaussian of ``sigma`` (None: no
    deconvolution; a point where the photo read as sharp)."""
    left: tuple[str, ...] = ()
    """Ops the request named that the deconvolution left as they are (a light JPEG)."""
    views: int = 1
    """Flips and quarter turns of the photo restored and averaged (8: self-ensemble; 4: its
    upright views, for a JPEG)."""
    enlarged: float | None = None
    """The downsampling probability of a photo returned as it is because nothing was
    found but it reads enlarged (``ENLARGED_HINT``); None: restored."""
    sigma: float | None = None
    """The width of the Gaussian deconvolved, where the blur was Gaussian alone (None:
    ``kernel`` is the free-form estimate, or nothing was deconvolved)."""
    sigma_stated: bool = False
    """``sigma`` is the request's own (else read from the photo)."""
    grid: tuple[int, int] = (0, 0)
    """Row and column where the photo's JPEG grid started, moved to the corner for
    restoring ((0, 0): at the corner already, or none seen)."""
    kept: bool = False
    """Returned as it is: automatic, nothing found, and the photo's blur estimate spreads
    under ``UNSEEN_BLUR_SPREAD`` (see ``Restorer.__call__``)."""
    hazy: float | None = None
    """The haze probability of a photo dehazed because nothing was found but it reads
    faintly hazy (``HAZE_HINT``); None otherwise."""
    blurred: float | None = None
    """The summed blur probabilities of a photo whose blur, not found under the noise, was
    divided out of the noise expert's output (``BLUR_UNDER_NOISE_HINT``); None otherwise."""
    unquantised: float | None = None
    """The quantisation peak of a photo whose JPEG, found beside the noise, its blocks
    disprove (``unquantised_jpeg``): left out of what is removed; None otherwise."""
    noise_sigma: float | None = None
    """The noise level the noise expert was given, where it restored the photo
    (``vlir.restoration.denoiser``); None: it did not."""
    noise_sigma_source: str | None = None
    """Where ``noise_sigma`` (or ``shot_peak``) came from: "stated" (the request's own),
    "measured" (PCA of the photo's patches, ``vlir.perception.noise_level``), "fitted"
    (to the clipped noise of a photo the PCA cannot read, ``censored_sigma``) or "read"
    (perception's head, where neither can be trusted: no photo to measure, or too little
    of it unclipped to measure and too little clipped to fit)."""
    noise_sigma_present: float | None = None
    """White noise measured stronger than the stated ``noise_sigma``: the expert removed it
    all and put back what the words leave (``NoiseLevel.present``); None otherwise."""
    shot_peak: float | None = None
    """The shot noise's peak, where the expert restored the photo's Anscombe transform
    (``vlir.restoration.anscombe``; ``noise_sigma`` is then the transform's); None: white
    noise, or no expert."""
    noise_retyped: bool = False
    """The noise was read as the other kind (white or shot) and measured as this one
    (``measured_kind``)."""
    cast: bool = False
    """The noise expert's output took its colours from the restorer's, which removed the
    colour cast found beside the noise (``colours_of``)."""
    cast_after: bool = False
    """The restorer corrected the colour cast of the noise expert's output: a cast the words
    named that was not found under the noise (``Restorer._cast_conditioning``)."""

    @property
    def noise_sigma_stated(self) -> bool:
        return self.noise_sigma_source == "stated"

    @property
    def action(self) -> str:
        """What became of the photo: "kept" (returned as it is: it reads clean and sharp,
        or enlarged, or its blur estimate is a point), "deconvolved" (its blur divided
        out, no network), "diffusion" (sampled by a diffusion restorer) or "restored"."""
        if self.kept or self.enlarged is not None:
            return "kept"
        if self.kernel is not None and self.noise_sigma is None:
            return "kept" if kernel_spread(self.kernel) == 0.0 else "deconvolved"
        return "diffusion" if self.diffusion else "restored"

    def to_dict(self) -> dict:
        """The report for scripts (``vlir restore --json``): the reading, the request and
        what was done, each as a field rather than a phrase."""
        deconvolution = None
        if self.kernel is not None:
            deconvolution = {
                "kernel_size": list(self.kernel.shape),
                "sharp": kernel_spread(self.kernel) == 0.0,
                "gaussian_sigma": None if self.sigma is None else round(self.sigma, 4),
                "sigma_stated": self.sigma_stated,
                "left": list(self.left),
            }
        return {
            "analysis": self.analysis.to_dict(),
            "automatic": self.automatic,
            "prompt": self.prompt,
            "action": self.action,
            "enlarged": self.enlarged,
            "hazy": self.hazy,
            "blurred": self.blurred,
            "unquantised": self.unquantised,
            "deconvolution": deconvolution,
            "denoiser": None
            if self.noise_sigma is None
            else {
                "sigma": round(self.noise_sigma, 2),
                "sigma_stated": self.noise_sigma_stated,
                "source": self.noise_sigma_source,
                "shot_peak": None if self.shot_peak is None else round(self.shot_peak, 2),
                "present": None
                if self.noise_sigma_present is None
                else round(self.noise_sigma_present, 2),
                "retyped": self.noise_retyped,
                "colours_from_restorer": self.cast,
                "cast_corrected_after": self.cast_after,
            },
            "tiles": self.tiles,
            "gathering_passes": self.gathered,
            "views": self.views,
            "reference": self.reference,
            "refine_steps": self.refine_steps,
            "seed": self.seed,
            "jpeg_grid_moved_from": list(self.grid) if self.grid != (0, 0) else None,
            "seconds": round(self.seconds, 3),
            "report": self.report(),
        }

    def report(self) -> str:
        if self.kept:
            return (
                "found: nothing; did (automatic): left it as it is (it reads clean and sharp; "
                "give a prompt to restore it anyway)"
            )
        if self.enlarged is not None:
            return (
                f"found: nothing, but it reads enlarged (downsample p={self.enlarged:.2f}); "
                "did (automatic): left it as it is (the restorer would soften it more than "
                "restore it; give a prompt to restore it anyway)"
            )
        found = (
            ", ".join(
                f"{f.op} ({f.parameter} {f.strength:g}, p={f.probability:.2f})"
                for f in self.analysis.found
            )
            or "nothing"
        )
        if self.hazy is not None:
            found += f", but it reads faintly hazy (haze p={self.hazy:.2f})"
        if self.blurred is not None:
            found += f", but it reads blurred under the noise (blur p={self.blurred:.2f}, summed)"
        if self.unquantised is not None:
            read = next(f.probability for f in self.analysis.findings if f.op == "jpeg")
            found += (
                f"; not the JPEG read (p={read:.2f}): its blocks show no quantisation"
                f" (peak {self.unquantised:.2f})"
            )
        if self.analysis.note:  # guesses, not findings
            found = f"not read ({self.analysis.note})"
        mode = "automatic" if self.automatic else "user-guided"
        steps = f"{self.refine_steps} step" + ("s" if self.refine_steps != 1 else "")
        refined = f"; refined ({steps}, seed {self.seed})" if self.refine_steps else ""
        if self.diffusion:
            refined = f"; by diffusion ({steps}, seed {self.seed})"
        if self.reference is not None:
            refined += "; reference: " + (
                "given" if self.reference else "none (the reference block is skipped)"
            )
        if self.gathered:
            refined += f"; in tiles, with the photo's statistics ({self.gathered} gathering"
            refined += " pass)" if self.gathered == 1 else " passes)"
        if self.noise_sigma is not None:
            source = NOISE_SOURCES[self.noise_sigma_source or "read"]
            level = f"sigma {round(self.noise_sigma, 1):g}"
            if self.shot_peak is not None:
                level = f"on the Anscombe transform, peak {round(self.shot_peak, 1):g}"
            if self.noise_sigma_present is not None:
                present = round(self.noise_sigma_present, 1)
                source += f"; of sigma {present:g} measured, the rest left"
            if self.noise_retyped and self.shot_peak is None:
                source += ": white noise, not the shot noise read (it does not grow with"
                source += " the brightness)"
            elif self.noise_retyped:
                source += ": shot noise, not the white noise read (it grows with the brightness)"
            refined += f"; by the noise expert ({level}, {source})"
            if self.cast:
                refined += ", in the colours of the restorer's, which corrected the cast"
            if self.cast_after:
                refined += ", then the restorer corrected the cast of its output"
        if self.views > 1:
            turns = "flips and quarter turns" if self.views == 8 else "upright flips (a JPEG)"
            refined += f"; averaged over {self.views} {turns}"
        if self.kernel is not None and kernel_spread(self.kernel) == 0.0:
            why = (
                f"a width of {self.sigma:g} stated"
                if self.sigma_stated
                else "the photo reads sharp"
            )
            refined += f"; no blur to deconvolve ({why})"
        elif self.kernel is not None:
            side = self.kernel.shape[0]
            kept = "".join(f"; {name} left as it is (light)" for name in self.left)
            how = f"a {side}x{side} kernel estimated"
            if self.sigma is not None:
                source = "as stated" if self.sigma_stated else "read from the photo"
                how = f"a Gaussian of sigma {self.sigma:.2f}, {source}"
            refined += f"; blur by deconvolution ({how}{kept})"
        if self.grid != (0, 0):
            row, column = self.grid
            refined += f"; JPEG grid moved to the corner (it started at row {row}, column {column})"
        return f"found: {found}; did ({mode}): {self.prompt}{refined}"


NOISE_SOURCES = {
    "stated": "as stated",
    "measured": "measured from the photo",
    "fitted": "fitted to the photo's clipped noise",
    "read": "read from the photo",
}
"""How a report says where the noise expert's sigma came from."""


def tile_overlap(config: RestorerConfig | DenoiserConfig) -> int:
    """Tiles overlap by a quarter of a statistics window (where there is one): near a
    tile's edge, where its windows are cut differently from the whole photo's, its weight
    blends away (tiled and untiled agree to ~52 dB: benchmarks/statistics_window.py)."""
    window = getattr(config, "statistics_window", None)
    return 32 if window is None else max(32, window // 4)


UNSEEN_BLUR_SPREAD = 1.0
"""Where the analyzer found nothing, an estimate must spread this far (pixels) to be
deconvolved: past every sharp photo measured (80 BSD400 training photos read at most 0.89;
as a check, CBSD68, Set5, Set14 and LIVE1 as they are at most 0.92, Set5's bird). The
faint blurs the analyzer missed among the first 20 CBSD68 photos of the motion, Gaussian
and defocus tasks read 0.94-2.29 (4 of 5 at 1.0 or more); below this the photo reads sharp,
and automatic restoration returns it as it is (``Restoration.kept``)."""

ENLARGED_HINT = 0.01
"""Where the analyzer found nothing, a downsampling probability at or over this (under
its own threshold) says the photo was enlarged: it is left as it is, neither
deconvolved (an enlarged photo's estimated kernel spreads 1.1-1.5 px and reads as blur)
nor given to the blind restorer. 40 BSD400 training photos (benchmarks/enlarged.py):
read as nothing found, the x2-enlarged read 0.07-0.33, the clean and the faintly blurred
at most 0.002; on the x2 ones read as nothing or as blur alone, deconvolving lost 1.41
dB to the enlarged photo, the restorer 0.31 and "upsample by 2x" 0.27 (7 of 8 worse)."""

HAZE_HINT = 0.55
"""Where the analyzer found nothing, a haze probability at or over this (under its own
threshold, 0.75) says the photo is faintly hazy: it is told "dehaze", not kept as it is.
Of 100 BSD400 training photos under the engine's haze at beta 0.3-0.6, 46 read as nothing
found (``benchmarks/nothing_found.py --haze-stride 4``); the 18 of them at 0.55 or more
went from 19.55 dB as they were to 25.92 told "dehaze" (25.96 given the beta read, 21.05
blind), none worse. Clean, the 398 BSD400 photos where nothing is found read at most 0.43,
so 0.55 leaves a margin for photos never trained on (as a check, the eval sets' clean
photos read at most 0.45): told "dehaze", a clean photo comes out 26-31 dB from itself
(24-26 given the beta read, hence the plain request).

Not for a grey photo: with no colour to lose it reads hazier than its colour original.
Of 200 BSD400 training photos turned grey, the 198 where nothing is found read up to 0.73
and 11 at 0.55 or more; the same photos in colour at most 0.43
(``benchmarks/nothing_found.py --clean-haze-stride 2``). And "dehaze" is where the restorer
is least stable on grey: scikit-image's motion-blurred ``clock`` read 0.55 and came back
with a saturated blotch and a dark frame, 17.5 dB from itself."""

LIGHT_JPEG_QUALITY = 75
"""A JPEG of this quality or above, stated or found with a blur, is left as it is and the
blur deconvolved: a blurred photo saved as a JPEG (quality 90, as cameras and phones
write) reads as blur plus JPEG of quality 76-90, and the restorer, given both, leaves the
blur. 13 BSD400 training photos with each of the three blurs, saved at quality 90: input
24.73, the restorer 24.98, this rule 26.51 dB (26 of 39 deconvolved, none worse by 0.1 dB);
the first 12 CBSD68 photos of the defocus and Gaussian tasks: 24.54 / 25.01 / 25.98.
Heavier JPEG stays the restorer's, blur and all."""

BLUR_UNDER_NOISE_HINT = 0.45
"""Where the noise expert removes noise the analyzer found alone (automatic or blind), blur
probabilities (Gaussian, defocus, camera shake) summing to this or more say a blur hides
under the noise: the Gaussian fitted to the denoised photo's estimate is divided out of
the expert's output, as for a blur found there (``hidden_blur_request``). The analyzer
misses many blurs under noise (it found 32 of the 68 on CBSD68's blur + noise task), but
a sharp photo's denoised estimate can read blurred, and dividing it out then costs 0.5-2
dB. Chosen on BSD400 training photos (every 20th from the 2nd, 7th, 12th and 17th; the
engine's Gaussian blur or defocus under its noise, two draws of noise alone for each):
the 160 draws of noise alone read at most 0.37 summed. Of the 160 blurred ones, the
analyzer found the blur on 60 and the noise alone on 85; of those 85, the 63 at 0.45 or
more gained 20.9 dB in all over the expert's output (59 by 0.04-1.66 dB, 3 lost
0.28-1.43: photos of soft texture). At 0.35 a photo of noise alone lost 0.69 dB. Of
the fitted Gaussian, the estimate itself and balances of 0.25 and 0.4 sigma, the fit at
the usual balance (``wiener_balance``) gained the most. On CBSD68's blur + noise task:
24.44 -> 24.61 dB (``benchmarks/restore.py --tasks blur+noise``).

Not for a grey photo, which reads blurrier than its colour original (as it reads hazier,
``HAZE_HINT``): of 20 of those photos turned grey, two draws of noise alone each, one
read 0.43 in both."""


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


def removes_jpeg(prompt: str | None, analysis: Analysis) -> bool:
    """Whether JPEG artifacts are among what a request removes: named in it, or found by the
    analyzer where the request is automatic, blind or in free words. Only then does a JPEG
    grid off the photo's corner matter. A grid is also read in some photos that never were
    JPEGs (5 of 40 clean BSD400 photos). Moving their frame by a few pixels changed nothing
    of note on the 12-photo checks, but on the whole of CBSD68 it tipped the reading of a
    faint blur on 4 photos: 170057 with a Gaussian blur of sigma 0.3 fell from 46.55 to
    30.19 dB, and 147091 with defocus lost 6.31 dB."""
    if prompt is not None:
        request = RestorationPrompt.parse(prompt)
        if request.item_for("jpeg") is not None:
            return True
        if not (request.blind or request.text):
            return False
    return any(finding.op == "jpeg" for finding in analysis.found)


def unquantised_jpeg(analysis: Analysis, prompt: str | None, photo: np.ndarray) -> float | None:
    """The quantisation peak (``quantisation_peak``) of a photo where perception found JPEG
    beside white or shot noise and nothing else, the request automatic or blind, and the
    photo's blocks show no JPEG quantisation (under ``QUANTISED_PEAK``); None otherwise.
    The grey head reads strong grey noise as noise and JPEG: on the 16 held-out BSD400
    photos turned grey, 3 at sigma 50 (float), 4 and 8 at 35 and 50 in 8 bits, and the
    restorer then did both, 1.5-3 dB behind the noise expert. The JPEG is left out. No
    JPEG the engine made would be: CBSD68's 204 photos of its white or shot noise under
    its JPEG (quality 5-95; colour, and grey) read 1.5 or more.

    Only white noise, and only where it measures at least half as strong as it reads
    (``reads_white``; or too clipped to measure): a real photo's noise, demosaicked,
    compressed and resized, is coarser than white noise and measures far weaker (RNI15's
    Dog: read 26, measured 0.9), and a JPEG resized since has lost its grid, so its blocks
    show nothing; there the restorer keeps both, as before."""
    if prompt is not None and not RestorationPrompt.parse(prompt).blind:
        return None
    found = {finding.op for finding in analysis.found}
    if found != {"jpeg", "noise"}:
        return None
    peak = quantisation_peak(photo)
    if peak >= QUANTISED_PEAK:
        return None
    measured = white_noise_sigma(torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1))
    white = NoiseLevel("noise", measured, "measured") if measured is not None else None
    if white is not None and not reads_white(white, analysis, brightness=0.5):
        return None  # (white noise's sigma is the same at any brightness)
    return peak


def reads_white(noise: NoiseLevel, analysis: Analysis, brightness: float) -> bool:
    """Whether the noise measured from the photo is at least half as strong as perception
    reads it (or was not measured), as sigmas at the photo's mean ``brightness`` (shot
    noise's too): white noise, as the engine's. A real photo's noise, demosaicked,
    compressed and resized, is coarser, and the measure sees only its white part (RNI15:
    read 4-26, measured 0.8-5). A blur is then not divided out of the expert's output: at
    the balance the measured sigma sets, the inverse sharpened RNI15's Movie into grain
    where the photo had been soft."""
    read = next((f for f in analysis.found if f.op in EXPERT_NOISES), None)
    if read is None or noise.source != "measured" or read.strength <= 0:
        return True
    as_read = NoiseLevel(read.op, read.strength, "read").photo_sigma(brightness)
    return noise.photo_sigma(brightness) >= as_read / 2


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


def removed_ops(request: RestorationPrompt, analysis: Analysis) -> set[str]:
    """What a request removes: the ops it names, or, blind, the ops found."""
    if request.blind:
        return {finding.op for finding in analysis.found}
    return {item.op for item in request.items}


def removes_blur(request: RestorationPrompt, analysis: Analysis) -> bool:
    """Whether a blur (camera shake, defocus, Gaussian) is among what a request removes."""
    return any(get_op(name).family == "blur" for name in removed_ops(request, analysis))


def _hint(analysis: Analysis, op: str, level: float) -> float | None:
    """The probability of ``op`` where nothing was found but it reaches ``level``."""
    if analysis.found:
        return None
    probability = {finding.op: finding.probability for finding in analysis.findings}
    hint = probability.get(op, 0.0)
    return hint if hint >= level else None


def enlarged_hint(analysis: Analysis) -> float | None:
    """The downsampling probability of a photo where nothing was found but it reads
    enlarged (``ENLARGED_HINT``); None otherwise."""
    return _hint(analysis, "downsample", ENLARGED_HINT)


def haze_hint(analysis: Analysis) -> float | None:
    """The haze probability of a photo where nothing was found but it reads faintly hazy
    (``HAZE_HINT``); None otherwise."""
    return _hint(analysis, "haze", HAZE_HINT)


def blur_hint(analysis: Analysis) -> float | None:
    """The summed probabilities of the blurs (Gaussian, defocus, camera shake) of a photo
    where none was found but they reach ``BLUR_UNDER_NOISE_HINT``; None otherwise. Summed:
    a blur the analyzer is unsure of spreads its belief over the three (a defocus of
    radius 3 read 0.20 / 0.28 / 0.15)."""
    blurs = [finding for finding in analysis.findings if get_op(finding.op).family == "blur"]
    if any(finding.present for finding in blurs):
        return None
    total = sum(finding.probability for finding in blurs)
    return total if total >= BLUR_UNDER_NOISE_HINT else None


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


EXPERT_NOISES = ("noise", "shot_noise")
"""The noise ops the noise expert removes: white noise as it is, shot noise through the
Anscombe transform (``vlir.restoration.anscombe``)."""


SEEN_THROUGH = frozenset({"color_cast"})
"""Ops found beside the noise that the noise expert denoises through where the request
keeps them: a cast photo is a photo of other colours, not of other structure. On 16
held-out BSD400 photos under a colour cast and white noise of sigma 15 or 50, "denoise"
came 1.9-2.0 dB closer to the cast photo through the pipeline than through the restorer
alone (``python benchmarks/denoiser.py --noise cast``; 1.3-2.9 dB on the photos where the
cast was found too, by script)."""


def noise_request(
    request: RestorationPrompt, analysis: Analysis, *, automatic: bool = False, op: str = "noise"
) -> tuple[float, bool] | None:
    """Where ``op`` (white noise, or shot noise) is all a request removes and all the photo
    reads as, its level (sigma, or peak) and whether the words state it; None otherwise.
    Blind, the noise must be found; named ("denoise"), the level is the stated one, else
    the one read (found or not). With anything else found, the restorer does it all: the
    expert never saw rain or JPEG under its noise. A colour cast is an exception
    (``SEEN_THROUGH``): kept ("denoise" where one is found), the expert denoises through it.
    A blur under the noise is the other: the expert's output keeps it (a blurred photo
    is, to it, a photo with less detail), and where the request removes it
    too, it is divided out of that output (``deconvolution_request``'s ``under_noise``)."""
    if request.text or analysis.note:
        return None
    found = {finding.op for finding in analysis.found}
    blurs = {name for name in found if get_op(name).family == "blur"}
    if found - {op} - SEEN_THROUGH - blurs:
        return None
    removing = removed_ops(request, analysis)
    if op not in removing:
        return None
    if any(get_op(name).family != "blur" for name in removing - {op}):
        return None
    item = request.item_for(op)
    stated = None if automatic or item is None else item.stated.get(get_op(op).strength)
    if stated is not None:
        return float(stated), True
    read = {finding.op: finding.strength for finding in analysis.findings}.get(op)
    return None if read is None else (float(read), False)


@dataclass(frozen=True)
class NoiseLevel:
    """What the noise expert is given (``noise_level``)."""

    op: str
    """"noise" (white) or "shot_noise" (made white by the Anscombe transform)."""
    level: float
    """Sigma (0-255 scale) for white noise, the peak for shot noise."""
    source: str
    """"stated", "measured", "fitted" (``censored``) or "read":
    ``Restoration.noise_sigma_source``."""
    present: float | None = None
    """White noise measured stronger than a stated sigma (by over 1): the expert removes
    all of it and ``keep`` of it is put back, so the noise left is sqrt(present^2 -
    stated^2), the engine's partial target. Told the lower sigma instead, the expert,
    trained on the true one, leaves erratic noise (a sigma 10..50 sweep on sigma-50 noise
    fell monotonically on 1 or 3 of 4 CBSD68 photos, against 4 of 4 this way)."""
    retyped: bool = False
    """The noise read as the other kind (white or shot), measured as this one
    (``measured_kind``)."""
    censored: bool = False
    """White noise read, not measured, in a photo clipped at 0 and 1 (``CENSORED_SHARE``):
    the level is fitted to the clipped noise after a first pass of the expert at the
    reading (``censored_sigma``; source "fitted")."""

    @property
    def keep(self) -> float:
        """The share of the removed noise put back (0: all removed)."""
        if self.present is None:
            return 0.0
        return math.sqrt(self.present**2 - self.level**2) / self.present

    @property
    def removed(self) -> float:
        """The white noise's sigma the request removes (shot noise: its transform's)."""
        return self.level if self.op == "noise" else stabilised_sigma(self.level)

    @property
    def sigma(self) -> float:
        """The level of white noise the expert is told to remove."""
        return self.removed if self.present is None else self.present

    def photo_sigma(self, brightness: float) -> float:
        """The noise's sigma (0-255) in the photo itself, at its mean ``brightness``
        (0-1): white noise's own, shot noise's sqrt(brightness / peak)."""
        if self.op == "noise":
            return self.sigma
        return 255.0 * math.sqrt(max(brightness, 0.0) / self.level)


def noise_level(
    request: RestorationPrompt,
    analysis: Analysis,
    automatic: bool,
    pixels: torch.Tensor | None,
    max_sigma: float,
) -> NoiseLevel | None:
    """The level for the noise expert (``noise_request``): the stated one, else the one
    measured from ``pixels`` [1, 3, H, W] (``measured_level``), else the one read (to be
    fitted after a first pass where the photo is clipped: ``NoiseLevel.censored``); with a
    stated sigma under the measured one, that too (``NoiseLevel.present``). Automatic or
    blind, the kind of noise measured overrides the kind read (``measured_kind``). None:
    the restorer, also for shot noise stronger than the expert's ``max_sigma`` reaches."""
    for op in EXPERT_NOISES:
        level = noise_request(request, analysis, automatic=automatic, op=op)
        if level is not None:
            break
    else:
        return None
    value, stated = level
    measured = None
    if pixels is not None and value > 0 and (op == "noise" or not stated):
        measured = measured_level(op, pixels[0], value)
    if stated:
        present = measured if measured is not None and measured > value + 1 else None
        noise = NoiseLevel(op, value, "stated", present)
    else:
        source = "read" if measured is None else "measured"
        noise = NoiseLevel(op, value if measured is None else measured, source)
        found = {finding.op for finding in analysis.found}
        if (automatic or request.blind) and found == {op} and pixels is not None:
            noise = measured_kind(pixels[0], noise)
        clipped = pixels is not None and clipped_share(pixels[0]) >= CENSORED_SHARE
        if noise.source == "read" and noise.op == "noise" and clipped:
            noise = replace(noise, censored=True)
    if op == "shot_noise" and noise.sigma > max_sigma:
        return None
    return noise


CENSORED_SHARE = 0.01
"""A photo with this share of its values exactly 0 or 1, whose white noise the PCA
measure declines, has the level fitted to its clipped noise (``NoiseLevel.censored``)."""


def measured_kind(photo: torch.Tensor, noise: NoiseLevel) -> NoiseLevel:
    """``noise`` as perception read its kind (white or shot), or the other kind, measured
    from ``photo`` [3, H, W], where the photo's noise says so (``noise_kind``: whether its
    variance grows with the brightness) and its level can be measured.
    Perception read CBSD68's 3096 (mostly sky) with white noise of sigma 15 as shot noise
    (peak 186): through the Anscombe transform, 40.26 dB, where the expert given the true
    sigma reaches 41.77."""
    kind = noise_kind(photo)
    if kind is None or kind == noise.op:
        return noise
    guess = noise.level  # (white noise is measured outright)
    if kind == "shot_noise":  # its variance is the brightness over the peak: a first guess
        guess = float(photo.mean()) / (noise.level / 255.0) ** 2
    level = measured_level(kind, photo, guess)
    return noise if level is None else NoiseLevel(kind, level, "measured", retyped=True)


def measured_level(op: str, photo: torch.Tensor, read: float) -> float | None:
    """The level measured from ``photo`` [3, H, W] (PCA of its patches,
    ``white_noise_sigma``; shot noise's peak on its Anscombe transform at the ``read``
    one); None where the measure cannot be trusted (clipped)."""
    if op == "noise":
        return white_noise_sigma(photo)
    sigma = white_noise_sigma(anscombe(photo, read))
    return None if sigma is None else measured_peak(read, sigma)


@dataclass
class Decision:
    """What a call does with the photo, decided before any network runs
    (``Restorer._decide``)."""

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


@dataclass
class Deblurred:
    """A photo whose blur was divided out, no network run."""

    kernel: np.ndarray
    """The kernel divided out (a point: the photo read sharp and is returned as it is)."""
    sigma: float | None
    """The Gaussian's width where the kernel is one (``Restoration.sigma``)."""
    image: np.ndarray
    """[H, W, 3]."""


def _unless_same(
    analyzer: PerceptionModel | None, perception: PerceptionModel
) -> PerceptionModel | None:
    """None where the analyzer holds the same weights (one analysis then serves both)."""
    if analyzer is None or weights_fingerprint(analyzer) == weights_fingerprint(perception):
        return None
    return analyzer


class Restorer:
    """The restorer with its perception and text towers, ready to call on images.

    The diffusion refiner loads on first use (``refine=True``): most calls never need it.
    ``model`` None: ``refiner`` is a diffusion restorer and does all the work.
    ``perception`` gives the tokens the model was trained on; ``analyzer`` (here by default
    the same; ``from_pretrained``: the shipped ``perception``) says what is wrong and
    writes the automatic prompt, so a better-trained perception improves every
    restorer's report and prompt without retraining them.
    """

    def __init__(
        self,
        model: RestorerModel | None,
        perception: PerceptionModel,
        text: TextEncoder,
        refiner: Refiner | str = "refiner",
        semantic_text: TextEncoder | None = None,
        analyzer: PerceptionModel | None = None,
        denoiser: DenoiserModel | None = None,
    ) -> None:
        # (NHWC: oneDNN's depthwise convolutions above all are faster in it; CHANNELS_LAST)
        self.model = None if model is None else model.eval().to(memory_format=CHANNELS_LAST)
        self.denoiser = None
        """The noise expert, where white noise is all there is to remove (``noise_request``)."""
        if denoiser is not None and model is not None:
            self.denoiser = denoiser.eval().to(memory_format=CHANNELS_LAST)
        self.perception = perception.eval()
        self.analyzer = self.perception if analyzer is None else analyzer.eval()
        self.text = text.eval()
        self.semantic_text = text if semantic_text is None else semantic_text.eval()
        """Reads semantic prompts (perception's caption-aligned tower where the model
        was trained with it)."""
        self._refiner = refiner
        self.device = next(self.perception.parameters()).device
        """Where the networks run (``to``); the photo and the numpy work stay on the CPU."""
        if model is None:
            self.load_refiner()

    def to(self, device: str | torch.device) -> Restorer:
        """Runs the networks on ``device`` (``resolve_device``: "cuda", "cpu", "auto"), as
        diffusers' ``pipeline.to``. The photo stays in CPU memory, as do the numpy steps
        (the JPEG grid, deconvolution, blending); each tile goes to the device and back, so
        the device holds the networks and one tile's features whatever the photo's size."""
        self.device = resolve_device(device)
        parts = (self.model, self.denoiser, self.perception, self.analyzer, self.text)
        for part in (*parts, self.semantic_text):
            if part is not None:
                part.to(self.device)
        if not isinstance(self._refiner, str):
            self._refiner.to(self.device)
        return self

    def load_refiner(self) -> Refiner:
        """The refiner, loaded now if it was given by name (on this restorer's device)."""
        from vlir.diffusion import Refiner

        if not isinstance(self._refiner, Refiner):
            self._refiner = Refiner.from_pretrained(self._refiner)
        self._refiner.to(self.device)  # (each a no-op once done)
        for part in (self._refiner.adaptor, self._refiner.prior):
            part.to(memory_format=CHANNELS_LAST)
        return self._refiner

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = "restorer",
        *,
        refiner: str = "refiner",
        analyzer: str | os.PathLike[str] | None = "perception",
        denoiser: str | os.PathLike[str] | None = "denoiser",
        device: str | torch.device = "cpu",
    ) -> Restorer:
        """A restorer checkpoint (``restorer``, ``lmdir``) or a diffusion restorer
        (``vlmir``, ``spire``), with the towers its config names; ``analyzer``: the
        perception that reads the photo (None: the one the model's tokens come from);
        ``denoiser``: the noise expert beside a restorer (None: the restorer removes noise
        alone too; a diffusion restorer samples everything); ``device``: where the
        networks run (``to``)."""
        target = resolve_device(device)  # (a device not here is refused before loading)
        return cls._load(name_or_path, refiner, analyzer, denoiser).to(target)

    @classmethod
    def _load(
        cls,
        name_or_path: str | os.PathLike[str],
        refiner: str,
        analyzer: str | os.PathLike[str] | None,
        denoiser: str | os.PathLike[str] | None = None,
    ) -> Restorer:
        path = resolve_checkpoint(name_or_path)
        reader = None if analyzer is None else PerceptionModel.from_pretrained(analyzer)
        model_type = json.loads((path / CONFIG_NAME).read_text()).get("model_type")
        if model_type == "refiner":
            from vlir.diffusion import Refiner

            diffusion = Refiner.from_pretrained(path)
            config = diffusion.adaptor.config
            if config.restorer is not None:
                raise VlirError(
                    f"{name_or_path} refines the restorer {config.restorer!r}: run "
                    f"--model {config.restorer} --refine --refiner {name_or_path}"
                )
            perception = load_perception(config.perception, config.perception_fingerprint)
            text = load_text_encoder(config.text_encoder)
            semantic = semantic_tower(perception, text, config.align_semantic)
            return cls(
                None, perception, text, diffusion, semantic, _unless_same(reader, perception)
            )
        if model_type != "restorer":
            raise VlirError(f"{name_or_path}: a {model_type!r} checkpoint does not restore images")
        model = RestorerModel.from_pretrained(path)
        perception = load_perception(model.config.perception, model.config.perception_fingerprint)
        text = load_text_encoder(model.config.text_encoder)
        semantic = semantic_tower(perception, text, model.config.align_semantic)
        expert = None if denoiser is None else DenoiserModel.from_pretrained(denoiser)
        reader = _unless_same(reader, perception)
        return cls(model, perception, text, refiner, semantic, reader, denoiser=expert)

    @property
    def reads_prompts(self) -> bool:
        """Whether a restoration prompt changes anything (a blind model ignores it)."""
        if self.model is not None:
            return True
        config = self.load_refiner().adaptor.config
        return config.prompt_modulation or "prompt" in config.tokens

    @property
    def reads_reference(self) -> bool:
        """Whether the model has LMDIR's reference-based block (else a reference is refused)."""
        return self.model is not None and self.model.config.use_reference_block

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray | torch.Tensor,
        *,
        prompt: str | None = None,
        semantic: str | None = None,
        reference: np.ndarray | torch.Tensor | None = None,
        strength: float = 1.0,
        tile: int | None = None,
        gather: int = 1,
        refine: bool = False,
        steps: int | None = None,
        seed: int = 0,
        deconvolve: bool = True,
        ensemble: bool = False,
        align_grid: bool = True,
        noise_expert: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> Restoration:
        """Automatic (no ``prompt``), where the analyzer finds nothing: a photo that reads
        faintly hazy (``HAZE_HINT``) is dehazed, one whose blur estimate reads blurred
        (``UNSEEN_BLUR_SPREAD``) deblurred, and one that reads enlarged (``ENLARGED_HINT``)
        or sharp comes back as it is (``Restoration.kept``).
        The restorer's blind mode, which ran there before, was worse than the photo itself
        on what the analyzer misses (sigma-1 noise, quality-92 JPEG, faint rain or colour
        cast), took clean photos to 43.7 dB from themselves, and gained 0.5 dB on faint
        haze (20 BSD400 photos, ``benchmarks/nothing_found.py``), where "dehaze" gains
        more; words ("remove all degradation") still run it.

        ``deconvolve``: where blur (camera shake, defocus, Gaussian) is all the request
        removes (or it is blind and the analyzer finds only that), its kernel is estimated
        from the photo and divided out instead of running the restorer, and where white
        or shot noise is removed with it, from the noise expert's output (``vlir.deconvolution``;
        False: the restorer tries). ``gather``: passes over the
        tiles that gather the whole photo's statistics before the restoring pass, so tiles
        restore as the untiled photo would (0: each tile uses its own; each pass costs one
        restoring pass; see ``photo_statistics``). ``refine``: walk ``steps`` diffusion
        steps from the restored image (``seed`` fixes the noise, so the same call gives the
        same pixels). A diffusion restorer always samples, ``steps`` of it (default: its
        config's). ``ensemble``: restore the 8 flips and quarter turns of the photo and
        average them back in its frame (the field's self-ensemble, EDSR's "+": a few
        tenths of a dB for 8 times the time; the restorer's attention to perception's
        tokens has no positions, so every view shares one reading of the photo; where JPEG
        is removed, the 4 upright views, ``UPRIGHT_VIEWS``).
        ``align_grid``: where the photo's JPEG grid does not start at its corner (a cropped
        JPEG) and JPEG is among what is removed (``removes_jpeg``), mirror rows and
        columns above and left of it so it does, and cut them off after
        (``vlir.perception.jpeg_grid``; False: read and restore it as framed).
        ``noise_expert``: where white or shot noise is all the request removes and all the
        photo reads as (``noise_request``), and no semantic prompt, reference or
        refinement asks for the restorer, the noise expert restores it (shot noise through
        the Anscombe transform) at the stated level, else the one measured from the photo,
        else the one read (``noise_level``, ``Restoration.noise_sigma``; False: the
        restorer). A blur found under the noise is kept ("denoise") or divided out of
        the expert's output (removed: automatic, blind, or named); automatic or blind,
        so is one not found whose probabilities hint at it (``BLUR_UNDER_NOISE_HINT``).
        ``progress(done, total)``: called after each pass of a network over a tile
        (``PassCounter``); never called where no network runs (deconvolved, or kept)."""
        start = time.perf_counter()
        diffusion = self.model is None
        if diffusion:
            refine = True
            steps = steps or self.load_refiner().adaptor.config.steps
        self._check(prompt, reference, gather, ensemble)
        steps = 1 if steps is None else steps
        if refine and steps < 1:
            raise VlirError(f"steps must be at least 1 (got {steps})")
        # read the photo, then decide what to do with it
        photo_hwc = as_hwc(image)
        grey = is_grey(photo_hwc)
        pixels, analysis, perception, grid = self._read(photo_hwc, prompt, align_grid)
        unquantised = unquantised_jpeg(analysis, prompt, photo_hwc)
        if unquantised is not None:  # a JPEG its blocks disprove: noise alone
            analysis = analysis.without("jpeg")
        expert = noise_expert and semantic is None and reference is None and not refine
        decision = self._decide(
            analysis,
            prompt,
            grey=grey,
            refine=refine,
            deconvolve=deconvolve,
            expert=expert,
            pixels=pixels,
        )
        prompt = decision.prompt
        plan = decision.deconvolution
        # the conditioning: perception's tokens, the prompt's, the semantic prompt's
        encoded = self.text([prompt])
        semantic_encoded = self.semantic_text([semantic]) if semantic else None

        def condition(reference_part: torch.Tensor | None) -> Conditioning:
            return make_conditioning(perception, encoded, semantic_encoded, None, reference_part)

        conditioning = condition(None)
        reference_pixels = None
        if reference is not None:  # brought to the photo's frame once; each tile sees its part
            reference_pixels = onto_grid(in_frame(reference, photo_hwc.shape[:2]), grid)
        height, width = pixels.shape[-2:]
        use_tiles = tile is not None or height * width > AUTO_TILE_PIXELS
        tile_size = tile or DEFAULT_TILE
        passes = PassCounter(progress)
        if refine:
            passes.plan(
                tile_count(height, width, tile=tile_size if use_tiles else max(height, width))
            )
        # restore: kept as it is, its blur divided out, or the restorer over views and tiles
        views = (0,)
        if ensemble:  # (a JPEG's blocks stay on its grid only in upright views)
            views = UPRIGHT_VIEWS if removes_jpeg(prompt, analysis) else tuple(range(8))
        deblurred, kept, divided = None, False, None
        found_cast = any(finding.op == "color_cast" for finding in analysis.found)
        colours_from_restorer = decision.cast and found_cast  # (else named, not found)
        under_noise = decision.noise is not None  # a plan then deblurs the expert's output
        if plan is not None and not under_noise:
            deblurred, kept = self._divide_out(pixels, plan, decision.unseen, deconvolve)
        gathered = 0

        def by_restorer(
            source: torch.Tensor = pixels, told: Conditioning | None = None
        ) -> tuple[torch.Tensor, int]:
            """The restorer over ``source`` (the photo, else the expert's output), conditioned
            as the call is (the reference's part per tile), else as ``told``."""
            model = self.model

            def restore(patch: torch.Tensor, part: torch.Tensor | None) -> torch.Tensor:
                if told is not None:
                    return model(patch, told)
                return model(patch, conditioning if part is None else condition(part))

            return self._restore_views(
                source,
                reference_pixels if told is None else None,
                restore,
                passes,
                config=model.config,
                views=views,
                tile=tile_size if use_tiles else None,
                gather=gather,
            )

        if self.model is None or decision.enlarged is not None or kept:
            restored = pixels  # a diffusion restorer starts from the input; else: kept
        elif deblurred is not None:
            restored = torch.from_numpy(deblurred.image).permute(2, 0, 1)[None]
        elif decision.noise is not None and self.denoiser is not None:
            denoiser, noise = self.denoiser, decision.noise
            shot = noise.op == "shot_noise"  # white in the Anscombe transform, undone after
            source = anscombe(pixels, noise.level) if shot else pixels

            def denoise(sigma: float, over: tuple[int, ...]) -> tuple[torch.Tensor, int]:
                return self._restore_views(
                    source,
                    None,
                    lambda patch, _: denoiser(patch, sigma),
                    passes,
                    config=denoiser.config,
                    views=over,
                    tile=tile_size if use_tiles else None,
                    gather=gather,
                )

            if noise.censored:  # clipped strong noise: the level fitted to a first pass
                first, _ = denoise(noise.sigma, (0,))
                fitted = censored_sigma(pixels[0], first[0].clamp(0, 1))
                noise = replace(noise, level=fitted, source="fitted", censored=False)
                decision.noise = noise
            restored, gathered = denoise(noise.sigma, views)
            if shot:
                restored = inverse_anscombe(restored, noise.level)
            denoised = restored
            if plan is not None:  # a blur under the noise, removed too
                divided, _ = self._divide_out(restored.clamp(0, 1), plan, False, deconvolve)
            if divided is not None:
                restored = torch.from_numpy(divided.image).permute(2, 0, 1)[None]
            restored = restored + noise.keep * (pixels - denoised)  # a partial request
            if colours_from_restorer:  # the restorer saw the cast: the colours it gives
                colours, _ = by_restorer()
                restored = colours_of(colours.clamp(0, 1), restored.clamp(0, 1))
            elif decision.cast:  # named, not seen under the noise: read on the denoised photo
                denoised = restored.clamp(0, 1)
                restored, _ = by_restorer(denoised, self._cast_conditioning(denoised))
        else:
            restored, gathered = by_restorer()
        if refine:
            restored = self._refine(
                pixels,
                restored,
                conditioning,
                semantic_encoded,
                steps,
                seed,
                use_tiles,
                tile_size,
                passes,
            )
        # back to the photo's frame, at the strength asked for
        output = pixels + float(strength) * (restored - pixels)
        top, left = grid_margin(grid)
        result = output[0, :, top:, left:].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32)
        if grey:  # a grey photo comes back grey, as a grey file is written (no tint made up)
            result = grey_rgb(result)
        # deconvolved, or returned as it is: no tiles, views or reference were used
        untouched = deblurred is not None or decision.enlarged is not None or kept
        deconvolved = deblurred if deblurred is not None else divided  # (the expert's)
        return Restoration(
            image=result,
            analysis=analysis,
            prompt=prompt,
            automatic=decision.automatic,
            seconds=time.perf_counter() - start,
            tiles=use_tiles and not untouched,
            refine_steps=steps if refine else 0,
            seed=seed if refine else None,
            diffusion=diffusion,
            reference=(reference is not None)
            if self.reads_reference and not untouched and decision.noise is None
            else None,
            gathered=gathered,
            kernel=None if deconvolved is None else deconvolved.kernel,
            left=plan.left if plan is not None and deblurred is not None else (),
            views=len(views) if self.model is not None and not untouched else 1,
            enlarged=decision.enlarged,
            sigma=None if deconvolved is None else deconvolved.sigma,
            sigma_stated=plan is not None and plan.stated_sigma is not None,
            grid=grid,
            kept=kept,
            hazy=decision.hazy,
            blurred=decision.blurred,
            unquantised=unquantised,
            noise_sigma=None if decision.noise is None else decision.noise.removed,
            noise_sigma_present=None if decision.noise is None else decision.noise.present,
            noise_sigma_source=None if decision.noise is None else decision.noise.source,
            shot_peak=decision.noise.level
            if decision.noise is not None and decision.noise.op == "shot_noise"
            else None,
            noise_retyped=decision.noise is not None and decision.noise.retyped,
            cast=colours_from_restorer,
            cast_after=decision.cast and not colours_from_restorer,
        )

    def _check(
        self,
        prompt: str | None,
        reference: np.ndarray | torch.Tensor | None,
        gather: int,
        ensemble: bool,
    ) -> None:
        """Refuses what this model cannot do with the call's arguments."""
        if self.model is None:
            if prompt is not None and not self.reads_prompts:
                raise VlirError("this model takes no restoration prompt (it is blind)")
            if ensemble:
                raise VlirError("a diffusion restorer samples: it has no self-ensemble")
        if reference is not None and not self.reads_reference:
            raise VlirError("this model takes no reference photo (it has no reference block)")
        if gather < 0:
            raise VlirError(f"gather must be 0 or more passes, got {gather}")

    def _read(
        self, photo_hwc: np.ndarray, prompt: str | None, align_grid: bool
    ) -> tuple[torch.Tensor, Analysis, Perception, tuple[int, int]]:
        """The photo as it is restored, [1, 3, H, W], and what is read in it: the
        analyzer's ``Analysis`` (the report, the automatic prompt), the perception the
        restorer was trained on (its tokens), and where the JPEG grid started. A grid off
        the corner (a cropped JPEG) is moved onto it (``onto_grid``) only where JPEG is
        among what is removed (``removes_jpeg``); else the photo is read as framed."""
        pixels = to_tensor(photo_hwc)
        # (a photo too small to read is left as framed: its size is what the refusal names)
        grid = jpeg_grid_start(photo_hwc) if align_grid and not too_small(pixels) else (0, 0)
        on_grid = onto_grid(pixels, grid)
        analysis = analyze(self.analyzer, on_grid.to(self.device))
        if grid != (0, 0) and not removes_jpeg(prompt, analysis):
            # a grid read in a photo with no JPEG to remove is no reason to touch its frame
            grid, on_grid = (0, 0), pixels
            analysis = analyze(self.analyzer, pixels.to(self.device))
        perception = analysis.perception
        if self.analyzer is not self.perception:
            perception = analyze(self.perception, on_grid.to(self.device)).perception
        return on_grid, analysis, perception, grid

    def _decide(
        self,
        analysis: Analysis,
        prompt: str | None,
        *,
        grey: bool,
        refine: bool,
        deconvolve: bool,
        expert: bool = True,
        pixels: torch.Tensor | None = None,
    ) -> Decision:
        """What to do with the photo, before any network runs: the prompt (the words, or
        the analyzer's reading), what automatic restoration does where nothing is found
        (the hints), and whether a blur is divided out (``deconvolution_request``) or the
        noise expert removes the noise (``noise_request``; ``expert`` False: never)
        instead (``noise_level``, from ``pixels`` [1, 3, H, W])."""
        automatic = prompt is None
        if automatic:
            request = analysis.prompt if analysis.found else RestorationPrompt.blind_prompt()
            if self.model is None and self.load_refiner().adaptor.config.auto_prompt == "blind":
                request = RestorationPrompt.blind_prompt()
            elif analysis.note:  # guesses would restore what is not there
                raise VlirError(analysis.note, hint="say what to remove with --prompt")
            prompt = request.format()
        decision = Decision(prompt, automatic)
        restoring = self.model is not None
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
        if expert and self.denoiser is not None:
            limit = self.denoiser.config.max_sigma
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

    def _cast_conditioning(self, denoised: torch.Tensor) -> Conditioning:
        """How the restorer is told to correct the colour cast of the noise expert's output
        ``denoised`` [1, 3, H, W]: ``CAST_WORDS``, reading the denoised photo, a cast photo
        with no noise, its own single-op task. For a cast named but not found: the
        restorer reading the noisy photo, told to remove both, does not see the cast
        either. Told "correct the color cast; denoise" where the cast under the engine's
        noise was missed: 24.84 -> 25.88 dB on 148 BSD400 training draws, 24.80 -> 25.58
        on CBSD68's 57 (``benchmarks/cast_hint.py``)."""
        perception = analyze(self.perception, denoised.to(self.device)).perception
        return make_conditioning(perception, self.text([CAST_WORDS]), None, None, None)

    @staticmethod
    def _divide_out(
        pixels: torch.Tensor, plan: Deconvolution, unseen: bool, deconvolve: bool
    ) -> tuple[Deblurred | None, bool]:
        """The photo with its blur divided out (None: no kernel, or ``deconvolve`` off),
        and whether it is kept as it is instead (nothing found, and its estimate reads
        sharp)."""
        photo = pixels[0].permute(1, 2, 0).numpy()
        found = plan.kernel(photo)
        kept = found is None and unseen
        if found is None or not deconvolve:
            return None, kept
        kernel, sigma = found
        # a point (the photo reads sharp): nothing to undo, not even the damping's 0.5%
        sharp = kernel_spread(kernel) == 0.0
        image = photo if sharp else wiener_deconvolve(photo, kernel, plan.balance)
        return Deblurred(kernel, sigma, image), kept

    def _restore_views(
        self,
        pixels: torch.Tensor,
        reference: torch.Tensor | None,
        forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
        passes: PassCounter,
        *,
        config: RestorerConfig | DenoiserConfig,
        views: tuple[int, ...],
        tile: int | None,
        gather: int,
    ) -> tuple[torch.Tensor, int]:
        """A network (``forward(patch, reference part or None)``, ``config`` its own) over
        each view of ``pixels`` [1, 3, H, W] in tiles (``tile`` None: one), the views
        averaged back in the photo's frame; and the gathering passes run
        (``photo_statistics``: 0 where there is one tile, or the network's statistics are
        windowed, a tile's own by design)."""
        height, width = pixels.shape[-2:]
        source, source_reference = pixels, reference
        if views == UPRIGHT_VIEWS:  # flipped, a side off the grid moves it off the corner
            source, _ = pad_to_multiple(pixels, GRID)
            if reference is not None:
                source_reference, _ = pad_to_multiple(reference, GRID)
        layout = {
            "tile": tile or max(source.shape[-2:]),
            "overlap": tile_overlap(config),
            "multiple": config.multiple,
        }
        several = max(source.shape[-2:]) > layout["tile"]
        windowed = getattr(config, "statistics_window", None) is not None
        gathered = gather if gather > 0 and several and not windowed else 0
        covering = tile_count(*source.shape[-2:], tile=layout["tile"], overlap=layout["overlap"])
        passes.plan(len(views) * (gathered + 1) * covering)
        restored = torch.zeros_like(source)
        for view in views:
            view_pixels = dihedral_view(source, view)
            view_reference = None
            if source_reference is not None:
                view_reference = dihedral_view(source_reference, view)
            run = self._tile_runner(forward, view_reference, passes)
            shared: AbstractContextManager = nullcontext()  # each tile its own statistics
            if gathered:
                shared = gather_photo_statistics(view_pixels, run, **layout, passes=gather).active()
            with shared:
                view_restored = restore_tiled(view_pixels, run, **layout)
            restored += undo_dihedral_view(view_restored, view) / len(views)
        return restored[..., :height, :width], gathered

    def _tile_runner(
        self,
        forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
        reference: torch.Tensor | None,
        passes: PassCounter,
    ) -> Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]:
        """``run(patch, corner)`` for ``restore_tiled``: the network on one tile, given
        the part of ``reference`` (in the same view's frame) that lies under it."""

        def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
            part = None
            if reference is not None:
                y, x = corner
                part = reference[..., y : y + patch.shape[-2], x : x + patch.shape[-1]]
                # a tile padded to the network's multiple gets its reference padded alike
                pad = (0, patch.shape[-1] - part.shape[-1], 0, patch.shape[-2] - part.shape[-2])
                part = F.pad(part, pad, mode="replicate").to(self.device)
            on_device = patch.to(self.device, memory_format=CHANNELS_LAST)
            restored_patch = forward(on_device, part).cpu()
            passes.tick()
            return restored_patch

        return run

    def _refine(
        self,
        degraded: torch.Tensor,
        restored: torch.Tensor,
        conditioning: Conditioning,
        semantic: TextEncoding | None,
        steps: int,
        seed: int,
        use_tiles: bool,
        tile_size: int,
        passes: PassCounter,
    ) -> torch.Tensor:
        """The refiner over the same tiles; its noise is drawn once for the whole image."""
        refiner = self.load_refiner()
        noise = torch.randn(degraded.shape, generator=torch.Generator().manual_seed(seed))
        stacked = torch.cat([restored.clamp(0, 1), degraded, noise], dim=1)  # [1, 9, H, W]
        caption = None if semantic is None else (semantic.tokens, semantic.mask)

        def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
            restored_tile, degraded_tile, noise_tile = patch.to(self.device).split(3, dim=1)
            refined = refiner(
                restored_tile,
                degraded_tile,
                conditioning,
                noise=noise_tile,
                steps=steps,
                caption_tokens=None if caption is None else caption[0],
                caption_mask=None if caption is None else caption[1],
            )
            passes.tick()
            return refined.cpu()

        height, width = degraded.shape[-2:]
        tile = tile_size if use_tiles else max(height, width)
        return restore_tiled(stacked, run, tile=tile, multiple=refiner.multiple)
