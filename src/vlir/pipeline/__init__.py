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

Where each part lives:

- ``restorer``: the ``Restorer`` itself (loading, reading the photo, running the route);
- ``decision``: what a call does, decided before any network runs (``decide``);
- ``removal``: what a request removes; ``hints``: readings under the thresholds that
  still pick a route;
- ``blur``: a blur divided out (``deconvolution_request``); ``noise``: the noise expert's
  share and level (``noise_level``); ``cast``: a colour cast removed with the noise;
- ``tiled``: a network over views and tiles; ``frames``: the flips and turns, the JPEG
  grid, the reference's frame;
- ``result``: the ``Restoration`` a call returns, and its report.
"""

from vlir.pipeline.blur import (
    LIGHT_JPEG_QUALITY,
    UNSEEN_BLUR_SPREAD,
    Deblurred,
    Deconvolution,
    deconvolution_request,
    hidden_blur_request,
)
from vlir.pipeline.cast import CAST_WORDS, cast_with_noise, colours_of
from vlir.pipeline.decision import Decision, decide
from vlir.pipeline.frames import (
    UPRIGHT_VIEWS,
    dihedral_view,
    grid_margin,
    in_frame,
    onto_grid,
    undo_dihedral_view,
)
from vlir.pipeline.hints import (
    BLUR_UNDER_NOISE_HINT,
    ENLARGED_HINT,
    HAZE_HINT,
    blur_hint,
    enlarged_hint,
    haze_hint,
)
from vlir.pipeline.noise import (
    CENSORED_SHARE,
    EXPERT_NOISES,
    SEEN_THROUGH,
    NoiseLevel,
    measured_kind,
    measured_level,
    noise_level,
    noise_request,
    reads_white,
    unquantised_jpeg,
)
from vlir.pipeline.removal import removed_ops, removes_blur, removes_jpeg
from vlir.pipeline.restorer import Restorer
from vlir.pipeline.result import NOISE_SOURCES, Restoration
from vlir.pipeline.tiled import (
    AUTO_TILE_PIXELS,
    CHANNELS_LAST,
    DEFAULT_TILE,
    PassCounter,
    restore_views,
    tile_overlap,
    tile_runner,
)

__all__ = [
    "AUTO_TILE_PIXELS",
    "BLUR_UNDER_NOISE_HINT",
    "CAST_WORDS",
    "CENSORED_SHARE",
    "CHANNELS_LAST",
    "DEFAULT_TILE",
    "ENLARGED_HINT",
    "EXPERT_NOISES",
    "HAZE_HINT",
    "LIGHT_JPEG_QUALITY",
    "NOISE_SOURCES",
    "SEEN_THROUGH",
    "UNSEEN_BLUR_SPREAD",
    "UPRIGHT_VIEWS",
    "Deblurred",
    "Decision",
    "Deconvolution",
    "NoiseLevel",
    "PassCounter",
    "Restoration",
    "Restorer",
    "blur_hint",
    "cast_with_noise",
    "colours_of",
    "decide",
    "deconvolution_request",
    "dihedral_view",
    "enlarged_hint",
    "grid_margin",
    "haze_hint",
    "hidden_blur_request",
    "in_frame",
    "measured_kind",
    "measured_level",
    "noise_level",
    "noise_request",
    "onto_grid",
    "reads_white",
    "removed_ops",
    "removes_blur",
    "removes_jpeg",
    "restore_views",
    "tile_overlap",
    "tile_runner",
    "undo_dihedral_view",
    "unquantised_jpeg",
]
