"""Train the conditioned all-in-one restorer (``vlir train restorer``).

BSD400 native-resolution crops, degraded on the fly by every op of the engine
and their mixtures; each sample gets a request (blind, exact, paraphrase,
partial, strength; sometimes a semantic caption) and the target that request
implies, rebuilt exactly from the DegradationRecord. Perception (frozen) gives
the degradation and content tokens; the text tower (frozen) encodes prompts.
Loss: L1 plus an L1 on the Fourier spectrum. Resumable; torchrun-ready.
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

from vlir.data import CleanImages, DegradedSampler, load_captions
from vlir.data.requests import low_quality_caption, requests_for
from vlir.degradations import DegradationPipeline, RestorationPrompt
from vlir.modeling import weights_fingerprint
from vlir.perception import load_perception
from vlir.restoration import RestorerConfig, RestorerModel, make_conditioning, semantic_tower
from vlir.text import CachedTextEncoder, load_text_encoder
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


@dataclass
class RestorerRecipe(Recipe):
    out: str = "runs/restorer"
    perception: str = "perception"
    crop: int = 64
    frequency_weight: float = 0.05
    p_clean: float = 0.05
    p_reference: float = 0.15
    p_semantic: float = 0.3
    p_lq_caption: float = 0.0
    """Share of semantic prompts written about the damaged photo ("a noisy photo of ...")."""
    op_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    """Relative chance of drawing each op for training (1 where unnamed), e.g. {noise: 3}
    to dwell on what a benchmark finds weakest; validation always draws them alike."""
    workers: int = 0
    """Processes that synthesise batches (0: the training process itself). One core
    makes a batch of 32 128x128 crops in ~100 ms, longer than an H100 step: give
    the degradations the spare cores."""
    amp: bool = False
    """bfloat16 autocast for the networks on CUDA (losses stay float32)."""
    max_minutes: float | None = None
    """Checkpoint and stop after this long, to resume later (time-limited machines)."""


def frequency_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between 2-D spectra: penalises lost fine detail that plain L1 under-weights."""
    a = torch.fft.rfft2(output.float(), norm="ortho")
    b = torch.fft.rfft2(target.float(), norm="ortho")
    return (a - b).abs().mean()


