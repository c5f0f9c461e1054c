"""Train VLMIR's perception stage (``vlir train perception``).

Per step, on BSD400 with on-the-fly degradations:
- CLIP-style contrastive loss between the degradation embedding and the text
  embedding of the record's degradation wording;
- contrastive loss between the clean-content embedding of the *degraded* image
  and the embedding of the *clean* image's caption;
- VLMIR's cosine alignment of low-quality-caption and high-quality-caption text
  embeddings, trained through LoRA on the text tower;
- the predictor's classification (which ops) and regression (how strong) losses.

Resumable (``OUT/checkpoint.pt``); alone or under
``torchrun --nproc_per_node 2 -m vlir.training.perception --recipe ...``; with
``workers`` the degradations are synthesised in other processes (on a GPU the
synthesis, not the small network, bounds a step).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vlir.data import CleanImages, DegradedSampler, load_captions
from vlir.data.degraded import DegradedBatch
from vlir.data.requests import low_quality_caption
from vlir.degradations import DegradationPipeline, RestorationPrompt, paraphrase
from vlir.errors import VlirError
from vlir.perception import losses
from vlir.perception.calibrate import calibrate_checkpoint, f1
from vlir.perception.labels import combination_text, record_labels
from vlir.perception.model import PerceptionConfig, PerceptionModel
from vlir.text import CachedTextEncoder, TextEncoder, load_text_encoder
from vlir.training.common import (
    BatchStream,
    Logger,
    Milestones,
    Recipe,
    average_gradients,
    batch_stream,
    broadcast_weights,
    cosine_lr,
    load_recipe,
    out_of_time_everywhere,
    parse_settings,
    resume,
    setup_distributed,
    split_holdout,
)
from vlir.training.ema import WeightAverage, resume_average


@dataclass
class PerceptionRecipe(Recipe):
    out: str = "runs/perception"
    batch: int = 32
    weight_decay: float = 0.01
    lora_lr: float = 2e-4
    lora_every: int = 2
    lora_batch: int = 8
    paraphrase_prob: float = 0.25
    w_deg_contrastive: float = 1.0
    w_content_contrastive: float = 1.0
    w_alignment: float = 1.0
    w_classification: float = 1.0
    w_regression: float = 2.0
    degradation_view: str = "native"
    """What the degradation side learns from: "native" crops of the training size at the
    photo's own pixels, as ``analyze`` reads a photo (tiles at its own resolution), while
    the content side learns from the whole photo resized, as ``analyze`` reads content.
    "whole" trains both on the resized whole photo (the first shipped weights): cheaper, but
    resizing removes a JPEG photo's own blocks and grain, so native tiles of clean photos
    then read as compressed."""
    heads_only: bool = False
    """Train only the predictor's presence and strength heads on frozen features: every
    embedding and token the restorers were trained on stays bit-identical, so a new
    analysis (e.g. with grey photos added) ships without retraining them."""
    crop_context: int = 0
    """Native crops are degraded within a region up to this many pixels larger (see
    ``DegradedSampler.crop_context``), so upsampling is not always by an exact factor."""
    p_8bit: float = 0.0
    """Share of degraded training crops stored as an 8-bit file would hold them (see
    ``DegradedSampler.p_8bit``)."""
    op_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    """How often each op is drawn for training, relative to 1 (an op not named): more
    examples of the ops perception misses most. Validation draws every op evenly."""
    calibrate: bool = True
    """At the end, set ``OUT/best``'s per-op decision thresholds on the held-out photos
    (``vlir.perception.calibrate``), so the exported model is ready to analyse."""
    workers: int = 0
    """Processes that synthesise batches ahead (0: the training process itself, between
    steps). Each draws its own random stream, so a run with workers sees other batches
    than one without."""
    max_minutes: float | None = None
    """Checkpoint and stop after this long, to resume later (time-limited machines)."""


def degradation_texts(records: list, rng: np.random.Generator, p_paraphrase: float) -> list[str]:
    texts = []
    for record in records:
        if record.steps and rng.random() < p_paraphrase:
            texts.append(paraphrase(RestorationPrompt.removing(record.names), rng))
        else:
            texts.append(combination_text(record.names))
    return texts


@dataclass
class PerceptionBatch:
    """One step's training material."""

    degraded: DegradedBatch
    """What the degradation side learns from (native crops, as analysis tiles)."""
    content: DegradedBatch
    """What the content side learns from (the whole photo resized); ``degraded`` itself
    when both views are the same or only the heads train."""
    degradation_texts: list[str]
    """The wording of each of ``degraded``'s records (sometimes paraphrased)."""
    low_quality_captions: list[str]
    """The first ``lora_batch`` of ``content``'s captions rewritten about the damage."""


