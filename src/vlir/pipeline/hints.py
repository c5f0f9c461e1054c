"""Readings under the analyzer's thresholds that still decide a route: a photo where nothing
was found, but which reads enlarged or faintly hazy, and a blur not found under the noise.
Each level was chosen on BSD400 training photos, past every clean photo measured."""

from __future__ import annotations

from vlir.degradations import get_op
from vlir.perception import Analysis

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
