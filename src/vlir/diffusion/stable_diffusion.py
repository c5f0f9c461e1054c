"""The same SPIRE adaptor around a real Stable Diffusion, for users who have its weights.

Stable Diffusion is not shipped (nothing downloads offline); point vlir at a
local diffusers folder (``unet/``, ``vae/``, ``scheduler/``, and ``text_encoder/``
+ ``tokenizer/`` for its CLIP). A diffusers ``ControlNetModel`` (copied from the
UNet, as ControlNet does) reads the restored and degraded images; its residuals
do not get *added* to the UNet's skip features, as in ControlNet, but go
through 1x1 heads that predict gamma and beta, fused by ``x * (1 + gamma) +
beta`` (``blocks.modulate``) in forward hooks on the UNet's down and middle
blocks. The UNet and VAE stay frozen; ControlNet and the heads train.

The first skip (``conv_in``'s output) is also the path into the first down
block, so it is left unmodulated: modulating it would change the base's own
path, not only its skip.

    refiner = StableDiffusionRefiner.from_pretrained("/models/sd15")
    loss = refiner.training_loss(clean, restored, degraded, text_states)
    image = refiner(restored, degraded, text_states, steps=20, seed=0)
    refiner.save_adaptor("runs/sd-adaptor")  # ControlNet + gamma/beta heads
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from vlir.diffusion.blocks import modulate
from vlir.errors import VlirError

HEADS_NAME = "gamma_beta.safetensors"


class GammaBetaHeads(nn.Module):
    """One 1x1 conv per ControlNet residual (the first excepted) -> [B, 2C, h, w].

    Their biases start at zero and ControlNet's own zero convs output zero, so
    the frozen UNet runs unchanged at the start; their weights are random so
    the gradient reaches ControlNet (two zero-initialised layers in a row
    would never train).
    """

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(c, 2 * c, 1) for c in channels)
        for head in self.heads:
            nn.init.zeros_(head.bias)

    def forward(self, residuals: list[torch.Tensor]) -> list[torch.Tensor]:
        return [head(r) for head, r in zip(self.heads, residuals, strict=True)]


class StableDiffusionRefiner:
    def __init__(self, unet, vae, scheduler, controlnet, heads: GammaBetaHeads | None = None):
        self.unet = unet.eval().requires_grad_(False)
        self.vae = vae.eval().requires_grad_(False)
        self.scheduler = scheduler
        self.controlnet = controlnet
        channels = [block.out_channels for block in controlnet.controlnet_down_blocks][1:]
        channels.append(controlnet.controlnet_mid_block.out_channels)
        self.heads = heads if heads is not None else GammaBetaHeads(channels)
        self._pending: list[torch.Tensor] | None = None
        for block in self.unet.down_blocks:
            block.register_forward_hook(self._modulate_down)
        self.unet.mid_block.register_forward_hook(self._modulate_middle)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], adaptor: str | os.PathLike[str] | None = None
    ) -> StableDiffusionRefiner:
        """A diffusers Stable Diffusion folder; ``adaptor`` a folder ``save_adaptor`` wrote
        (without one, a fresh ControlNet is copied from the UNet, ready to train)."""
        from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel

        root = Path(path)
        for part in ("unet", "vae", "scheduler"):
            if not (root / part).is_dir():
                raise VlirError(f"{root}: not a diffusers Stable Diffusion folder (no {part}/)")
        unet = UNet2DConditionModel.from_pretrained(root / "unet")
        vae = AutoencoderKL.from_pretrained(root / "vae")
        scheduler = DDIMScheduler.from_pretrained(root / "scheduler")
        if adaptor is None:
            return cls(unet, vae, scheduler, cls.new_controlnet(unet, vae))
        folder = Path(adaptor)
        controlnet = ControlNetModel.from_pretrained(folder / "controlnet")
        refiner = cls(unet, vae, scheduler, controlnet)
        refiner.heads.load_state_dict(load_file(str(folder / HEADS_NAME)))
        return refiner

    @staticmethod
    def new_controlnet(unet, vae, hint_channels: int = 6):
        """ControlNet copied from the UNet, its hint embedding downsampling as the VAE does."""
        from diffusers import ControlNetModel

        downsamplings = len(vae.config.block_out_channels) - 1
        embedding = tuple(16 * 2**i for i in range(downsamplings + 1))
        return ControlNetModel.from_unet(
            unet,
            conditioning_channels=hint_channels,
            conditioning_embedding_out_channels=embedding,
        )

    def save_adaptor(self, directory: str | os.PathLike[str]) -> Path:
        folder = Path(directory)
        self.controlnet.save_pretrained(folder / "controlnet")
        state = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
        save_file(state, str(folder / HEADS_NAME))
        (folder / "vlir.json").write_text(json.dumps({"model_type": "sd-adaptor"}) + "\n")
        return folder

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [*self.controlnet.parameters(), *self.heads.parameters()]

    # -- the fusion: forward hooks consume the gamma/beta maps in the UNet's order --------

    def _take(self) -> torch.Tensor | None:
        return None if self._pending is None else self._pending.pop(0)

    def _modulate_down(self, module, inputs, output):
        if self._pending is None or not isinstance(output, tuple):
            return output
        hidden, skips = output
        return hidden, tuple(modulate(skip, self._take()) for skip in skips)

    def _modulate_middle(self, module, inputs, output):
        if self._pending is None:
            return output
        return modulate(output, self._take())

    def predict(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        hint: torch.Tensor,
        text_states: torch.Tensor,
    ) -> torch.Tensor:
        """The UNet's prediction with ControlNet's gamma/beta fused into its skips."""
        down, middle = self.controlnet(
            latents,
            timestep,
            encoder_hidden_states=text_states,
            controlnet_cond=hint,
            return_dict=False,
        )
        self._pending = self.heads([*down[1:], middle])
        try:
            return self.unet(latents, timestep, encoder_hidden_states=text_states).sample
        finally:
            self._pending = None

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> scaled latents (the VAE's mean: deterministic)."""
        posterior = self.vae.encode(image * 2 - 1).latent_dist
        return posterior.mean * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        image = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return ((image + 1) / 2).clamp(0, 1)

    def training_loss(
        self,
        clean: torch.Tensor,
        restored: torch.Tensor,
        degraded: torch.Tensor,
        text_states: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The scheduler's own objective (epsilon or v) on the clean image's latents."""
        with torch.no_grad():
            latents = self.encode(clean)
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        steps = self.scheduler.config.num_train_timesteps
        t = torch.randint(0, steps, (latents.shape[0],), generator=generator).to(latents.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        hint = torch.cat([restored, degraded], dim=1) * 2 - 1
        predicted = self.predict(noisy, t, hint, text_states)
        if self.scheduler.config.prediction_type == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return F.mse_loss(predicted.float(), target.float())

    @torch.inference_mode()
    def __call__(
        self,
        restored: torch.Tensor,
        degraded: torch.Tensor,
        text_states: torch.Tensor,
        *,
        steps: int = 20,
        strength: float = 0.3,
        seed: int = 0,
    ) -> torch.Tensor:
        """img2img from the restored image's latents noised to ``strength``, DDIM steps."""
        if steps < 1 or not 0 < strength <= 1:
            raise VlirError("need steps >= 1 and 0 < strength <= 1")
        self.scheduler.set_timesteps(max(steps, round(steps / strength)))
        timesteps = self.scheduler.timesteps[-steps:]
        latents = self.encode(restored)
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
        latents = self.scheduler.add_noise(latents, noise.to(latents), timesteps[:1])
        hint = torch.cat([restored, degraded], dim=1) * 2 - 1
        for t in timesteps:
            predicted = self.predict(latents, t, hint, text_states)
            latents = self.scheduler.step(predicted, t, latents).prev_sample
        return self.decode(latents)
