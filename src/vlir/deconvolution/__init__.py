"""Blur undone by deconvolution: its kernel estimated from the photo, then inverted.

A small restorer trained for minutes learns denoising far sooner than it learns to undo
a blur (on CBSD68 the shipped one left motion-blurred photos as they were, 0.1 dB worse,
and moved defocus and Gaussian blur by under 1 dB, where the estimated kernel's inverse
gains 1.7-3.7). The blur itself is a convolution, so where it is all a photo has to lose, the
pipeline estimates the kernel (coarse to fine, Cho & Lee 2009) and divides it out in the
Fourier domain (a Gaussian blur, one number, by the Gaussian it reads as:
``gaussian``). In mixtures the restorer does everything, but for a blur under white or
shot noise: the noise expert denoises, and the blur is divided out of its output at a balance
that grows with the noise (``wiener_balance``). Numbers: the weights README.
"""

from vlir.deconvolution.fourier import (
    WIENER_BALANCE_BY_BLUR,
    psf_to_otf,
    wiener_balance,
    wiener_deconvolve,
)
from vlir.deconvolution.gaussian import gaussian_psf, gaussian_width, narrowest_gaussian
from vlir.deconvolution.kernel_estimation import (
    IMPLAUSIBLE_SPREAD,
    SHARP_SPREAD,
    blur_spread,
    estimate_blur_kernel,
    kernel_size_for,
    kernel_spread,
)

__all__ = [
    "IMPLAUSIBLE_SPREAD",
    "SHARP_SPREAD",
    "WIENER_BALANCE_BY_BLUR",
    "blur_spread",
    "estimate_blur_kernel",
    "gaussian_psf",
    "gaussian_width",
    "kernel_size_for",
    "kernel_spread",
    "narrowest_gaussian",
    "psf_to_otf",
    "wiener_balance",
    "wiener_deconvolve",
]
