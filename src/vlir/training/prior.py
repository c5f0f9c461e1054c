"""Train SPIRE's diffusion prior on clean photos (``vlir train prior``), to be frozen after.

Clean BSD400 crops (flips, some turned grey) with their captions; a share of
captions is dropped so the prior also models photos without words. Loss: the
flow-matching velocity MSE at noise levels up to ``sigma_max`` (the refiner
never starts higher, so the prior's capacity goes where it is used).
Resumable; torchrun-ready.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vlir.data import CleanImages, DegradedSampler, load_captions
from vlir.degradations import DegradationPipeline
from vlir.diffusion import PriorConfig, PriorDenoiser
from vlir.diffusion.flow import prior_pair, to_model_space
from vlir.text import CachedTextEncoder, load_text_encoder
from vlir.training.common import (
    Logger,
    Milestones,
    Recipe,
    broadcast_weights,
    cosine_lr,
    load_recipe,
    optimizer_step,
    parse_settings,
    resume,
    setup_distributed,
    split_holdout,
    training_state,
)
from vlir.training.ema import resume_average


@dataclass
class PriorRecipe(Recipe):
    out: str = "runs/prior"
    crop: int = 64
    lr: float = 5e-4
    sigma_max: float = 0.6
    """Highest noise level trained; refinement strengths above it are refused."""
    p_uncond: float = 0.2
    """Share of captions replaced by the null token (classifier-free training)."""


def one_step_psnr(
    model: PriorDenoiser, clean: torch.Tensor, sigma: float, seed: int, tokens=None, mask=None
) -> float:
    """PSNR of the one-step estimate ``x - sigma * v`` at ``sigma``: how well the prior denoises."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=generator).to(clean.device)
    sigmas = torch.full((clean.shape[0],), sigma, device=clean.device)
    x, _ = prior_pair(to_model_space(clean), sigmas, noise)
    estimate = ((x - sigma * model(x, sigmas, tokens, mask)) + 1) / 2
    mse = ((estimate.clamp(0, 1) - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((-10 * torch.log10(mse)).mean())


def train(recipe: PriorRecipe) -> Path:
    dist_info = setup_distributed()
    device = dist_info.device
    torch.manual_seed(recipe.seed + dist_info.rank)
    out = Path(recipe.out)
    config = dataclasses.replace(
        PriorConfig(),
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.model.items()},
    )
    model = PriorDenoiser(config).to(device)
    if recipe.init and not (out / "checkpoint.pt").exists():
        model.load_state_dict(PriorDenoiser.from_pretrained(recipe.init).state_dict())
    text = CachedTextEncoder(load_text_encoder(config.text_encoder).to(device).eval())
    images = CleanImages(recipe.data, None, load_captions(recipe.captions))
    train_ids, holdout = split_holdout(len(images), recipe.holdout)
    crop = (recipe.crop, recipe.crop)
    pipeline = DegradationPipeline(max_ops=1)
    sampler = DegradedSampler(
        images, pipeline, p_clean=1.0, p_grey=recipe.p_grey, subset=train_ids, crop=crop
    )
    val_batch = DegradedSampler(images, pipeline, p_clean=1.0, subset=holdout, crop=crop).sample(
        np.random.default_rng(recipe.seed + 99), 32
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=(0.9, 0.99), weight_decay=recipe.weight_decay
    )
    step, best, checkpoint = resume(out, model, optimizer)
    broadcast_weights(model, dist_info)
    average = resume_average(model, recipe.ema, checkpoint)
    shipped = average.model if average is not None else model  # validated and exported
    rng = np.random.default_rng([recipe.seed, dist_info.rank, step])
    logger = Logger(out, dist_info.main)
    milestones = Milestones.for_recipe(recipe, main=dist_info.main, best=best, logger=logger)

    @torch.no_grad()
    def validate() -> dict[str, float]:
        shipped.eval()
        clean = val_batch.clean.to(device)
        captions = text(val_batch.captions)
        scores = {
            f"val/psnr_sigma{s}": one_step_psnr(
                shipped, clean, s, recipe.seed, captions.tokens, captions.mask
            )
            for s in (0.1, 0.3)
        }
        model.train()
        return {**scores, "val/psnr": sum(scores.values()) / len(scores)}

    model.train()
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.steps, recipe.warmup, recipe.lr)
        batch = sampler.sample(rng, recipe.batch)
        clean = to_model_space(batch.clean.to(device))
        keep = torch.from_numpy(rng.random(recipe.batch) >= recipe.p_uncond).to(device)
        captions = text(batch.captions)
        mask = captions.mask.float() * keep[:, None]
        sigma = torch.from_numpy(rng.random(recipe.batch) * recipe.sigma_max).float().to(device)
        noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32)).to(device)
        x, velocity = prior_pair(clean, sigma, noise)
        loss = F.mse_loss(model(x, sigma, captions.tokens, mask), velocity)
        optimizer_step(model, optimizer, loss, dist_info, max_norm=1.0, average=average)
        step += 1
        if step % recipe.log_every == 0:
            logger.log(
                step, {"loss/velocity": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"]}
            )
        milestones.after_step(
            step,
            recipe.steps,
            validate=validate,
            score="val/psnr",
            export=shipped.save_pretrained,
            state=lambda: training_state(model, optimizer, recipe, average),
        )
    return out / "best"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the diffusion prior on clean photos.")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any recipe key")
    args = parser.parse_args(argv)
    train(load_recipe(PriorRecipe, args.recipe, parse_settings(args.set)))


if __name__ == "__main__":
    main()
