"""Train the noise expert (``vlir train denoiser``).

BSD400 crops (the held-out photos never), white noise of sigma 0-75 drawn by the engine
(grey photos as one plane), some clipped and rounded to 8 bits as a saved file holds
them; the network is told the true sigma (FFDNet), so at run time the stated or the
perceived level steers it. L1 loss, or NAFNet's PSNR loss (``loss: psnr``), which weighs
each crop by how well it is already restored, so light noise, whose errors L1 barely
sees beside sigma 60's, is learned as hard as heavy noise. Validation: the held-out
photos' centres at sigma 15, 25 and 50 (float noise, the denoising protocol).
Resumable; torchrun-ready.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vlir.data import CleanImages, DegradedSampler
from vlir.degradations import DegradationPipeline
from vlir.degradations.record import DegradationRecord
from vlir.restoration.denoiser import DenoiserConfig, DenoiserModel
from vlir.training.common import (
    BatchStream,
    Logger,
    Milestones,
    Recipe,
    batch_stream,
    broadcast_weights,
    cosine_lr,
    load_matching,
    load_recipe,
    optimizer_step,
    out_of_time_everywhere,
    parse_settings,
    resume,
    setup_distributed,
    split_holdout,
    training_state,
)
from vlir.training.ema import resume_average

VALIDATION_SIGMAS = (15.0, 25.0, 50.0)
VALIDATION_SIDE = 192
"""The held-out photos' centre crops validated on (16 x 3 passes: seconds on a CPU)."""
PSNR_LOSS_FLOOR = (0.5 / 255) ** 2
"""The MSE below which a crop pushes no further (half a grey level: what 8 bits show)."""


@dataclass
class DenoiserRecipe(Recipe):
    out: str = "runs/denoiser"
    steps: int = 20000
    batch: int = 16
    crop: int = 64
    lr: float = 1e-3
    warmup: int = 200
    p_clean: float = 0.02
    p_grey: float = 0.15
    p_8bit: float = 0.3
    """Share of noisy crops clipped and rounded as a saved file holds them (the rest stay
    float, as the benchmarks' protocol adds noise)."""
    validate_every: int = 500
    ema: float = 0.999
    loss: str = "l1"
    """``l1``, or ``psnr``: minus the mean per-crop PSNR (``psnr_loss``)."""
    workers: int = 0
    max_minutes: float | None = None
    """Checkpoint and stop after this long, to resume later (time-limited machines)."""


def noise_sigma(record: DegradationRecord) -> float:
    """The white noise's sigma in a record (0 where it has none)."""
    return next((float(step.params.sigma) for step in record.steps if step.op == "noise"), 0.0)


