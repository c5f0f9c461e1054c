"""The refiner: frozen prior + adaptor, sampled along the bridge from the restorer's output.

>>> refiner = Refiner.from_pretrained()          # shipped adaptor and its prior
>>> refined = refiner(restored, degraded, conditioning, steps=1, noise=noise)

Deterministic given ``noise`` (the pipeline draws it from ``--seed`` for the
whole image, so tiles cut the same noise the whole image would see).
"""

from __future__ import annotations

import os

import torch

from vlir.conditioning import Conditioning
from vlir.diffusion.adaptor import RefinerAdaptor
from vlir.diffusion.flow import make_scheduler, start_from, to_image_space, to_model_space
from vlir.diffusion.prior import PriorDenoiser
from vlir.errors import VlirError


class Refiner:
    def __init__(self, adaptor: RefinerAdaptor, prior: PriorDenoiser) -> None:
        mine, theirs = adaptor.config.prior_config, prior.config
        if (mine.widths, mine.blocks, mine.time_dim) != (
            tuple(theirs.widths),
            theirs.blocks,
            theirs.time_dim,
        ):
            raise VlirError("the refiner's adaptor was built for another prior architecture")
        self.adaptor = adaptor.eval()
        self.prior = prior.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str] = "refiner") -> Refiner:
        adaptor = RefinerAdaptor.from_pretrained(name_or_path)
        return cls(adaptor, PriorDenoiser.from_pretrained(adaptor.config.prior))

    def to(self, device: torch.device | str) -> Refiner:
        """Both networks to ``device`` (the pipeline's ``Restorer.to``)."""
        self.adaptor.to(device)
        self.prior.to(device)
        return self

    @property
    def multiple(self) -> int:
        return self.adaptor.config.multiple

    def hint_of(self, start: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
        """What the adaptor reads beside x (model space): the restored image and the degraded
        input [B, 6, H, W], or the degraded input alone [B, 3, H, W] without a restorer."""
        if self.adaptor.config.restorer is None:
            return degraded
        return torch.cat([start, degraded], dim=1)

    def velocity(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        hint: torch.Tensor,
        conditioning: Conditioning,
        caption_tokens: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """d x / d sigma at ``x`` (model space); ``hint`` (``hint_of``) begins with the
        image sampling started from (restored, or the degraded input without a restorer).

        Residual mode: clean estimate = that image + (steered - unsteered prior estimate),
        and a velocity on the straight line from ``x`` to that estimate.
        """
        control = self.adaptor(x, sigma, hint, conditioning)
        steered = self.prior(x, sigma, caption_tokens, caption_mask, control)
        if not self.adaptor.config.residual:
            return steered
        with torch.no_grad():
            plain = self.prior(x, sigma, caption_tokens, caption_mask)
        s = sigma[:, None, None, None]
        restored = hint[:, :3]
        return steered - plain + (x - restored) / s

    @torch.inference_mode()
    def __call__(
        self,
        restored: torch.Tensor,
        degraded: torch.Tensor,
        conditioning: Conditioning,
        *,
        noise: torch.Tensor,
        steps: int = 1,
        caption_tokens: torch.Tensor | None = None,
        caption_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """restored, degraded, noise [B, 3, H, W] (images in [0, 1]) -> refined [B, 3, H, W].

        Without a restorer (a diffusion restorer) ``restored`` is the degraded input."""
        if steps < 1:
            raise VlirError(f"--steps must be at least 1 (got {steps})")
        sigma0 = self.adaptor.config.sigma0
        restored_m = to_model_space(restored.clamp(0, 1))
        hint = self.hint_of(restored_m, to_model_space(degraded.clamp(0, 1)))
        scheduler = make_scheduler(steps, sigma0, restored.device)
        x = start_from(restored_m, noise, sigma0)
        for index, timestep in enumerate(scheduler.timesteps):
            sigma = scheduler.sigmas[index].to(x.device).expand(x.shape[0])
            v = self.velocity(x, sigma, hint, conditioning, caption_tokens, caption_mask)
            x = scheduler.step(v, timestep, x, return_dict=False)[0]
        return to_image_space(x).clamp(0, 1)
