"""The noise expert's share: when white or shot noise is all a request removes, and at
which level (stated, measured from the photo, fitted, or read)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from vlir.degradations import RestorationPrompt, get_op
from vlir.perception import Analysis
from vlir.perception.jpeg_grid import QUANTISED_PEAK, quantisation_peak
from vlir.perception.noise_level import clipped_share, noise_kind, white_noise_sigma
from vlir.pipeline.removal import removed_ops
from vlir.restoration.anscombe import anscombe, measured_peak, stabilised_sigma

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
