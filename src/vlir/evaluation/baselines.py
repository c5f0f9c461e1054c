"""Classical restoration methods behind one interface, to sit beside vlir models.

Every method is ``restore(image, sample) -> image`` on float [H, W, 3] in
[0, 1]. ``sample`` says what the benchmark knows about the degradation: its
record (true noise sigma, true blur kernel) or the SR scale. Baselines that use
those are *oracle* baselines (BM3D with the true sigma is how BM3D is always
reported); each says whether it is one.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from vlir.degradations import DegradationRecord, get_op, imresize
from vlir.errors import VlirError


@dataclass(frozen=True)
class Sample:
    """One benchmark input: the degraded pixels and what is known of how they were made."""

    name: str
    degraded: np.ndarray
    record: DegradationRecord | None = None
    scale: int = 1
    """Super-resolution factor: the output must be ``scale`` times larger."""
    extras: dict[str, float] = field(default_factory=dict)

    def noise_sigma(self) -> float | None:
        """True AWGN sigma on 0-255 when the record has one."""
        for step in self.record.steps if self.record else ():
            if step.op == "noise":
                return float(step.params.sigma)
            if step.op == "low_light":
                return float(step.params.noise)
        return self.extras.get("sigma")

    def kernel(self) -> np.ndarray | None:
        """The true blur kernel when the record has one."""
        for step in self.record.steps if self.record else ():
            op = get_op(step.op)
            if hasattr(op, "kernel"):
                return op.kernel(step.params)
        return None


class Method(ABC):
    """Anything that restores: a classical baseline here, a vlir model elsewhere."""

    name: ClassVar[str]
    oracle: ClassVar[bool] = False
    handles: ClassVar[tuple[str, ...]] = ()
    """Op names this baseline is meant for; empty means every task."""

    @abstractmethod
    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray: ...

    def __call__(self, sample: Sample) -> np.ndarray:
        restored = np.nan_to_num(self.restore(sample.degraded, sample), nan=0.0)
        return np.clip(restored, 0.0, 1.0).astype(np.float32)


def _upsample_if_needed(image: np.ndarray, sample: Sample) -> np.ndarray:
    return image if sample.scale == 1 else imresize(image, sample.scale)


def _estimate_sigma(image: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(image, channel_axis=-1, average_sigmas=True)) * 255.0


class Identity(Method):
    """The degraded input itself (nearest-neighbour enlarged for SR): the floor to beat."""

    name = "identity"

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        if sample.scale == 1:
            return image
        return np.repeat(np.repeat(image, sample.scale, axis=0), sample.scale, axis=1)


class Bicubic(Method):
    """MATLAB-bicubic upsampling, the SR reference."""

    name = "bicubic"
    handles = ("downsample",)

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        return _upsample_if_needed(image, sample)


class BM3D(Method):
    """CBM3D (Dabov et al. 2007) with the true sigma (estimated when unknown)."""

    name = "bm3d"
    oracle = True
    handles = ("noise", "shot_noise", "low_light")

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        try:
            import bm3d
        except ImportError:
            raise VlirError(
                "bm3d is not installed: pip install 'vlir[baselines]' (non-commercial licence)"
            ) from None
        sigma = sample.noise_sigma() or _estimate_sigma(image)
        return bm3d.bm3d_rgb(image.astype(np.float64), sigma_psd=sigma / 255.0).astype(np.float32)


class NonLocalMeans(Method):
    """Non-local means (Buades et al. 2005), scikit-image's fast mode, h = 0.8 sigma."""

    name = "nlm"
    oracle = True
    handles = ("noise", "shot_noise", "low_light")

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        from skimage.restoration import denoise_nl_means

        sigma = (sample.noise_sigma() or _estimate_sigma(image)) / 255.0
        return denoise_nl_means(
            image,
            h=0.8 * sigma,
            sigma=sigma,
            fast_mode=True,
            patch_size=5,
            patch_distance=6,
            channel_axis=-1,
        ).astype(np.float32)


class TotalVariation(Method):
    """Chambolle TV denoising; weight proportional to the noise level."""

    name = "tv"
    oracle = True
    handles = ("noise", "shot_noise", "low_light", "jpeg")

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        sigma = (sample.noise_sigma() or _estimate_sigma(image)) / 255.0
        return denoise_tv_chambolle(image, weight=max(sigma, 0.01), channel_axis=-1).astype(
            np.float32
        )