class PerceptionBatches(BatchStream):
    def __init__(
        self,
        degraded: DegradedSampler,
        content: DegradedSampler,
        recipe: PerceptionRecipe,
        rank: int,
        start_step: int,
    ) -> None:
        super().__init__(recipe.seed, rank, start_step)
        self.degraded, self.content, self.recipe = degraded, content, recipe

    def draw(self, rng: np.random.Generator) -> PerceptionBatch:
        recipe = self.recipe
        degraded = self.degraded.sample(rng, recipe.batch)
        texts = degradation_texts(degraded.records, rng, recipe.paraphrase_prob)
        content = degraded
        if self.content is not self.degraded and not recipe.heads_only:
            content = self.content.sample(rng, recipe.batch)
        count = min(recipe.lora_batch, len(content.captions))
        low_quality = [
            low_quality_caption(content.captions[i], content.records[i].names, rng)
            for i in range(count)
        ]
        return PerceptionBatch(degraded, content, texts, low_quality)


@torch.no_grad()
def validate(
    model: PerceptionModel, sampler: DegradedSampler, seed: int, batches: int = 8
) -> dict[str, float]:
    """Per-op F1 (macro) and noise-sigma MAE on held-out BSD400 images, fixed seed."""
    training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    ops = model.config.ops
    true, pred, sigma_errors = [], [], []
    noise = ops.index("noise")
    for _ in range(batches):
        batch = sampler.sample(rng, 32)
        out = model(batch.degraded)
        labels = [record_labels(r, ops) for r in batch.records]
        presence = np.stack([p for p, _ in labels])
        strength = np.stack([s for _, s in labels])
        true.append(presence)
        pred.append((torch.sigmoid(out.presence_logits) > 0.5).numpy())
        mask = presence[:, noise] > 0
        if mask.any():
            diff = (out.strength[:, noise].numpy() - strength[:, noise])[mask] * 75.0
            sigma_errors.extend(np.abs(diff).tolist())
    t, p = np.concatenate(true), np.concatenate(pred)
    per_op = np.nan_to_num(f1(t, p.astype(t.dtype)), nan=1.0)  # an op never seen nor said: 1
    model.train(training)
    return {
        "val/f1_macro": float(np.mean(per_op)),
        "val/noise_sigma_mae": float(np.mean(sigma_errors)) if sigma_errors else 0.0,
    }


def validate_run(
    model: PerceptionModel, average: WeightAverage | None, sampler: DegradedSampler, seed: int
) -> dict[str, float]:
    """Validation of the weights a run exports; with an average, the last step's weights
    too (``val/live_...``), so a log shows what the average is worth."""
    if average is None:
        return validate(model, sampler, seed)
    live = {f"val/live_{k[4:]}": v for k, v in validate(model, sampler, seed).items()}
    return {**validate(average.model, sampler, seed), **live}


class _Trainable(nn.Module):
    """Perception model + text LoRA as one module, so DDP syncs both."""

    def __init__(self, model: PerceptionModel, text: TextEncoder) -> None:
        super().__init__()
        self.model = model
        self.text = text


