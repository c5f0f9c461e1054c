"""The diffusion refiner: flow, prior + adaptor, sampler, pipeline, training, SD backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from vlir.conditioning import Conditioning
from vlir.diffusion import PriorConfig, PriorDenoiser, Refiner, RefinerAdaptor, RefinerConfig
from vlir.diffusion.flow import bridge_pair, make_scheduler, prior_pair, start_from
from vlir.errors import VlirError

TINY_PRIOR = PriorConfig(widths=(8, 16), time_dim=16)


def conditioning(batch: int = 2) -> Conditioning:
    generator = torch.Generator().manual_seed(0)
    return Conditioning(
        deg_tokens=torch.randn(batch, 4, 384, generator=generator),
        content_tokens=torch.randn(batch, 6, 384, generator=generator),
        prompt_tokens=torch.randn(batch, 5, 384, generator=generator),
        prompt_vector=torch.randn(batch, 384, generator=generator),
    )


def tiny_refiner(folder: Path, *, perturb: bool = True) -> Path:
    """A random prior + adaptor saved as checkpoints; ``perturb`` wakes its zero heads."""
    prior = PriorDenoiser(TINY_PRIOR)
    prior.save_pretrained(folder / "prior")
    adaptor = RefinerAdaptor(
        RefinerConfig(prior=str(folder / "prior"), widths=(8, 16), time_dim=16)
    )
    adaptor.init_from_prior(prior)
    if perturb:
        for head in adaptor.to_gamma_beta:
            torch.nn.init.normal_(head.weight, std=0.05)
    return adaptor.save_pretrained(folder / "refiner")


def test_bridge_runs_from_the_noised_restoration_to_the_target() -> None:
    generator = torch.Generator().manual_seed(0)
    target, restored, noise = (torch.rand(2, 3, 8, 8, generator=generator) for _ in range(3))
    sigma0 = 0.4
    at_start, _ = bridge_pair(target, restored, torch.full((2,), sigma0), sigma0, noise)
    assert torch.allclose(at_start, start_from(restored, noise, sigma0), atol=1e-6)
    at_end, _ = bridge_pair(target, restored, torch.zeros(2), sigma0, noise)
    assert torch.allclose(at_end, target, atol=1e-6)
    # With nothing left to fix the bridge is the prior's own path.
    sigma = torch.full((2,), 0.25)
    assert all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(
            bridge_pair(target, target, sigma, sigma0, noise),
            prior_pair(target, sigma, noise),
            strict=True,
        )
    )
    # Straight: Euler steps with the true velocity land exactly on the target.
    scheduler = make_scheduler(3, sigma0)
    x = start_from(restored, noise, sigma0)
    for timestep in scheduler.timesteps:
        _, velocity = bridge_pair(
            target, restored, torch.full((2,), timestep / 1000), sigma0, noise
        )
        x = scheduler.step(velocity, timestep, x, return_dict=False)[0]
    assert torch.allclose(x, target, atol=1e-5)


def test_adaptor_starts_as_the_frozen_prior_and_only_it_trains() -> None:
    prior = PriorDenoiser(TINY_PRIOR)
    adaptor = RefinerAdaptor(RefinerConfig(widths=(8, 16), time_dim=16, residual=False))
    adaptor.init_from_prior(prior)
    refiner = Refiner(adaptor, prior)
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.1, 0.3])
    hint = torch.randn(2, 6, 16, 16)
    plain = prior(x, sigma)
    steered = refiner.velocity(x, sigma, hint, conditioning())
    assert torch.allclose(plain, steered, atol=1e-6)
    steered.pow(2).mean().backward()
    assert all(p.grad is None for p in prior.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in adaptor.parameters())


def test_untrained_residual_refiner_returns_the_restoration_and_trains_only_the_adaptor() -> None:
    prior = PriorDenoiser(TINY_PRIOR)
    adaptor = RefinerAdaptor(RefinerConfig(widths=(8, 16), time_dim=16))
    adaptor.init_from_prior(prior)
    refiner = Refiner(adaptor, prior)
    generator = torch.Generator().manual_seed(0)
    restored, degraded, noise = (torch.rand(1, 3, 16, 16, generator=generator) for _ in range(3))
    refined = refiner(restored, degraded, conditioning(1), noise=noise, steps=3)
    assert torch.allclose(refined, restored, atol=1e-5)
    x, sigma = torch.randn(1, 3, 16, 16), torch.tensor([0.1])
    hint = torch.cat([restored, degraded], dim=1)
    refiner.velocity(x, sigma, hint, conditioning(1)).pow(2).mean().backward()
    assert all(p.grad is None for p in prior.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in adaptor.parameters())


def test_caption_tokens_change_the_prior_and_the_mask_hides_them() -> None:
    prior = PriorDenoiser(TINY_PRIOR)
    torch.nn.init.constant_(prior.caption_attention.gate, 1.0)
    x, sigma = torch.randn(1, 3, 16, 16), torch.tensor([0.2])
    tokens = torch.randn(1, 3, 384)
    without = prior(x, sigma)
    assert not torch.allclose(prior(x, sigma, tokens), without)
    assert torch.allclose(prior(x, sigma, tokens, torch.zeros(1, 3)), without, atol=1e-6)


def test_refiner_is_deterministic_per_seed_and_checks_steps(tmp_path: Path) -> None:
    refiner = Refiner.from_pretrained(tiny_refiner(tmp_path))
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))

    def run(seed: int, steps: int = 2) -> torch.Tensor:
        noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
        return refiner(image, image, conditioning(1), noise=noise, steps=steps)

    assert torch.equal(run(0), run(0))
    assert not torch.allclose(run(0), run(1))
    with pytest.raises(VlirError):
        run(0, steps=0)


def test_mismatched_prior_is_refused(tmp_path: Path) -> None:
    adaptor = RefinerAdaptor(RefinerConfig(widths=(8, 16), time_dim=16))
    with pytest.raises(VlirError, match="architecture"):
        Refiner(adaptor, PriorDenoiser(PriorConfig(widths=(8, 32), time_dim=16)))


def test_pipeline_refines_deterministically_in_tiles(tmp_path: Path, photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    refiner = tiny_refiner(tmp_path)
    restorer = Restorer.from_pretrained("restorer", refiner=str(refiner))
    first = restorer(photo, refine=True, steps=2, seed=3, tile=64)
    again = restorer(photo, refine=True, steps=2, seed=3, tile=64)
    other = restorer(photo, refine=True, steps=2, seed=4, tile=64)
    plain = restorer(photo, tile=64)
    assert np.array_equal(first.image, again.image)
    assert not np.allclose(first.image, other.image)
    assert not np.allclose(first.image, plain.image)
    assert "refined (2 steps, seed 3)" in first.report() and plain.refine_steps == 0


def test_refiner_in_channels_last_refines_as_the_plain_layout(
    tmp_path: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlir import pipeline

    restorer = pipeline.Restorer.from_pretrained("restorer", refiner=str(tiny_refiner(tmp_path)))
    fast = restorer(photo, refine=True, steps=2, seed=3, tile=64).image
    refiner = restorer.load_refiner()
    for part in (refiner.adaptor, refiner.prior):
        kernels = [weight for weight in part.parameters() if weight.ndim == 4]
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in kernels)
    monkeypatch.setattr(pipeline.tiled, "CHANNELS_LAST", torch.contiguous_format)
    plain = restorer(photo, refine=True, steps=2, seed=3, tile=64).image
    assert all(w.is_contiguous() for w in refiner.prior.parameters())
    assert np.abs(plain - fast).max() < 1e-5


def test_restore_cli_refine(tmp_path: Path, photo: np.ndarray) -> None:
    refiner = tiny_refiner(tmp_path)
    PILImage.fromarray(np.round(photo * 255).astype(np.uint8)).save(tmp_path / "in.png")
    command = [sys.executable, "-m", "vlir.cli", "restore", str(tmp_path / "in.png")]
    result = subprocess.run(
        [
            *command,
            "-o",
            str(tmp_path / "out.png"),
            "--refine",
            "--steps",
            "1",
            "--refiner",
            str(refiner),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "refined (1 step, seed 0)" in result.stdout
    assert (tmp_path / "out.png").exists()
    bad = subprocess.run(
        [*command, "-o", str(tmp_path / "o.png"), "--refine", "--refiner", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "checkpoint" in bad.stderr
    assert not (tmp_path / "o.png").exists()


def write_tiny_prior_recipe(folder: Path, data: Path, captions: Path, extra: str = "") -> str:
    """Writes FOLDER/prior.yaml for a tiny prior; returns the keys every tiny recipe shares."""
    common = (
        f"data: {data}\ncaptions: {captions}\nbatch: 2\ncrop: 32\nholdout: 1\n"
        "validate_every: 2\nlog_every: 1\ncheckpoint_minutes: 0\n" + extra
    )
    (folder / "prior.yaml").write_text(common + "model:\n  widths: [8, 16]\n  time_dim: 16\n")
    return common


def test_prior_and_refiner_training_run_and_resume(
    tmp_path: Path, tiny_training_data: tuple[Path, Path]
) -> None:
    from tests.test_restoration import TINY, tiny_perception
    from vlir.restoration import RestorerModel
    from vlir.training.common import load_recipe
    from vlir.training.prior import PriorRecipe
    from vlir.training.prior import train as train_prior
    from vlir.training.refiner import RefinerRecipe
    from vlir.training.refiner import train as train_refiner

    data, captions = tiny_training_data
    common = write_tiny_prior_recipe(tmp_path, data, captions)
    prior_out = tmp_path / "prior"
    train_prior(
        load_recipe(PriorRecipe, tmp_path / "prior.yaml", {"out": str(prior_out), "steps": 2})
    )
    settings = {"out": str(prior_out), "steps": 3, "ema": 0.9}
    train_prior(load_recipe(PriorRecipe, tmp_path / "prior.yaml", settings))
    lines = [json.loads(line) for line in (prior_out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 3 and "val/psnr" in lines[-1]
    assert "ema" in torch.load(prior_out / "checkpoint.pt", weights_only=False)

    import dataclasses

    restorer = tmp_path / "restorer"
    RestorerModel(
        dataclasses.replace(TINY, perception=str(tiny_perception(tmp_path)))
    ).save_pretrained(restorer)
    (tmp_path / "refiner.yaml").write_text(
        common + f"prior: {prior_out / 'best'}\nrestorer: {restorer}\ncache_crops: 6\n"
        "cache_size: 48\nval_steps: 1\n"
    )
    out = tmp_path / "refiner"
    train_refiner(
        load_recipe(RefinerRecipe, tmp_path / "refiner.yaml", {"out": str(out), "steps": 2})
    )
    train_refiner(
        load_recipe(RefinerRecipe, tmp_path / "refiner.yaml", {"out": str(out), "steps": 3})
    )
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 3 and "val/psnr_refined" in lines[-1]
    assert len(np.load(out / "cache-train.npz")["prompt"]) == 6
    refiner = Refiner.from_pretrained(out / "best")
    assert refiner.adaptor.config.perception == str(tmp_path / "perception")
    with pytest.raises(VlirError, match="loss"):
        train_refiner(load_recipe(RefinerRecipe, tmp_path / "refiner.yaml", {"loss": "l2"}))
    with pytest.raises(VlirError, match="ema"):
        train_refiner(load_recipe(RefinerRecipe, tmp_path / "refiner.yaml", {"ema": 0.9}))


def tiny_stable_diffusion(folder: Path) -> Path:
    """A diffusers Stable Diffusion folder with tiny random UNet, VAE and DDIM scheduler."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24,
        attention_head_dim=4,
        norm_num_groups=8,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        norm_num_groups=4,
        layers_per_block=1,
    ).save_pretrained(folder / "vae")
    DDIMScheduler(num_train_timesteps=100).save_pretrained(folder / "scheduler")
    return folder


