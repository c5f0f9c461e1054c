"""What a call returns: the restored photo, and what was found and done, as a phrase
(``report``) and as fields (``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlir.deconvolution import kernel_spread
from vlir.perception import Analysis


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
