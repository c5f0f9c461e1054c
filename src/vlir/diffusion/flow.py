"""Flow matching, and the straight bridge the refiner walks from the restorer's output.

Why flow matching rather than DDPM/DDIM: its paths are straight lines, so a
handful of Euler steps already lands near the data; the velocity target is
well scaled at every noise level; and sampling is a deterministic ODE, so a
seed fixes the result. The sampler is diffusers' ``FlowMatchEulerDiscreteScheduler``.

Convention (diffusers'): ``sigma`` = 1 is pure noise, 0 is the image,
``x_sigma = (1 - sigma) * image + sigma * noise``, and the network predicts
``d x_sigma / d sigma`` (the velocity).

The prior learns that path on clean photos. The refiner does not start from
pure noise: it starts from the restorer's output ``r`` noised to ``sigma0`` (the
refinement strength, SDEdit-style) and must end at the clean ``y``. Its path is
the straight line between those two ends (a bridge):

    start      = (1 - sigma0) * r + sigma0 * noise
    x_sigma    = y + (sigma / sigma0) * (start - y)
    velocity   = (start - y) / sigma0

Straight, so Euler steps follow it exactly and one step already gives the
network's estimate of ``y``; with ``r = y`` it is the prior's own path, so the
frozen prior is where training starts. All images live in [-1, 1] here.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def to_model_space(image: torch.Tensor) -> torch.Tensor:
    return image * 2 - 1


def to_image_space(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def prior_pair(
    clean: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_sigma, velocity target) of the plain flow; clean [B, 3, H, W] in [-1, 1], sigma [B]."""
    s = sigma[:, None, None, None]
    return (1 - s) * clean + s * noise, noise - clean


def start_from(restored: torch.Tensor, noise: torch.Tensor, sigma0: float) -> torch.Tensor:
    """The refiner's starting point: the restorer's output noised to sigma0 (model space)."""
    return (1 - sigma0) * restored + sigma0 * noise


def bridge_pair(
    target: torch.Tensor,
    restored: torch.Tensor,
    sigma: torch.Tensor,
    sigma0: float,
    noise: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_sigma, velocity) on the line from noised ``restored`` (sigma0) to ``target`` (0)."""
    s = sigma[:, None, None, None]
    start = start_from(restored, noise, sigma0)
    return target + (s / sigma0) * (start - target), (start - target) / sigma0


def make_scheduler(steps: int, sigma0: float, device: torch.device | str = "cpu"):
    """An Euler scheduler walking ``steps`` equal steps from sigma0 down to 0."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    sigmas = [sigma0 * (1 - i / steps) for i in range(steps)]
    scheduler.set_timesteps(sigmas=sigmas, device=device)
    return scheduler