class _Deconvolution(Method):
    """Non-blind deconvolution with the true kernel, or a Gaussian guess without one."""

    oracle = True
    handles = ("blur", "motion_blur", "defocus")

    def psf(self, sample: Sample) -> np.ndarray:
        kernel = sample.kernel()
        if kernel is not None:
            return kernel
        return get_op("blur").kernel(get_op("blur").params_type(sigma=1.5))

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        psf = self.psf(sample)
        pad = psf.shape[0]
        padded = np.pad(np.clip(image, 0, 1), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        channels = [self.deconvolve(padded[..., c], psf) for c in range(3)]
        return np.stack(channels, axis=-1)[pad:-pad, pad:-pad].astype(np.float32)

    def deconvolve(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Wiener(_Deconvolution):
    name = "wiener"

    def deconvolve(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        from skimage.restoration import wiener

        # balance chosen on BSD400 training images (blur, motion, defocus), never on eval sets
        return wiener(channel, psf, balance=0.005, clip=False)


class RichardsonLucy(_Deconvolution):
    name = "richardson_lucy"

    def deconvolve(self, channel: np.ndarray, psf: np.ndarray) -> np.ndarray:
        from skimage.restoration import richardson_lucy

        # filter_epsilon: FFT round-off near zero must not blow up the ratio image
        return richardson_lucy(channel, psf, num_iter=30, clip=False, filter_epsilon=1e-6)


def _guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with box means (edge-preserving smoothing of ``source``)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, size, borderType=cv2.BORDER_REFLECT)

    mean_g, mean_s = box(guide), box(source)
    var_g = box(guide * guide) - mean_g**2
    cov_gs = box(guide * source) - mean_g * mean_s
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    return box(a) * guide + box(b)


class DarkChannelPrior(Method):
    """He, Sun & Tang (2009) dehazing with guided-filter refinement of the transmission."""

    name = "dark_channel"
    handles = ("haze",)

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        img = np.clip(image, 0, 1).astype(np.float32)
        kernel = np.ones((15, 15), np.uint8)
        dark = cv2.erode(img.min(axis=2), kernel)
        count = max(1, dark.size // 1000)
        brightest = np.argsort(dark.ravel())[-count:]
        airlight = img.reshape(-1, 3)[brightest].max(axis=0)
        normalised = cv2.erode((img / np.maximum(airlight, 1e-3)).min(axis=2), kernel)
        transmission = 1.0 - 0.95 * normalised
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        transmission = _guided_filter(grey, transmission, radius=30, eps=1e-3)
        t = np.maximum(transmission, 0.1)[..., None]
        return (img - airlight) / t + airlight


class LIME(Method):
    """Low-light enhancement after LIME (Guo et al. 2017): divide by a smoothed illumination map.

    The illumination is the max over colour channels, refined by a guided filter
    (in place of LIME's optimisation) and gamma-corrected (0.8) before division.
    """

    name = "lime"
    handles = ("low_light",)

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        img = np.clip(image, 0, 1).astype(np.float32)
        illumination = img.max(axis=2)
        illumination = _guided_filter(illumination, illumination, radius=15, eps=1e-3)
        illumination = np.clip(illumination, 1e-3, 1.0) ** 0.8
        return img / illumination[..., None]


class GreyWorld(Method):
    """Grey-world white balance: scale channels so their means agree."""

    name = "grey_world"
    handles = ("color_cast",)

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        means = image.reshape(-1, 3).mean(axis=0)
        return image * (means.mean() / np.maximum(means, 1e-6))


class Median(Method):
    """A 3x3 median filter per channel: removes thin bright streaks and impulses."""

    name = "median"
    handles = ("rain", "jpeg")

    def restore(self, image: np.ndarray, sample: Sample) -> np.ndarray:
        img = np.clip(image, 0, 1).astype(np.float32)
        return cv2.medianBlur(img, 3)


BASELINES: dict[str, Callable[[], Method]] = {
    cls.name: cls
    for cls in (
        Identity,
        Bicubic,
        BM3D,
        NonLocalMeans,
        TotalVariation,
        Wiener,
        RichardsonLucy,
        DarkChannelPrior,
        LIME,
        GreyWorld,
        Median,
    )
}


def _restorer_method(
    path: str, device: str = "cpu", ensemble: bool = False, alone: bool = False
) -> Method:
    from vlir.evaluation.models import RestorerMethod

    return RestorerMethod(path, ensemble=ensemble, alone=alone, device=device)


def _refiner_method(path: str, device: str = "cpu") -> Method:
    from vlir.evaluation.models import refiner_method

    return refiner_method(path, device=device)


MODEL_METHODS: dict[str, Callable[[str, str], Method]] = {
    "restorer": _restorer_method,
    "refiner": _refiner_method,
}
"""model_type -> loader of a vlir checkpoint (folder, device) as a Method; restoring
models register here."""


def get_method(name: str, *, device: str = "cpu") -> Method:
    """A baseline by name, or a vlir checkpoint (shipped name or folder) that restores,
    its networks on ``device`` (``vlir.modeling.resolve_device``; baselines run on the
    CPU); a restorer's name ending "+x8" is its self-ensemble (``ENSEMBLE_SUFFIX``),
    "+alone" the restorer without the noise expert (``ALONE_SUFFIX``)."""
    if name in BASELINES:
        return BASELINES[name]()
    from vlir.evaluation.models import restorer_variant
    from vlir.modeling import WEIGHTS_DIR

    checkpoint, ensemble, alone = restorer_variant(name)
    folder = WEIGHTS_DIR / checkpoint if (WEIGHTS_DIR / checkpoint).is_dir() else Path(checkpoint)
    config = folder / "config.json"
    if config.exists():
        model_type = json.loads(config.read_text()).get("model_type", "?")
        if (ensemble or alone) and model_type == "restorer":
            return _restorer_method(str(folder), device, ensemble=ensemble, alone=alone)
        if ensemble or alone:
            raise VlirError(f"{name}: only a restorer checkpoint has these variants")
        if model_type in MODEL_METHODS:
            return MODEL_METHODS[model_type](str(folder), device)
        raise VlirError(f"{name}: a {model_type!r} checkpoint does not restore images")
    known = ", ".join(BASELINES)
    raise VlirError(f"unknown method {name!r}: not a baseline ({known}) nor a checkpoint") from None


def baselines_for(ops: tuple[str, ...]) -> list[str]:
    """Every baseline meant for at least one of ``ops``, after identity."""
    names = ["identity"]
    for name, cls in BASELINES.items():
        if cls.handles and set(cls.handles) & set(ops):
            names.append(name)
    return names
