"""The seed systems as recipes (vlmir, lmdir, spire), diffusion restorers, ablations."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_diffusion import TINY_PRIOR, conditioning, write_tiny_prior_recipe
from tests.test_restoration import TINY, tiny_perception
from vlir.diffusion import PriorDenoiser, RefinerAdaptor, RefinerConfig
from vlir.diffusion.adaptor import gather_tokens
from vlir.errors import VlirError
from vlir.restoration import RestorerConfig, RestorerModel
from vlir.training.ablation import load_ablation, variant_recipe
from vlir.training.system import load_system, stage_recipe, train_system

ROOT = Path(__file__).resolve().parents[1]


def test_system_recipes_wire_each_stage_to_the_one_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    expected = {
        "vlmir": ["perception", "prior", "diffusion"],
        "lmdir": ["perception", "restorer"],
        "spire": ["prior", "adaptor"],
    }
    for name, stages in expected.items():
        system = load_system(name)
        assert [s.name for s in system.stages] == stages
        assert (ROOT / "configs" / f"{name}.md").exists()  # the paper-to-module map
        outputs = {stage: f"/ckpt/{stage}" for stage in stages}
        recipes = {s.name: stage_recipe(s, Path("runs/x"), outputs, {})[1] for s in system.stages}
        assert all(r.out == f"runs/x/{stage}" for stage, r in recipes.items())
        last = recipes[stages[-1]]
        if name == "lmdir":
            assert last.perception == "/ckpt/perception" and last.model["use_modulation"] is False
        else:  # a diffusion restorer: no restorer before it, the stage-1 prior under it
            assert last.restorer is None and last.prior == "/ckpt/prior"
            fields = {f.name for f in dataclasses.fields(RefinerConfig)}
            assert set(last.model) <= fields
    vlmir = stage_recipe(load_system("vlmir").stages[2], Path("r"), outputs_of("vlmir"), {})[1]
    assert vlmir.perception == "/ckpt/perception" and vlmir.model["align_semantic"] is True
    assert vlmir.model["tokens"] == ["degradation", "content"] and vlmir.request_mix[0] == 1


def outputs_of(name: str) -> dict[str, str]:
    return {s.name: f"/ckpt/{s.name}" for s in load_system(name).stages}


def test_system_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(VlirError, match="no recipe 'nope'"):
        load_system("nope")
    with pytest.raises(VlirError, match="no stage 'decoder'"):
        train_system("spire", str(tmp_path), uses={"decoder": "x"})
    with pytest.raises(VlirError, match=r"STAGE\.KEY"):
        train_system("spire", str(tmp_path), settings={"steps": 3})
    result = subprocess.run(
        [sys.executable, "-m", "vlir.cli", "train", "--recipe", "nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("vlir: error: no recipe 'nope'")


def test_ablation_variants_each_switch_one_thing_under_one_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    ablation = load_ablation("ablation")
    recipes = {v.name: variant_recipe(ablation, v, Path("runs/a"), {}) for v in ablation.variants}
    full = recipes["full"]
    switched = {
        "no-degradation-block": "use_degradation_block",
        "no-content-block": "use_content_block",
        "no-modulation": "use_modulation",
        "no-caption-alignment": "align_semantic",
        "no-reference": "use_reference_block",
    }
    assert set(recipes) == {"full", *switched}
    for name, key in switched.items():
        recipe = recipes[name]
        assert (recipe.steps, recipe.seed, recipe.init, recipe.lr) == (
            full.steps,
            full.seed,
            full.init,
            full.lr,
        )
        changed = {k for k in recipe.model if recipe.model[k] != full.model.get(k, True)}
        assert changed == {key}, name
        assert recipe.out == f"runs/a/{name}"
    assert variant_recipe(ablation, ablation.variants[0], Path("r"), {"steps": 7}).steps == 7


def test_knocked_out_part_is_absent_and_init_leaves_it_out() -> None:
    from vlir.training.common import load_matching

    full = RestorerModel(TINY)
    plain = RestorerModel(dataclasses.replace(TINY, use_modulation=False))
    assert not any("modulation" in key for key in plain.state_dict())
    dropped = load_matching(plain, full.state_dict())
    assert dropped and all("modulation" in key for key in dropped)
    key = next(iter(plain.state_dict()))
    assert torch.equal(plain.state_dict()[key], full.state_dict()[key])
    with pytest.raises(VlirError, match="lack"):
        load_matching(full, plain.state_dict())


def test_adaptor_token_sources_and_switches() -> None:
    batch = conditioning()
    batch = dataclasses.replace(batch, prompt_mask=torch.tensor([[1, 1, 1, 0, 0], [1] * 5]))
    tokens, mask = gather_tokens(batch, ("degradation", "prompt"))
    assert tokens.shape == (2, 9, 384) and mask is not None
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert gather_tokens(batch, ("degradation",))[1] is None
    config = RefinerConfig(
        widths=(8, 16), time_dim=16, restorer=None, tokens=(), prompt_modulation=False
    )
    adaptor = RefinerAdaptor(config)
    assert adaptor.token_attention is None and adaptor.prompt_modulation is None
    assert config.hint_channels == 3
    with pytest.raises(VlirError, match="tokens"):
        RefinerConfig(tokens=("caption",))


def tiny_diffusion_restorer(folder: Path, **changes: object) -> Path:
    prior = PriorDenoiser(TINY_PRIOR)
    prior.save_pretrained(folder / "prior")
    config = RefinerConfig(
        prior=str(folder / "prior"), widths=(8, 16), time_dim=16, restorer=None, **changes
    )
    adaptor = RefinerAdaptor(config)
    adaptor.init_from_prior(prior)
    return adaptor.save_pretrained(folder / "system")


def test_untrained_diffusion_restorer_returns_its_input(tmp_path: Path, photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    path = tiny_diffusion_restorer(
        tmp_path, tokens=("degradation", "content"), prompt_modulation=False, steps=3
    )
    restorer = Restorer.from_pretrained(path)
    result = restorer(photo, seed=1)
    # residual sampling from the noised input: zero gamma/beta heads walk back to it
    assert np.abs(result.image - photo).max() < 1e-4
    assert "by diffusion (3 steps, seed 1)" in result.report()
    assert not restorer.reads_prompts
    with pytest.raises(VlirError, match="no restoration prompt"):
        restorer(photo, prompt="denoise with sigma 25")


def test_blind_mode_and_prompted_diffusion_restorer(tmp_path: Path, photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    path = tiny_diffusion_restorer(tmp_path, tokens=("prompt",), auto_prompt="blind")
    adaptor = RefinerAdaptor.from_pretrained(path)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # wake every zero-initialised gate and head
        for parameter in adaptor.parameters():
            parameter += 0.05 * torch.randn(parameter.shape, generator=generator)
    adaptor.save_pretrained(path)
    restorer = Restorer.from_pretrained(path)
    blind = restorer(photo, seed=0)
    assert blind.prompt == "remove all degradation" and blind.automatic
    guided = restorer(photo, prompt="denoise with sigma 25", seed=0)
    assert not np.allclose(blind.image, guided.image)
    assert np.array_equal(restorer(photo, seed=0).image, blind.image)


def test_refiner_of_a_restorer_is_not_a_model_by_itself(tmp_path: Path) -> None:
    from tests.test_diffusion import tiny_refiner
    from vlir.pipeline import Restorer

    with pytest.raises(VlirError, match="--refine --refiner"):
        Restorer.from_pretrained(tiny_refiner(tmp_path))


def test_system_runner_trains_a_tiny_diffusion_restorer(
    tmp_path: Path, tiny_training_data: tuple[Path, Path], photo: np.ndarray
) -> None:
    from vlir.pipeline import Restorer

    data, captions = tiny_training_data
    common = write_tiny_prior_recipe(tmp_path, data, captions, extra="steps: 2\n")
    (tmp_path / "refiner.yaml").write_text(
        common + f"perception: {tiny_perception(tmp_path)}\ncache_crops: 4\ncache_size: 48\n"
        "val_steps: 1\n"
    )
    (tmp_path / "tiny.yaml").write_text(
        "stages:\n  prior: {recipe: prior.yaml}\n  adaptor:\n    trainer: refiner\n"
        "    recipe: refiner.yaml\n    set:\n      prior: '{prior}'\n      restorer: null\n"
        "      model: {tokens: [prompt], auto_prompt: blind, steps: 2}\n"
    )
    model = train_system(str(tmp_path / "tiny.yaml"), str(tmp_path / "run"))
    assert model == str(tmp_path / "run" / "adaptor" / "best")
    config = RefinerAdaptor.from_pretrained(model).config
    assert config.prior == str(tmp_path / "run" / "prior" / "best") and config.restorer is None
    result = Restorer.from_pretrained(model)(photo)
    assert result.image.shape == photo.shape and "by diffusion (2 steps" in result.report()
    # a finished system trains nothing again; --use replaces a stage by given weights
    again = train_system(
        str(tmp_path / "tiny.yaml"),
        str(tmp_path / "run"),
        uses={"prior": str(tmp_path / "run" / "prior" / "best")},
        settings={"adaptor.steps": 2},
    )
    assert again == model


def test_restorer_config_keeps_its_old_checkpoints_loading() -> None:
    """The shipped default predates align_semantic; it loads with the plain text tower."""
    assert RestorerModel.from_pretrained("restorer").config.align_semantic is False
    assert RestorerConfig().use_modulation


def test_restore_cli_runs_a_diffusion_restorer_and_refuses_a_prompt_it_cannot_read(
    tmp_path: Path, photo: np.ndarray
) -> None:
    from PIL import Image as PILImage

    path = tiny_diffusion_restorer(tmp_path, prompt_modulation=False, steps=2)
    PILImage.fromarray(np.round(photo * 255).astype(np.uint8)).save(tmp_path / "in.png")
    command = [sys.executable, "-m", "vlir.cli", "restore", str(tmp_path / "in.png")]
    ok = subprocess.run(
        [*command, "-o", str(tmp_path / "out.png"), "--model", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "by diffusion (2 steps, seed 0)" in ok.stdout and (tmp_path / "out.png").exists()
    refused = subprocess.run(
        [*command, "-o", str(tmp_path / "o.png"), "--model", str(path), "--prompt", "denoise"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "takes no restoration prompt" in refused.stderr and not (tmp_path / "o.png").exists()


def test_shipped_systems_restore(photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    for name, diffusion in (("lmdir", False), ("vlmir", True), ("spire", True)):
        restorer = Restorer.from_pretrained(name)
        result = restorer(photo[:64, :64], seed=0)
        assert result.image.shape == (64, 64, 3) and np.isfinite(result.image).all()
        assert result.diffusion is diffusion, name
    assert Restorer.from_pretrained("lmdir").model.config.use_modulation is False
    spire = Restorer.from_pretrained("spire")
    assert spire.reads_prompts and spire(photo[:64, :64]).prompt == "remove all degradation"
    assert not Restorer.from_pretrained("vlmir").reads_prompts