class NoisyBatches(BatchStream):
    """(noisy [B, 3, H, W], sigma [B], clean [B, 3, H, W]) batches."""

    def __init__(self, sampler: DegradedSampler, batch: int, seed: int, rank: int, start: int):
        super().__init__(seed, rank, start)
        self.sampler, self.batch = sampler, batch

    def draw(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        drawn = self.sampler.sample(rng, self.batch)
        sigma = torch.tensor([noise_sigma(record) for record in drawn.records])
        return drawn.degraded, sigma, drawn.clean


def psnr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over crops of 10 log10 MSE (minus PSNR, in dB): the gradient of each crop's
    term is its squared error scaled by 1 / MSE, so a crop at sigma 10 weighs as much as
    one at sigma 70, where L1 lets the heavy noise's large errors dominate."""
    mse = ((output - target) ** 2).mean(dim=(1, 2, 3))  # [B]
    return 10 * torch.log10(mse.clamp_min(PSNR_LOSS_FLOOR)).mean()


LOSSES = {"l1": F.l1_loss, "psnr": psnr_loss}


def validation_photos(images: CleanImages, holdout: list[int]) -> torch.Tensor:
    """[N, 3, S, S] the held-out photos' centres (S: ``VALIDATION_SIDE``, or the smallest
    side among them, a multiple of 8)."""
    sides = [min(images.image(index).shape[:2]) for index in holdout]
    side, crops = min(VALIDATION_SIDE, min(sides) // 8 * 8), []
    for index in holdout:
        image = images.image(index)
        y, x = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        crops.append(torch.from_numpy(image[y : y + side, x : x + side].copy()).permute(2, 0, 1))
    return torch.stack(crops)


@torch.no_grad()
def validate(model: DenoiserModel, clean: torch.Tensor, seed: int) -> dict[str, float]:
    """PSNR at each of ``VALIDATION_SIGMAS`` (the same noise every time) and their mean."""
    training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for sigma in VALIDATION_SIGMAS:
        noise = torch.randn(clean.shape, generator=generator) * (sigma / 255.0)
        noisy = (clean + noise).to(device)
        denoised = torch.cat([model(part, sigma).clamp(0, 1) for part in noisy.split(8)])
        mse = ((denoised.cpu() - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        scores[f"val/psnr_{sigma:g}"] = float((-10 * torch.log10(mse)).mean())
    model.train(training)
    return {**scores, "val/psnr": float(np.mean(list(scores.values())))}


def train(recipe: DenoiserRecipe) -> Path:
    dist_info = setup_distributed()
    torch.manual_seed(recipe.seed + dist_info.rank)
    out = Path(recipe.out)
    config = dataclasses.replace(
        DenoiserConfig(),
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.model.items()},
    )
    if recipe.loss not in LOSSES:
        raise ValueError(f"loss: {recipe.loss!r} is not one of {', '.join(LOSSES)}")
    loss_of = LOSSES[recipe.loss]
    model = DenoiserModel(config).to(dist_info.device)
    if recipe.init and not (out / "checkpoint.pt").exists():
        load_matching(model, DenoiserModel.from_pretrained(recipe.init).state_dict())
    images = CleanImages(recipe.data)
    train_ids, holdout = split_holdout(len(images), recipe.holdout)
    sampler = DegradedSampler(
        images,
        DegradationPipeline(["noise"], max_ops=1),
        p_clean=recipe.p_clean,
        p_grey=recipe.p_grey,
        p_8bit=recipe.p_8bit,
        subset=train_ids,
        crop=(recipe.crop, recipe.crop),
    )
    held_out = validation_photos(images, holdout)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=(0.9, 0.9), weight_decay=recipe.weight_decay
    )
    step, best, checkpoint = resume(out, model, optimizer)
    broadcast_weights(model, dist_info)
    average = resume_average(model, recipe.ema, checkpoint)
    shipped = average.model if average is not None else model  # validated and exported
    logger = Logger(out, dist_info.main)
    batches = NoisyBatches(sampler, recipe.batch, recipe.seed, dist_info.rank, step)
    stream = batch_stream(batches, recipe.workers)
    started = time.time()
    milestones = Milestones.for_recipe(recipe, main=dist_info.main, best=best, logger=logger)
    model.train()
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.steps, recipe.warmup, recipe.lr)
        noisy, sigma, clean = (part.to(dist_info.device) for part in next(stream))
        loss = loss_of(model(noisy, sigma), clean)
        optimizer_step(model, optimizer, loss, dist_info, max_norm=0.5, average=average)
        step += 1
        if step % recipe.log_every == 0:
            logger.log(
                step,
                {
                    f"loss/{recipe.loss}": float(loss.detach()),
                    "lr": optimizer.param_groups[0]["lr"],
                },
            )
        out_of_time = out_of_time_everywhere(started, recipe.max_minutes, dist_info)
        milestones.after_step(
            step,
            step if out_of_time else recipe.steps,
            validate=lambda: validate(shipped, held_out, recipe.seed + 99),
            score="val/psnr",
            export=shipped.save_pretrained,
            state=lambda: training_state(model, optimizer, recipe, average),
        )
        if out_of_time:
            break
    return out / "best"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the noise expert.")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any recipe key")
    args = parser.parse_args(argv)
    overrides = {"out": args.out, "steps": args.steps}
    train(load_recipe(DenoiserRecipe, args.recipe, {**overrides, **parse_settings(args.set)}))


if __name__ == "__main__":
    main()
