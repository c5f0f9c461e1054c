"""Convolution as multiplication: kernels to transfer functions, and the Wiener inverse."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.fft

WIENER_BALANCE = 0.01
"""Noise-to-signal balance of the inverse. On the two held-out BSD400 photos with camera
shake alone (benchmarks/analyzer.py's draw) it beat 0.005 (rings) and 0.02-0.1 (leave
blur); with every frequency but the mean damped, it beat damping the mean too (29.68 vs
29.44 dB with the true kernels on 12 BSD400 photos)."""
WIENER_BALANCE_BY_BLUR = {"motion_blur": WIENER_BALANCE, "defocus": 0.005, "blur": 0.005}
"""The balance for each blur the engine makes, chosen with estimated kernels on 13 BSD400
training photos rounded to 8 bits (the photos of ``benchmarks/deconvolution.py --dataset
BSD400 --stride 33 --task OP``): camera shake is best at 0.01 (of 0.003-0.015), defocus and
Gaussian blur at 0.005 (of 0.002-0.02; defocus 0.03 dB better at 0.002, Gaussian 0.17
worse). Numbers: the weights README."""
BALANCE_PER_NOISE = 0.15
"""Under noise the noise expert removed first, the balance grows with the noise's sigma (on
the 0-1 scale): what the expert leaves grows with it, and the inverse must not lift it.
On 39 BSD400 training photos with the engine's Gaussian blur under white noise (sigma
0-75) and 40 with defocus, the best of 0.0025-0.08 was 0.0025-0.005 under sigma 10,
0.01-0.02 at 20-35 and 0.02-0.04 above 50. Of 0.05-0.3 times sigma, 0.15 gained the most
over the expert's output (0.63 and 0.49 dB; 0.1: 0.63 and 0.45; 0.2: 0.60 and 0.48)."""


def wiener_balance(blurs: Iterable[str], noise_sigma: float = 0.0) -> float:
    """The balance for dividing ``blurs`` out: each blur's own
    (``WIENER_BALANCE_BY_BLUR``, the smallest of them), or, under noise of ``noise_sigma``
    (0-255) that the expert removed first, ``BALANCE_PER_NOISE`` times it where that is
    larger."""
    alone = min(WIENER_BALANCE_BY_BLUR[name] for name in blurs)
    return max(alone, BALANCE_PER_NOISE * noise_sigma / 255.0)


def psf_to_otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's transfer function [H, W // 2 + 1] (real FFT) for an image of ``shape``:
    zero-padded with its centre moved to the origin, so filtering does not shift."""
    padded = np.zeros(shape, np.float32)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return scipy.fft.rfft2(padded)


def wiener_deconvolve(
    image: np.ndarray, kernel: np.ndarray, balance: float = WIENER_BALANCE
) -> np.ndarray:
    """Undo ``convolve(image, kernel)``: [H, W] or [H, W, C] float in, the same shape out.

    The result is aligned on the kernel's centre of mass (a kernel is known only up to a
    shift; the engine centres its camera paths the same way), by a phase, not by resampling
    the kernel. The photo is mirrored outwards by the kernel's size so its borders do not
    wrap into each other. Every frequency but the mean is damped by ``balance``: the mean passes
    untouched (a kernel sums to one), so a photo deconvolved with a point keeps its tone.
    One channel at a time, in single precision: a 12-megapixel photo needs ~0.2 GB.
    """
    margin = max(kernel.shape)
    planar = image[..., None] if image.ndim == 2 else image
    height, width = planar.shape[:2]
    shape = (height + 2 * margin, width + 2 * margin)
    otf = psf_to_otf(kernel.astype(np.float32), shape)  # [H', W'/2+1]
    otf = otf * _phase_to_centre(kernel, shape)
    damping = np.full(otf.shape, balance, np.float32)
    damping[0, 0] = 0.0
    inverse = np.conj(otf) / (np.abs(otf) ** 2 + damping)
    out = np.empty(planar.shape, np.float32)
    for channel in range(planar.shape[2]):
        padded = np.pad(planar[..., channel].astype(np.float32), margin, mode="symmetric")
        spectrum = scipy.fft.rfft2(padded) * inverse
        restored = scipy.fft.irfft2(spectrum, s=shape)
        out[..., channel] = restored[margin : margin + height, margin : margin + width]
    return out[..., 0] if image.ndim == 2 else out


def centre_of_mass(kernel: np.ndarray) -> tuple[float, float]:
    """(row, column) of the kernel's weighted centre, in pixels from its top-left corner."""
    rows, cols = np.mgrid[: kernel.shape[0], : kernel.shape[1]]
    total = float(kernel.sum())
    return float((kernel * rows).sum()) / total, float((kernel * cols).sum()) / total


def _phase_to_centre(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """exp(2 pi i f . offset) [H, W // 2 + 1]: shifting the kernel by minus its centre of
    mass's offset from the middle pixel, at any fraction of a pixel."""
    centre_y, centre_x = centre_of_mass(kernel)
    offset_y = centre_y - kernel.shape[0] // 2
    offset_x = centre_x - kernel.shape[1] // 2
    freq_y = scipy.fft.fftfreq(shape[0])[:, None]
    freq_x = scipy.fft.rfftfreq(shape[1])[None, :]
    return np.exp(2j * np.pi * (freq_y * offset_y + freq_x * offset_x)).astype(np.complex64)
