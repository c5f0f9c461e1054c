"""Full-reference metrics exactly as restoration papers compute them.

PSNR and SSIM on RGB, on the Y channel of ITU-R BT.601 (MATLAB's
``rgb2ycbcr``) or on a grey image, on the 0-255 scale, in float64, after ``modcrop`` and with a
border ``shave``. SSIM is scikit-image's with the settings of Wang et al.'s
reference code (Gaussian window sigma 1.5, population covariance), which is
what every SR paper's MATLAB script computes. Low light adds the "GT-mean" PSNR of
low-light enhancement papers (``psnr_gt_mean``).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def to_255(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to the 0-255 scale, quantised as a saved 8-bit file would be."""
    return np.round(np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 255.0)


def rgb_to_y(rgb255: np.ndarray) -> np.ndarray:
    """Y of BT.601 studio swing (16-235), as MATLAB ``rgb2ycbcr`` on 0-255 input."""
    rgb = np.asarray(rgb255, np.float64)
    return (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0 + 16.0


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop so height and width are multiples of ``scale`` (SR ground truth)."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def _prepare(
    output: np.ndarray, target: np.ndarray, channel: str, shave: int
) -> tuple[np.ndarray, np.ndarray]:
    if output.shape != target.shape:
        raise ValueError(f"output {output.shape} and target {target.shape} differ in shape")
    a, b = to_255(output), to_255(target)
    if channel == "y":
        a, b = rgb_to_y(a), rgb_to_y(b)
    elif channel == "grey":  # a grey image repeated in three channels: compare one
        a, b = a[..., 0], b[..., 0]
    elif channel != "rgb":
        raise ValueError(f"channel must be 'rgb', 'y' or 'grey', got {channel!r}")
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return a, b


def psnr(output: np.ndarray, target: np.ndarray, *, channel: str = "rgb", shave: int = 0) -> float:
    """PSNR in dB of [0, 1] images after 8-bit quantisation (peak 255)."""
    a, b = _prepare(output, target, channel, shave)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


LUMA = np.array([0.299, 0.587, 0.114])
"""BT.601 weights of a grey value (OpenCV's ``RGB2GRAY``), for the GT-mean scaling."""


def psnr_gt_mean(
    output: np.ndarray, target: np.ndarray, *, channel: str = "rgb", shave: int = 0
) -> float:
    """PSNR after scaling the output so its mean grey level is the target's.

    How bright an under-exposed scene really was is not in the photo, so a plain PSNR of
    low-light enhancement is dominated by one guessed number, the overall gain; the
    field's "GT-mean" PSNR (LLFlow, Retinexformer) takes that number from the ground truth
    and measures the rest: tone curve, colour, detail, noise.
    """
    output = np.clip(np.asarray(output, np.float64), 0.0, 1.0)
    target = np.clip(np.asarray(target, np.float64), 0.0, 1.0)
    grey = (output @ LUMA).mean() if output.ndim == 3 else output.mean()
    wanted = (target @ LUMA).mean() if target.ndim == 3 else target.mean()
    if grey > 0:
        output = np.clip(output * (wanted / grey), 0.0, 1.0)
    return psnr(output, target, channel=channel, shave=shave)


def ssim(output: np.ndarray, target: np.ndarray, *, channel: str = "rgb", shave: int = 0) -> float:
    """SSIM (Wang et al. 2004); on RGB, the mean of the per-channel SSIMs."""
    a, b = _prepare(output, target, channel, shave)
    return float(
        structural_similarity(
            a,
            b,
            data_range=255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=None if a.ndim == 2 else -1,
        )
    )