def reference_crops(clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Another view of the same subject: the clean crop shifted and flipped."""
    shift = (int(rng.integers(-8, 9)), int(rng.integers(-8, 9)))
    return torch.roll(clean, shifts=shift, dims=(2, 3)).flip(3)


@dataclass
class TrainingBatch:
    degraded: torch.Tensor
    """[B, 3, H, W] the network's input."""
    target: torch.Tensor
    """[B, 3, H, W] what the request asks for (the partial target of the record)."""
    prompts: list[str]
    semantics: list[str | None]
    reference: torch.Tensor | None
    """[B, 3, H, W] another view of each subject, for some batches only."""

    def pin_memory(self) -> TrainingBatch:
        """Called by the DataLoader on CUDA machines, so host-to-GPU copies overlap."""
        return dataclasses.replace(
            self,
            degraded=self.degraded.pin_memory(),
            target=self.target.pin_memory(),
            reference=None if self.reference is None else self.reference.pin_memory(),
        )


class TrainingBatches(BatchStream):
    """(degraded, request, target) batches: the requests and targets of every kind the
    recipe mixes."""

    def __init__(
        self, sampler: DegradedSampler, recipe: RestorerRecipe, rank: int, start_step: int
    ) -> None:
        super().__init__(recipe.seed, rank, start_step)
        self.sampler, self.recipe = sampler, recipe

    def draw(self, rng: np.random.Generator) -> TrainingBatch:
        recipe = self.recipe
        batch = self.sampler.sample(rng, recipe.batch)
        requests, targets = requests_for(
            batch, rng, p_semantic=recipe.p_semantic, p_lq_caption=recipe.p_lq_caption
        )
        reference = None
        if rng.random() < recipe.p_reference:
            reference = reference_crops(batch.clean, rng)
        return TrainingBatch(
            degraded=batch.degraded,
            target=torch.from_numpy(targets).permute(0, 3, 1, 2).contiguous(),
            prompts=[r.text for r in requests],
            semantics=[r.semantic for r in requests],
            reference=reference,
        )


class Encoders:
    """Frozen perception and text towers, as the restorer sees them."""

    def __init__(
        self,
        perception: str,
        text: str,
        device: torch.device,
        *,
        align_semantic: bool = False,
        fingerprint: str | None = None,
    ) -> None:
        self.perception = load_perception(perception, fingerprint).to(device).eval()
        self.fingerprint = weights_fingerprint(self.perception)
        """What a model trained on these towers records (``perception_fingerprint``)."""
        tower = load_text_encoder(text).to(device).eval()
        self.text = CachedTextEncoder(tower)
        self.semantic = CachedTextEncoder(semantic_tower(self.perception, tower, align_semantic))
        self.device = device

    @classmethod
    def of(cls, config: RestorerConfig, device: torch.device) -> Encoders:
        """The towers a restorer with ``config`` was trained with."""
        return cls(
            config.perception,
            config.text_encoder,
            device,
            align_semantic=config.align_semantic,
            fingerprint=config.perception_fingerprint,
        )

    @torch.no_grad()
    def conditioning(
        self,
        degraded: torch.Tensor,
        prompts: list[str],
        semantics: list[str | None],
        reference: torch.Tensor | None = None,
    ):  # -> Conditioning
        perceived = self.perception(degraded)
        prompt = self.text(prompts)
        semantic, has = None, None
        if any(s is not None for s in semantics):
            semantic = self.semantic([s or "" for s in semantics])
            has = torch.tensor([s is not None for s in semantics], device=self.device)
        return make_conditioning(perceived, prompt, semantic, has, reference)


@torch.no_grad()
def validate(
    model: RestorerModel,
    encoders: Encoders,
    sampler: DegradedSampler,
    seed: int,
    batches: int = 4,
    *,
    semantic: bool = False,
) -> dict[str, float]:
    """Blind-prompt PSNR on held-out BSD400 crops with fixed degradations; ``semantic``:
    each with a semantic prompt written about the damaged photo ("a noisy photo of ...")."""
    training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    caption_rng = np.random.default_rng(seed + 1)  # the crops stay those of the blind run
    scores, identity = [], []
    for _ in range(batches):
        batch = sampler.sample(rng, 16)
        degraded = batch.degraded.to(encoders.device)
        clean = batch.clean.to(encoders.device)
        prompts = [RestorationPrompt.blind_prompt().format()] * len(batch.records)
        semantics: list[str | None] = [None] * len(prompts)
        if semantic:
            semantics = [
                low_quality_caption(caption, record.names, caption_rng)
                for caption, record in zip(batch.captions, batch.records, strict=True)
            ]
        condition = encoders.conditioning(degraded, prompts, semantics)
        output = model(degraded, condition).clamp(0, 1)
        mse = ((output - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        scores.extend((-10 * torch.log10(mse)).tolist())
        mse_in = ((degraded.clamp(0, 1) - clean) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        identity.extend((-10 * torch.log10(mse_in)).tolist())
    model.train(training)
    return {"val/psnr_blind": float(np.mean(scores)), "val/psnr_input": float(np.mean(identity))}


def training_sampler(
    recipe: RestorerRecipe, images: CleanImages, train_ids: list[int]
) -> DegradedSampler:
    """The training crops, degraded with the recipe's op weights."""
    pipeline = DegradationPipeline(max_ops=recipe.max_ops, weights=recipe.op_weights)
    crop = (recipe.crop, recipe.crop)
    return DegradedSampler(
        images, pipeline, p_clean=recipe.p_clean, p_grey=recipe.p_grey, subset=train_ids, crop=crop
    )


def holdout_sampler(recipe: RestorerRecipe, images: CleanImages | None = None) -> DegradedSampler:
    """The held-out BSD400 crops validation degrades (never trained on)."""
    images = images or CleanImages(recipe.data, None, load_captions(recipe.captions))
    _, holdout = split_holdout(len(images), recipe.holdout)
    pipeline = DegradationPipeline(max_ops=recipe.max_ops)
    crop = (recipe.crop, recipe.crop)
    return DegradedSampler(images, pipeline, p_clean=0.0, subset=holdout, crop=crop)


def evaluate(checkpoint: str, recipe: RestorerRecipe, batches: int = 8) -> dict[str, float]:
    """A checkpoint on the held-out crops: blind PSNR, and with a semantic prompt."""
    model = RestorerModel.from_pretrained(checkpoint)
    encoders = Encoders.of(model.config, torch.device("cpu"))
    sampler = holdout_sampler(recipe)
    seed = recipe.seed + 99
    blind = validate(model, encoders, sampler, seed, batches)
    semantic = validate(model, encoders, sampler, seed, batches, semantic=True)
    return {**blind, "val/psnr_semantic": semantic["val/psnr_blind"]}


def train(recipe: RestorerRecipe) -> Path:
    dist_info = setup_distributed()
    torch.manual_seed(recipe.seed + dist_info.rank)
    out = Path(recipe.out)
    config = dataclasses.replace(
        RestorerConfig(perception=recipe.perception),
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.model.items()},
    )
    model = RestorerModel(config).to(dist_info.device)
    start = None
    if recipe.init and not (out / "checkpoint.pt").exists():
        start = RestorerModel.from_pretrained(recipe.init)
        dropped = load_matching(model, start.state_dict())
        if dropped and dist_info.main:
            print(f"init {recipe.init}: left out {len(dropped)} tensors of switched-off parts")
    encoders = Encoders.of(config, dist_info.device)
    starting_tokens = start.config.perception_fingerprint if start is not None else None
    if starting_tokens not in (None, encoders.fingerprint) and dist_info.main:
        # allowed (re-conditioning on a new perception), but never by accident
        print(
            f"init {recipe.init} was trained on the tokens of perception "
            f"{start.config.perception!r}; this run conditions on {recipe.perception!r}, "
            f"whose tokens differ (--set perception={start.config.perception} keeps them)"
        )
    model.config = dataclasses.replace(config, perception_fingerprint=encoders.fingerprint)
    images = CleanImages(recipe.data, None, load_captions(recipe.captions))
    train_ids, _ = split_holdout(len(images), recipe.holdout)
    sampler = training_sampler(recipe, images, train_ids)
    val_sampler = holdout_sampler(recipe, images)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=(0.9, 0.9), weight_decay=recipe.weight_decay
    )
    step, best, checkpoint = resume(out, model, optimizer)
    broadcast_weights(model, dist_info)
    average = resume_average(model, recipe.ema, checkpoint)
    shipped = average.model if average is not None else model  # validated and exported
    logger = Logger(out, dist_info.main)
    stream = batch_stream(TrainingBatches(sampler, recipe, dist_info.rank, step), recipe.workers)
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=recipe.amp and dist_info.device.type == "cuda"
    )
    started, data_seconds = time.time(), 0.0
    milestones = Milestones.for_recipe(recipe, main=dist_info.main, best=best, logger=logger)
    model.train()
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.steps, recipe.warmup, recipe.lr)
        waited = time.perf_counter()
        batch = next(stream)
        data_seconds += time.perf_counter() - waited
        degraded = batch.degraded.to(dist_info.device, non_blocking=True)
        targets = batch.target.to(dist_info.device, non_blocking=True)
        reference = None
        if batch.reference is not None:
            reference = batch.reference.to(dist_info.device, non_blocking=True)
        with autocast:
            condition = encoders.conditioning(degraded, batch.prompts, batch.semantics, reference)
            output = model(degraded, condition).float()
        l1 = F.l1_loss(output, targets)
        spectral = frequency_l1(output, targets)
        loss = l1 + recipe.frequency_weight * spectral
        optimizer_step(model, optimizer, loss, dist_info, max_norm=0.5, average=average)
        step += 1
        if step % recipe.log_every == 0:
            logger.log(
                step,
                {
                    "loss/total": float(loss.detach()),
                    "loss/l1": float(l1.detach()),
                    "loss/frequency": float(spectral.detach()),
                    "lr": optimizer.param_groups[0]["lr"],
                    "time/data_ms": 1000 * data_seconds / recipe.log_every,
                },
            )
            data_seconds = 0.0
        out_of_time = out_of_time_everywhere(started, recipe.max_minutes, dist_info)
        milestones.after_step(
            step,
            step if out_of_time else recipe.steps,
            validate=lambda: validate(shipped, encoders, val_sampler, recipe.seed + 99),
            score="val/psnr_blind",
            export=shipped.save_pretrained,
            state=lambda: training_state(model, optimizer, recipe, average),
        )
        if out_of_time:
            break
    return out / "best"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the conditioned restorer.")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--perception", default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any recipe key")
    args = parser.parse_args(argv)
    overrides = {
        "out": args.out,
        "steps": args.steps,
        "batch": args.batch,
        "perception": args.perception,
    }
    recipe = load_recipe(RestorerRecipe, args.recipe, {**overrides, **parse_settings(args.set)})
    train(recipe)


if __name__ == "__main__":
    main()
