"""Train the refiner's adaptor on the frozen prior (``vlir train refiner``).

With ``restorer: null`` the adaptor learns to restore the degraded input itself
(VLMIR's stage 2 and SPIRE in ``configs/``): the cache then holds the degraded
input where the restored one would be, and only perception runs to build it.

Two phases. First a *cache*: BSD400 crops degraded on the fly, each with a
request and its (partial) target as the restorer is trained, restored by the
shipped restorer, stored with perception's tokens (``OUT/cache-*.npz``; built
once, reused on resume): the restorer is frozen, so restoring every batch afresh
would only add its and perception's forward passes to every step. Then the adaptor trains on
random sub-crops of the cache along the bridge of ``flow.py`` (loss on the clean
estimate; half the samples at ``sigma0``, where sampling starts); the prior stays
frozen, gradients only pass through it. Resumable.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vlir.conditioning import Conditioning
from vlir.data import CleanImages, DegradedSampler, load_captions
from vlir.data.requests import DEFAULT_MIX, requests_for
from vlir.degradations import DegradationPipeline
from vlir.diffusion import PriorDenoiser, Refiner, RefinerAdaptor, RefinerConfig
from vlir.diffusion.flow import bridge_pair, to_model_space
from vlir.errors import VlirError
from vlir.restoration import RestorerModel
from vlir.text import CachedTextEncoder
from vlir.training.common import (
    Logger,
    Milestones,
    Recipe,
    cosine_lr,
    load_recipe,
    parse_settings,
    resume,
    split_holdout,
)
from vlir.training.restorer import Encoders


@dataclass
class RefinerRecipe(Recipe):
    out: str = "runs/refiner"
    restorer: str | None = "restorer"
    """The frozen restorer whose outputs the adaptor refines; None: restore the input."""
    perception: str = "perception"
    text_encoder: str = "minilm"
    """The towers used without a restorer (with one, the restorer's own)."""
    prior: str = "prior"
    cache_crops: int = 3200
    """Restored crops in the training cache (plus ``holdout`` x 4 for validation)."""
    cache_size: int = 128
    cache: str | None = None
    """Folder of the restored-crop caches (default: ``out``); runs may share one."""
    crop: int = 64
    lr: float = 3e-4
    p_semantic: float = 0.3
    p_lq_caption: float = 0.0
    """Share of semantic prompts written about the damaged photo ("a noisy photo of ...")."""
    request_mix: list[float] | None = None
    """Weights of the request kinds (blind, exact, paraphrase, partial, strength);
    [1, 0, 0, 0, 0]: always blind, the target always clean (a system without prompts)."""
    p_clean: float = 0.05
    val_steps: int = 4
    p_start: float = 0.5
    """Share of samples at sigma0 exactly: where sampling starts, and where the adaptor
    must beat the restorer (below sigma0 the bridge mixes the target in and the task
    is easier; uniform sigma alone left the start worse than the restorer's output)."""
    loss: str = "image"
    """"image": MSE of the clean estimate the velocity implies (``x - sigma * v``), which
    weighs every noise level alike in pixels; "velocity": plain flow matching, whose
    1/sigma^2 weight spends the model on the last, easy steps (measured, non-residual,
    sigma0 0.3: 3000 steps of it left one-step refinement 1.2 dB below the restorer)."""


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] float -> [B, H, W, 3] uint8 (how images reach vlir anyway)."""
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def build_cache(
    recipe: RefinerRecipe, subset: list[int], count: int, seed: int, path: Path
) -> Path:
    """Restore ``count`` degraded crops of the ``subset`` images with the frozen restorer."""
    if path.exists():
        return path
    cpu = torch.device("cpu")
    restorer = None
    if recipe.restorer is not None:
        restorer = RestorerModel.from_pretrained(recipe.restorer).eval()
        encoders = Encoders.of(restorer.config, cpu)
    else:
        encoders = Encoders(recipe.perception, recipe.text_encoder, cpu)
    images = CleanImages(recipe.data, None, load_captions(recipe.captions))
    size = (recipe.cache_size, recipe.cache_size)
    sampler = DegradedSampler(
        images,
        DegradationPipeline(max_ops=recipe.max_ops),
        p_clean=recipe.p_clean,
        p_grey=recipe.p_grey,
        subset=subset,
        crop=size,
    )
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {k: [] for k in ("degraded", "restored", "target", "deg", "content")}
    texts: dict[str, list] = {"prompt": [], "semantic": [], "caption": []}
    while len(texts["prompt"]) < count:
        batch = sampler.sample(rng, min(16, count - len(texts["prompt"])))
        mix = DEFAULT_MIX if recipe.request_mix is None else tuple(recipe.request_mix)
        requests, targets = requests_for(
            batch, rng, p_semantic=recipe.p_semantic, p_lq_caption=recipe.p_lq_caption, mix=mix
        )
        perceived = encoders.perception(batch.degraded)
        semantics = [r.semantic for r in requests]
        restored = batch.degraded
        if restorer is not None:
            conditioning = encoders.conditioning(
                batch.degraded, [r.text for r in requests], semantics
            )
            restored = restorer(batch.degraded, conditioning)
        columns["degraded"].append(_to_uint8(batch.degraded))
        columns["restored"].append(_to_uint8(restored))
        columns["target"].append(_to_uint8(torch.from_numpy(targets).permute(0, 3, 1, 2)))
        columns["deg"].append(perceived.deg_tokens.half().numpy())
        columns["content"].append(perceived.content_tokens.half().numpy())
        texts["prompt"] += [r.text for r in requests]
        texts["semantic"] += [s or "" for s in semantics]
        texts["caption"] += batch.captions
        print(f"cache {path.name}: {len(texts['prompt'])}/{count}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        **{k: np.concatenate(v) for k, v in columns.items()},
        **{k: np.array(v) for k, v in texts.items()},
    )
    tmp.replace(path)
    return path


def build_caches(recipe: RefinerRecipe) -> tuple[Path, Path]:
    """The training cache (BSD400 minus the held-out images) and the validation cache."""
    count = len(CleanImages(recipe.data, None, {}).names)
    train_ids, holdout = split_holdout(count, recipe.holdout)
    out = Path(recipe.cache or recipe.out)
    return (
        build_cache(recipe, train_ids, recipe.cache_crops, recipe.seed, out / "cache-train.npz"),
        build_cache(recipe, holdout, 4 * recipe.holdout, recipe.seed + 99, out / "cache-val.npz"),
    )


class CachedCrops:
    """Random sub-crops of the cache, with the tokens and texts that go with them."""

    def __init__(self, path: Path) -> None:
        data = np.load(path)
        self.arrays = {k: data[k] for k in ("degraded", "restored", "target", "deg", "content")}
        self.prompts = [str(t) for t in data["prompt"]]
        self.semantics = [str(t) or None for t in data["semantic"]]

    def __len__(self) -> int:
        return len(self.prompts)

    def batch(self, rng: np.random.Generator, size: int, crop: int, indices=None) -> dict:
        """degraded/restored/target [B, 3, crop, crop] in [0, 1] (one random window and flip
        per sample), deg/content tokens [B, K, D], prompts and semantics (texts)."""
        indices = rng.integers(len(self), size=size) if indices is None else np.asarray(indices)
        full = self.arrays["target"].shape[1]
        images: dict[str, list[np.ndarray]] = {k: [] for k in ("degraded", "restored", "target")}
        for index in indices:
            y, x = (int(v) for v in rng.integers(0, full - crop + 1, size=2))
            flip = rng.random() < 0.5
            for key in ("degraded", "restored", "target"):
                patch = self.arrays[key][index, y : y + crop, x : x + crop]
                images[key].append(patch[:, ::-1] if flip else patch)
        batch = {
            key: torch.from_numpy(np.stack(v).astype(np.float32) / 255).permute(0, 3, 1, 2)
            for key, v in images.items()
        }
        batch["deg"] = torch.from_numpy(self.arrays["deg"][indices].astype(np.float32))
        batch["content"] = torch.from_numpy(self.arrays["content"][indices].astype(np.float32))
        batch["prompts"] = [self.prompts[i] for i in indices]
        batch["semantics"] = [self.semantics[i] for i in indices]
        return batch


def conditioning_of(
    batch: dict, text: CachedTextEncoder, semantic_text: CachedTextEncoder
) -> tuple[Conditioning, torch.Tensor, torch.Tensor]:
    """The adaptor's Conditioning and the prior's caption tokens (the semantic prompt)."""
    prompt = text(batch["prompts"])
    semantics = batch["semantics"]
    has = torch.tensor([s is not None for s in semantics], dtype=torch.float32)
    semantic = semantic_text([s or "" for s in semantics])
    semantic_mask = semantic.mask.float() * has[:, None]
    content = torch.cat([batch["content"], semantic.tokens], dim=1)
    content_mask = torch.cat([torch.ones(batch["content"].shape[:2]), semantic_mask], dim=1)
    conditioning = Conditioning(
        deg_tokens=batch["deg"],
        content_tokens=content,
        prompt_tokens=prompt.tokens,
        prompt_vector=prompt.pooled,
        content_mask=content_mask,
        prompt_mask=prompt.mask,
    )
    return conditioning, semantic.tokens, semantic_mask


def train(recipe: RefinerRecipe) -> Path:
    if recipe.loss not in ("image", "velocity"):
        raise VlirError(f"loss must be 'image' or 'velocity', got {recipe.loss!r}")
    if recipe.ema:
        raise VlirError("ema: the refiner's trainer keeps no weight average (set ema=0)")
    torch.manual_seed(recipe.seed)
    out = Path(recipe.out)
    train_path, val_path = build_caches(recipe)
    train_cache, val_cache = CachedCrops(train_path), CachedCrops(val_path)
    prior = PriorDenoiser.from_pretrained(recipe.prior).requires_grad_(False)
    prior_config = prior.config
    perception, text_encoder, fingerprint = recipe.perception, recipe.text_encoder, None
    if recipe.restorer is not None:
        restorer_config = RestorerModel.from_pretrained(recipe.restorer).config
        perception, text_encoder = restorer_config.perception, restorer_config.text_encoder
        fingerprint = restorer_config.perception_fingerprint
    known = {f.name for f in dataclasses.fields(RefinerConfig)}
    if set(recipe.model) - known:
        raise VlirError(f"unknown model key {sorted(set(recipe.model) - known)[0]!r}")
    config = RefinerAdaptor.config_from_dict(
        {
            "prior": recipe.prior,
            "widths": tuple(prior_config.widths),
            "blocks": prior_config.blocks,
            "time_dim": prior_config.time_dim,
            "restorer": recipe.restorer,
            "perception": perception,
            "text_encoder": text_encoder,
            **recipe.model,
        }
    )
    adaptor = RefinerAdaptor(config)
    adaptor.init_from_prior(prior)
    if recipe.init and not (out / "checkpoint.pt").exists():
        adaptor.load_state_dict(RefinerAdaptor.from_pretrained(recipe.init).state_dict())
    refiner = Refiner(adaptor, prior)
    encoders = Encoders(
        config.perception,
        config.text_encoder,
        torch.device("cpu"),
        align_semantic=config.align_semantic,
        fingerprint=fingerprint,
    )
    config = dataclasses.replace(config, perception_fingerprint=encoders.fingerprint)
    adaptor.config = config
    text, semantic_text = encoders.text, encoders.semantic
    optimizer = torch.optim.AdamW(adaptor.parameters(), lr=recipe.lr, betas=(0.9, 0.99))
    step, best, _ = resume(out, adaptor, optimizer)
    rng = np.random.default_rng([recipe.seed, step])
    logger = Logger(out, True)
    milestones = Milestones.for_recipe(recipe, main=True, best=best, logger=logger)
    val_batch = val_cache.batch(
        np.random.default_rng(recipe.seed), len(val_cache), recipe.crop, range(len(val_cache))
    )

    @torch.no_grad()
    def validate() -> dict[str, float]:
        adaptor.eval()
        conditioning, tokens, mask = conditioning_of(val_batch, text, semantic_text)
        noise = torch.randn(
            val_batch["target"].shape, generator=torch.Generator().manual_seed(recipe.seed)
        )
        refined = refiner(
            val_batch["restored"],
            val_batch["degraded"],
            conditioning,
            noise=noise,
            steps=recipe.val_steps,
            caption_tokens=tokens,
            caption_mask=mask,
        )
        adaptor.train()

        def psnr(image: torch.Tensor) -> float:
            mse = ((image - val_batch["target"]) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
            return float((-10 * torch.log10(mse)).mean())

        start = "restored" if config.restorer is not None else "input"
        return {"val/psnr_refined": psnr(refined), f"val/psnr_{start}": psnr(val_batch["restored"])}

    adaptor.train()
    sigma0 = config.sigma0
    while step < recipe.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.steps, recipe.warmup, recipe.lr)
        batch = train_cache.batch(rng, recipe.batch, recipe.crop)
        conditioning, tokens, mask = conditioning_of(batch, text, semantic_text)
        restored = to_model_space(batch["restored"])
        target = to_model_space(batch["target"])
        hint = refiner.hint_of(restored, to_model_space(batch["degraded"]))
        # (0, sigma0], never ~0 (the residual velocity divides by sigma); p_start at sigma0
        uniform = 1 - 0.99 * rng.random(recipe.batch)
        at_start = rng.random(recipe.batch) < recipe.p_start
        sigma = torch.from_numpy(sigma0 * np.where(at_start, 1.0, uniform)).float()
        noise = torch.from_numpy(rng.standard_normal(target.shape).astype(np.float32))
        x, velocity = bridge_pair(target, restored, sigma, sigma0, noise)
        predicted = refiner.velocity(x, sigma, hint, conditioning, tokens, mask)
        if recipe.loss == "image":
            s = sigma[:, None, None, None]
            loss = F.mse_loss(x - s * predicted, x - s * velocity) / sigma0**2
        else:
            loss = F.mse_loss(predicted, velocity)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(adaptor.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % recipe.log_every == 0:
            logger.log(
                step, {"loss/train": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"]}
            )
        milestones.after_step(
            step,
            recipe.steps,
            validate=validate,
            score="val/psnr_refined",
            export=adaptor.save_pretrained,
            state=lambda: {
                "model": adaptor.state_dict(),
                "optimizer": optimizer.state_dict(),
                "recipe": dataclasses.asdict(recipe),
            },
        )
    return out / "best"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the refiner's adaptor (prior frozen).")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any recipe key")
    parser.add_argument("--cache-only", action="store_true", help="build the cache and stop")
    args = parser.parse_args(argv)
    recipe = load_recipe(RefinerRecipe, args.recipe, parse_settings(args.set))
    if args.cache_only:
        build_caches(recipe)
    else:
        train(recipe)


if __name__ == "__main__":
    main()