def test_stable_diffusion_adaptor_forward_training_step_and_reload(tmp_path: Path) -> None:
    from vlir.diffusion.stable_diffusion import StableDiffusionRefiner

    folder = tiny_stable_diffusion(tmp_path / "sd")
    refiner = StableDiffusionRefiner.from_pretrained(folder)
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    text = torch.randn(2, 5, 24, generator=torch.Generator().manual_seed(1))
    latents, t = refiner.encode(image), torch.tensor([5, 5])
    hint = torch.cat([image, image], dim=1) * 2 - 1
    base = refiner.unet(latents, t, encoder_hidden_states=text).sample
    assert torch.allclose(refiner.predict(latents, t, hint, text), base, atol=1e-6)

    optimizer = torch.optim.AdamW(refiner.trainable_parameters(), lr=1e-3)
    loss = refiner.training_loss(image, image, image, text, torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in refiner.unet.parameters())
    assert not torch.allclose(refiner.predict(latents, t, hint, text), base, atol=1e-6)

    out = refiner(image, image, text, steps=2, seed=1)
    assert out.shape == image.shape and torch.equal(
        out, refiner(image, image, text, steps=2, seed=1)
    )
    refiner.save_adaptor(tmp_path / "adaptor")
    reloaded = StableDiffusionRefiner.from_pretrained(folder, tmp_path / "adaptor")
    assert torch.allclose(reloaded(image, image, text, steps=2, seed=1), out, atol=1e-6)
    with pytest.raises(VlirError, match="Stable Diffusion"):
        StableDiffusionRefiner.from_pretrained(tmp_path)


def test_shipped_refiner_loads_with_its_prior_and_restorer(photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    refiner = Refiner.from_pretrained()
    assert refiner.adaptor.config.prior == "prior" and refiner.adaptor.config.residual
    restorer = Restorer.from_pretrained(refiner.adaptor.config.restorer)
    plain = restorer(photo[:64, :64])
    refined = restorer(photo[:64, :64], refine=True, steps=2, seed=0)
    assert refined.image.shape == plain.image.shape and np.isfinite(refined.image).all()
    assert not np.allclose(refined.image, plain.image, atol=1e-3)