def init_from(model: PerceptionModel, start: PerceptionModel) -> None:
    """Start ``model`` from ``start``'s weights. Parts ``start`` lacks keep their neutral
    initialisation: the signal-statistics branch of a model trained without it, or the
    statistics appended since ``start`` was trained (their columns of the zero-initialised
    input layer stay zero, their standardisation starts at identity), so the grown model
    first says exactly what ``start`` said. The image heads of ``start`` are left behind:
    they were fitted to that tower's logits, so a tower trained further needs its own."""
    optional = ("signal_norm.", "signal_in.")
    heads = ("image_head.", "grey_image_head.")
    state = {k: v for k, v in start.state_dict().items() if not k.startswith(heads)}
    own = model.state_dict()
    for key, value in list(state.items()):
        if not key.startswith(optional) or key not in own or own[key].shape == value.shape:
            continue
        grown, old = own[key].clone(), value.shape[-1]
        if value.dim() != grown.dim() or value.shape[-1] > grown.shape[-1]:
            raise VlirError(
                f"init: that checkpoint reads more signal statistics than this recipe ({key})"
            )
        grown[..., :old] = value
        state[key] = grown
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise VlirError(
            f"init: that checkpoint does not fit this recipe's model ({error})"
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith(optional)]
    if missing or result.unexpected_keys:
        raise VlirError(
            "init: that checkpoint does not fit this recipe's model "
            f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})"
        )


def train(recipe: PerceptionRecipe) -> Path:
    dist_info = setup_distributed()
    torch.manual_seed(recipe.seed + dist_info.rank)
    out = Path(recipe.out)
    config = dataclasses.replace(
        PerceptionConfig(),
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.model.items()},
    )
    model = PerceptionModel(config)
    text = load_text_encoder(config.text_encoder)
    text.add_lora(config.lora_rank, config.lora_alpha)
    if recipe.init and not (out / "checkpoint.pt").exists():
        start = PerceptionModel.from_pretrained(recipe.init)
        init_from(model, start)
        text.backbone.load_state_dict(start.text_lora_state(), strict=False)
    if recipe.heads_only:
        model.requires_grad_(False)
        text.requires_grad_(False)
        for head in (model.presence, model.strength):
            head.requires_grad_(True)
    trainable = _Trainable(model, text).to(dist_info.device)
    captions = load_captions(recipe.captions)
    images = CleanImages(recipe.data, config.train_size, captions)
    train_ids, holdout = split_holdout(len(images), recipe.holdout)
    pipeline = DegradationPipeline(max_ops=recipe.max_ops, weights=recipe.op_weights)
    even = DegradationPipeline(max_ops=recipe.max_ops)
    sampler = DegradedSampler(
        images, pipeline, p_clean=recipe.p_clean, p_grey=recipe.p_grey, subset=train_ids
    )
    deg_sampler, val_sampler = (
        sampler,
        DegradedSampler(images, even, p_clean=recipe.p_clean, subset=holdout),
    )
    if recipe.degradation_view == "native":
        native = CleanImages(recipe.data, None, captions)
        crop = tuple(config.train_size)
        deg_sampler = DegradedSampler(
            native,
            pipeline,
            p_clean=recipe.p_clean,
            p_grey=recipe.p_grey,
            subset=train_ids,
            crop=crop,
            crop_context=recipe.crop_context,
            p_8bit=recipe.p_8bit,
        )
        val_sampler = DegradedSampler(
            native, even, p_clean=recipe.p_clean, subset=holdout, crop=crop
        )
    elif recipe.degradation_view != "whole":
        raise VlirError(
            f"degradation_view must be 'native' or 'whole', not {recipe.degradation_view!r}"
        )
    model_params = [p for p in model.parameters() if p.requires_grad]
    lora_params = [p for p in text.parameters() if p.requires_grad]
    groups = [{"params": model_params, "lr": recipe.lr, "weight_decay": recipe.weight_decay}]
    if lora_params:
        groups.append({"params": lora_params, "lr": recipe.lora_lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    step, best, state = resume(out, model, optimizer)
    if state is not None:
        text.backbone.load_state_dict(state["lora"], strict=False)
    broadcast_weights(trainable, dist_info)
    average = resume_average(model, recipe.ema, state)
    shipped = average.model if average is not None else model  # validated and exported
    texts = CachedTextEncoder(text, capacity=10_000, base=True)  # frozen-base embeddings
    logger = Logger(out, dist_info.main)
    stream = batch_stream(
        PerceptionBatches(deg_sampler, sampler, recipe, dist_info.rank, step), recipe.workers
    )
    milestones = Milestones.for_recipe(recipe, main=dist_info.main, best=best, logger=logger)
    started = time.time()
    l_align = torch.zeros(())  # logged as its latest value: it is computed every few steps
    # heads only: the frozen rest stays in eval mode, so the signal statistics' running
    # normalisation cannot drift and move the tokens the restorers read
    model.train(not recipe.heads_only)
    while step < recipe.steps:
        for index, group in enumerate(optimizer.param_groups):
            base = recipe.lr if index == 0 else recipe.lora_lr
            group["lr"] = cosine_lr(step, recipe.steps, recipe.warmup, base)
        drawn = next(stream)
        deg_batch = drawn.degraded  # what analysis reads for damage
        ops = config.ops
        labels = [record_labels(r, ops) for r in deg_batch.records]
        presence = torch.from_numpy(np.stack([p for p, _ in labels])).to(dist_info.device)
        strength = torch.from_numpy(np.stack([s for _, s in labels])).to(dist_info.device)
        out_p = model(deg_batch.degraded.to(dist_info.device))
        l_cls, l_reg = losses.predictor(out_p.presence_logits, out_p.strength, presence, strength)
        total = recipe.w_classification * l_cls + recipe.w_regression * l_reg
        l_deg = l_content = torch.zeros(())
        batch = drawn.content
        if not recipe.heads_only:
            deg_texts = drawn.degradation_texts
            deg_text_emb = texts(deg_texts).pooled
            scale = model.logit_scale
            l_deg = losses.contrastive(out_p.deg_embedding, deg_text_emb, scale, deg_texts)
            out_c = out_p
            if batch is not deg_batch:  # content is read from the whole photo, resized
                out_c = model(batch.degraded.to(dist_info.device))
            caption_emb = texts(batch.captions).pooled
            l_content = losses.contrastive(
                out_c.content_embedding, caption_emb, scale, batch.captions
            )
            total = (
                total + recipe.w_deg_contrastive * l_deg + recipe.w_content_contrastive * l_content
            )
        if not recipe.heads_only and step % recipe.lora_every == 0:
            lq = drawn.low_quality_captions
            lq_emb = text(lq).pooled
            l_align = losses.caption_alignment(lq_emb, caption_emb[: len(lq)])
            total = total + recipe.w_alignment * l_align
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if dist_info.world > 1:
            average_gradients(trainable, dist_info.world)
        optimizer.step()
        if average is not None:
            average.update(model)
        step += 1
        if step % recipe.log_every == 0:
            logger.log(
                step,
                {
                    "loss/total": float(total.detach()),
                    "loss/deg": float(l_deg.detach()),
                    "loss/content": float(l_content.detach()),
                    "loss/align": float(l_align.detach()),
                    "loss/cls": float(l_cls.detach()),
                    "loss/reg": float(l_reg.detach()),
                    "lr": optimizer.param_groups[0]["lr"],
                },
            )
        out_of_time = out_of_time_everywhere(started, recipe.max_minutes, dist_info)
        milestones.after_step(
            step,
            step if out_of_time else recipe.steps,
            validate=lambda: validate_run(model, average, val_sampler, recipe.seed + 99),
            score="val/f1_macro",
            export=lambda directory: export(shipped, text, directory),
            state=lambda: {
                "model": model.state_dict(),
                "lora": text.lora_state_dict(),
                "optimizer": optimizer.state_dict(),
                "recipe": dataclasses.asdict(recipe),
                **({"ema": average.state_dict()} if average is not None else {}),
            },
        )
        if out_of_time:
            break
    # a slice stopped by max_minutes resumes later: the finished run is calibrated
    finished = step >= recipe.steps
    if recipe.calibrate and finished and dist_info.main and (out / "best").is_dir():
        calibrate_checkpoint(out / "best", recipe.data, recipe.holdout, recipe.seed)
    return out / "best"


def export(model: PerceptionModel, text: TextEncoder, directory: Path) -> None:
    model.store_text_lora(text.lora_state_dict())
    model.save_pretrained(directory)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the perception stage.")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any recipe key")
    args = parser.parse_args(argv)
    overrides = {"out": args.out, "steps": args.steps, "batch": args.batch}
    recipe = load_recipe(PerceptionRecipe, args.recipe, {**overrides, **parse_settings(args.set)})
    train(recipe)


if __name__ == "__main__":
    main()
