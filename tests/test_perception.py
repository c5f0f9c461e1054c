"""Perception: shapes, labels, losses, save/load, analysis, and a short real training run."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from tests.test_text import make_tiny_clip
from vlir.degradations import OP_NAMES, parse_ops
from vlir.errors import VlirError
from vlir.perception import PerceptionConfig, PerceptionModel, analyze, losses
from vlir.perception.labels import (
    combination_text,
    prompt_from_prediction,
    record_labels,
    strength_value,
)

TINY = PerceptionConfig(widths=(8, 8, 16, 16, 16), hidden=32, embed_dim=384, deg_tokens=2)


def test_forward_shapes_any_size() -> None:
    model = PerceptionModel(TINY)
    for size in ((96, 144), (70, 130)):
        out = model(torch.rand(3, 3, *size))
        assert out.deg_embedding.shape == (3, 384) and out.content_embedding.shape == (3, 384)
        assert out.deg_tokens.shape == (3, 2, 384) and out.content_tokens.shape[2] == 384
        assert out.presence_logits.shape == (3, len(OP_NAMES))
        assert ((out.strength >= 0) & (out.strength <= 1)).all()
        assert torch.allclose(out.deg_embedding.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_labels_and_back() -> None:
    record = parse_ops("blur sigma=2.15, noise sigma=30, jpeg quality=50", np.random.default_rng(0))
    presence, strength = record_labels(record, OP_NAMES)
    assert presence.sum() == 3
    assert strength[OP_NAMES.index("noise")] == pytest.approx(30 / 75)
    assert strength_value("noise", 30 / 75) == 30
    assert strength_value("jpeg", strength[OP_NAMES.index("jpeg")]) == 50
    prompt = prompt_from_prediction(OP_NAMES, presence, strength)
    assert prompt.format() == record.prompt().format()
    assert combination_text(["noise", "blur"]) == "deblur; denoise"
    assert combination_text([]) == "keep the image as it is"


def test_contrastive_prefers_matching_pairs() -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    scale = torch.tensor(2.659)
    matched = losses.contrastive(embeddings, embeddings, scale)
    shuffled = losses.contrastive(embeddings, embeddings.roll(1, 0), scale)
    assert matched < shuffled
    duplicates = losses.contrastive(
        embeddings[[0, 0, 1]], embeddings[[0, 0, 1]], scale, ["a", "a", "b"]
    )
    assert torch.isfinite(duplicates)
    assert float(losses.caption_alignment(embeddings, embeddings)) == pytest.approx(0, abs=1e-6)
    cls, reg = losses.predictor(
        torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3)
    )
    assert float(reg) == 0 and float(cls) == pytest.approx(np.log(2), abs=1e-6)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = PerceptionModel(TINY).eval()
    model.store_text_lora(
        {"encoder.layer.0.attention.self.query.lora_A.default.weight": torch.ones(2, 3)}
    )
    model.save_pretrained(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "perception"
    loaded = PerceptionModel.from_pretrained(tmp_path / "ckpt")
    image = torch.rand(1, 3, 96, 144)
    with torch.no_grad():
        assert torch.allclose(model(image).presence_logits, loaded(image).presence_logits)
    assert list(loaded.text_lora_state()) == [
        "encoder.layer.0.attention.self.query.lora_A.default.weight"
    ]
    with pytest.raises(VlirError, match="no vlir checkpoint"):
        PerceptionModel.from_pretrained(tmp_path / "missing")


def test_analyze_reads_tiles_and_writes_a_prompt() -> None:
    model = PerceptionModel(TINY).eval()
    result = analyze(model, torch.rand(1, 3, 321, 481))
    assert len(result.findings) == len(OP_NAMES)
    assert result.prompt.format()
    as_dict = result.to_dict()
    assert set(as_dict) == {"degradations", "all", "prompt"}
    assert result.perception.deg_embedding.shape == (1, 384)


@pytest.mark.parametrize("signal", [False, True])
def test_analyze_reads_thumbnails_and_single_pixels(signal: bool) -> None:
    """The tower needs 32 pixels a side (four halvings, then a spread): smaller photos are
    mirrored up to it rather than failing on an undefined statistic."""
    model = PerceptionModel(dataclasses.replace(TINY, signal_statistics=signal)).eval()
    for height, width in ((1, 1), (5, 7), (16, 16), (31, 40)):
        result = analyze(model, torch.rand(1, 3, height, width))
        assert all(np.isfinite([f.probability, f.strength]).all() for f in result.findings)
        # but what it reads there are guesses, and the analysis says so
        assert (
            result.note
            == f"{width}x{height} is under 32 px a side, too small to tell what is wrong"
        )
        assert result.to_dict()["note"] == result.note
    assert analyze(model, torch.rand(1, 3, 32, 40)).note == ""
    assert "note" not in analyze(model, torch.rand(1, 3, 32, 40)).to_dict()


def test_clip_image_tower(tmp_path: Path) -> None:
    folder = make_tiny_clip(tmp_path / "clip")
    config = PerceptionConfig(image_tower=str(folder), hidden=32, deg_tokens=2)
    model = PerceptionModel(config)
    out = model(torch.rand(2, 3, 40, 60))
    assert out.content_tokens.shape == (2, 16, 384) and out.presence_logits.shape[0] == 2


def _recipe(tmp_path: Path, data: Path, captions: Path, steps: int) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"data: {data}\ncaptions: {captions}\nsteps: {steps}\nbatch: 4\nholdout: 1\n"
        "validate_every: 2\nlog_every: 1\nlora_batch: 2\ncheckpoint_minutes: 0\n"
        "model:\n  widths: [8, 8, 16, 16, 16]\n  hidden: 32\n  train_size: [48, 64]\n"
    )
    return recipe


def test_training_runs_resumes_and_exports(tmp_path: Path, tiny_training_data) -> None:
    from vlir.training.common import load_recipe
    from vlir.training.perception import PerceptionRecipe, train

    data, captions = tiny_training_data
    recipe_file = _recipe(tmp_path, data, captions, steps=2)
    out = tmp_path / "run"
    train(load_recipe(PerceptionRecipe, recipe_file, {"out": str(out)}))
    assert (out / "checkpoint.pt").exists() and (out / "best" / "model.safetensors").exists()
    # resumed with a weight average newly set: it starts from the resumed weights
    train(load_recipe(PerceptionRecipe, recipe_file, {"out": str(out), "steps": 3, "ema": 0.9}))
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [line["step"] for line in lines]
    assert steps[-1] == 3 and 1 in steps  # resumed at step 2, did one more
    assert {"val/f1_macro", "val/live_f1_macro"} <= set(lines[-1])
    model = PerceptionModel.from_pretrained(out / "last")
    assert model.text_lora_state()  # the caption-alignment LoRA travels with the model
    # what is exported is the average, not the last step's weights
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    exported = model.state_dict()["presence.weight"]
    assert torch.equal(exported, state["ema"]["model"]["presence.weight"])
    assert not torch.equal(exported, state["model"]["presence.weight"])
    fresh = tmp_path / "continued"
    train(
        load_recipe(
            PerceptionRecipe,
            recipe_file,
            # signal statistics added to a model trained without them, native crops degraded
            # with context, haze drawn twice as often
            {
                "out": str(fresh),
                "steps": 1,
                "init": str(out / "last"),
                "model.signal_statistics": True,
                "crop_context": 4,
                "op_weights.haze": 2.0,
            },
        )
    )
    continued = PerceptionModel.from_pretrained(fresh / "last")
    assert continued.text_lora_state() and continued.config.signal_statistics


def test_training_with_workers_stops_on_its_time_limit(tmp_path: Path, tiny_training_data) -> None:
    from vlir.training.common import load_recipe
    from vlir.training.perception import PerceptionRecipe, train

    data, captions = tiny_training_data
    recipe_file = _recipe(tmp_path, data, captions, steps=50)
    out = tmp_path / "run"
    settings = {"out": str(out), "workers": 1, "max_minutes": 0}
    train(load_recipe(PerceptionRecipe, recipe_file, settings))
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 1 and "val/f1_macro" in lines[-1]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 1
    # stopped early, so left for a later slice to finish: not calibrated yet
    assert PerceptionModel.from_pretrained(out / "best").config.thresholds is None
    train(load_recipe(PerceptionRecipe, recipe_file, {**settings, "steps": 2, "max_minutes": None}))
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2
    assert PerceptionModel.from_pretrained(out / "best").config.thresholds is not None


def test_heads_only_training_leaves_every_embedding_untouched(
    tmp_path: Path, tiny_training_data
) -> None:
    """Restorers read perception's tokens and embeddings: retraining the heads alone must
    keep them bit-identical, and must change the heads."""
    from vlir.training.common import load_recipe
    from vlir.training.perception import PerceptionRecipe, train

    data, captions = tiny_training_data
    recipe_file = _recipe(tmp_path, data, captions, steps=2)
    first = tmp_path / "first"
    signal = {"model.signal_statistics": True}  # its running normalisation must not drift
    train(load_recipe(PerceptionRecipe, recipe_file, {"out": str(first), **signal}))
    heads = tmp_path / "heads"
    settings = {"out": str(heads), "init": str(first / "last"), "heads_only": True, "lr": 0.01}
    settings.update(signal)
    train(load_recipe(PerceptionRecipe, recipe_file, settings))
    before = PerceptionModel.from_pretrained(first / "last").state_dict()
    after = PerceptionModel.from_pretrained(heads / "last").state_dict()
    assert before.keys() == after.keys()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith(("presence.", "strength.")) for key in changed)


def test_training_under_torchrun_with_two_processes(tmp_path: Path, tiny_training_data) -> None:
    data, captions = tiny_training_data
    recipe = _recipe(tmp_path, data, captions, steps=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "vlir.training.perception",
            "--recipe",
            str(recipe),
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "ddp" / "best" / "model.safetensors").exists()


def test_half_precision_checkpoint_loads_close(tmp_path: Path) -> None:
    model = PerceptionModel(TINY).eval()
    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    loaded = PerceptionModel.from_pretrained(tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    image = torch.rand(1, 3, 96, 144)
    with torch.no_grad():
        diff = (model(image).strength - loaded(image).strength).abs().max()
    assert float(diff) < 1e-2


def test_analyze_cli(tmp_path: Path) -> None:
    from skimage import data

    PerceptionModel(TINY).save_pretrained(tmp_path / "model")
    PILImage.fromarray(data.astronaut()).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"")
    command = [sys.executable, "-m", "vlir.cli", "analyze", "--model", str(tmp_path / "model")]
    table = subprocess.run(
        [*command, str(tmp_path / "a.png")], capture_output=True, text=True, timeout=300
    )
    assert table.returncode == 0, table.stderr
    assert "prompt:" in table.stdout
    as_json = subprocess.run(
        [*command, "--json", str(tmp_path / "a.png"), str(tmp_path / "bad.png")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert as_json.returncode == 1 and "Traceback" not in as_json.stderr
    reports = json.loads(as_json.stdout)
    assert len(reports) == 1 and set(reports[0]) == {"image", "degradations", "all", "prompt"}


@pytest.mark.parametrize(
    ("spec", "op"), [("noise sigma=50", "noise"), ("blur sigma=3", "blur"), ("", None)]
)
def test_shipped_perception_names_clear_cases(spec: str, op: str | None) -> None:
    """The clean case is the scan at half size: at full size its film grain reads as faint
    noise (below), which the sixth perception reports."""
    from skimage import data

    model = PerceptionModel.from_pretrained()  # the shipped weights, no network
    clean = data.astronaut().astype(np.float32) / 255
    image = parse_ops(spec, np.random.default_rng(0)).apply(clean) if spec else clean
    image = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    if not spec:
        image = torch.nn.functional.interpolate(image, scale_factor=0.5, mode="area")
    found = [f.op for f in analyze(model, image).found]
    assert (op in found) if op else not found


def test_shipped_perception_reads_a_grainy_scan_as_faint_noise_at_most() -> None:
    from skimage import data

    model = PerceptionModel.from_pretrained()
    scan = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    found = analyze(model, scan).found
    assert all(f.op == "noise" and f.strength <= 5 for f in found)


def test_shipped_perception_states_grey_noise_on_the_engines_scale() -> None:
    """The tower learned noise drawn per channel, two thirds of which reaches luma, so it
    reads one-plane grey noise of sigma 25 as about 37; the shipped map states it back."""
    from skimage import data

    model = PerceptionModel.from_pretrained()
    clean = np.repeat(data.camera().astype(np.float32)[..., None] / 255, 3, axis=2)
    noisy = np.clip(parse_ops("noise sigma=25", np.random.default_rng(0)).apply(clean), 0, 1)
    result = analyze(model, torch.from_numpy(noisy).permute(2, 0, 1)[None])
    stated = next(f.strength for f in result.findings if f.op == "noise")
    read = strength_value("noise", float(result.perception.strength[0, OP_NAMES.index("noise")]))
    assert read > 31 and 20 <= stated <= 30


def test_recipe_settings_from_the_command_line() -> None:
    from vlir.training.common import load_recipe, parse_settings
    from vlir.training.perception import PerceptionRecipe

    settings = parse_settings(["batch=8", "lr=3e-4", "init=perception", "out = runs/x"])
    assert settings == {"batch": 8, "lr": 3e-4, "init": "perception", "out": "runs/x"}
    assert load_recipe(PerceptionRecipe, None, settings).batch == 8
    with pytest.raises(VlirError, match="KEY=VALUE"):
        parse_settings(["batch"])
    with pytest.raises(VlirError, match="unknown recipe key 'bacth'"):
        load_recipe(PerceptionRecipe, None, parse_settings(["bacth=8"]))
    nested = load_recipe(
        PerceptionRecipe, None, parse_settings(["model.hidden=64", "model.widths=[8, 8]"])
    )
    assert nested.model == {"hidden": 64, "widths": [8, 8]}
    with pytest.raises(VlirError, match="not a mapping"):
        load_recipe(PerceptionRecipe, None, parse_settings(["out.x=1"]))


def test_calibrated_thresholds_decide_what_is_found() -> None:
    only_noise = tuple(0.0 if name == "noise" else 1.01 for name in OP_NAMES)
    model = PerceptionModel(dataclasses.replace(TINY, thresholds=only_noise)).eval()
    image = torch.rand(1, 3, 64, 96)
    calibrated = analyze(model, image)
    assert [f.op for f in calibrated.found] == ["noise"]
    assert calibrated.prompt.format().startswith("denoise")
    uncalibrated = analyze(model, image, calibrated=False)
    assert [f.op for f in uncalibrated.found] == [
        f.op for f in uncalibrated.findings if f.probability >= 0.5
    ]
    with pytest.raises(VlirError, match="one threshold per op"):
        PerceptionModel(dataclasses.replace(TINY, thresholds=(0.5,))).decision_thresholds()


def test_a_grey_photo_is_decided_by_the_grey_thresholds_where_the_model_has_them() -> None:
    only_noise = tuple(0.0 if name == "noise" else 1.01 for name in OP_NAMES)
    only_jpeg = tuple(0.0 if name == "jpeg" else 1.01 for name in OP_NAMES)
    config = dataclasses.replace(TINY, thresholds=only_noise)
    colour = torch.rand(1, 3, 64, 96)
    grey = colour[:, :1].expand(-1, 3, -1, -1).clone()
    shared = PerceptionModel(config).eval()
    assert [f.op for f in analyze(shared, grey).found] == ["noise"]
    model = PerceptionModel(dataclasses.replace(config, grey_thresholds=only_jpeg)).eval()
    assert [f.op for f in analyze(model, colour).found] == ["noise"]
    assert [f.op for f in analyze(model, grey).found] == ["jpeg"]
    # one plane differing in a single value is a colour photo
    grey[0, 2, 0, 0] = 1.0 - grey[0, 0, 0, 0]
    assert [f.op for f in analyze(model, grey).found] == ["noise"]
    with pytest.raises(VlirError, match="one threshold per op"):
        short = dataclasses.replace(config, grey_thresholds=(0.5,))
        PerceptionModel(short).decision_thresholds(grey=True)


def test_best_thresholds_maximise_each_ops_f1() -> None:
    from vlir.perception.calibrate import best_thresholds, f1

    truth = np.array([[1, 1], [1, 1], [0, 1], [0, 0], [0, 0]], float)
    probability = np.array([[0.35, 0.9], [0.4, 0.8], [0.2, 0.75], [0.1, 0.72], [0.25, 0.3]])
    thresholds = best_thresholds(truth, probability)
    # any threshold in (0.25, 0.35] and (0.72, 0.75] is perfect: the one nearest 0.5 is kept
    assert thresholds == pytest.approx((0.35, 0.73))
    found = probability >= np.array(thresholds)
    assert np.all(f1(truth, found) == 1.0) and np.all(f1(truth, probability >= 0.5) < 1.0)
    # a false finding between true ones: F1 takes all three true ones (and the false one),
    # F0.5 only the sure two
    truth = np.array([[1], [1], [0], [1], [0]], float)
    probability = np.array([[0.95], [0.9], [0.6], [0.3], [0.1]])
    assert best_thresholds(truth, probability) == pytest.approx((0.3,))
    assert best_thresholds(truth, probability, beta=0.5) == pytest.approx((0.61,))
    # rows of no op are clean photos: a cap on how many of them an op is found on
    assert best_thresholds(truth, probability, clean_rate=0.5) == pytest.approx((0.3,))
    assert best_thresholds(truth, probability, clean_rate=0.0) == pytest.approx((0.61,))
    # no threshold of the grid meets the cap: the grid's highest
    probability[2] = 0.99
    assert best_thresholds(truth, probability, clean_rate=0.0) == pytest.approx((0.95,))


def test_calibration_counts_each_photo_as_it_is(tiny_training_data) -> None:
    """A threshold must pay for reading a clean photo as degraded: each photo also comes
    as it is, with no op true."""
    from vlir.perception.calibrate import collect

    data, _ = tiny_training_data
    photo = sorted(data.iterdir())[0]
    truth, probability = collect(PerceptionModel(TINY).eval(), [photo], mixtures=2)
    assert truth.shape == probability.shape == (1 + len(OP_NAMES) + 2, len(OP_NAMES))
    assert truth[0].sum() == 0 and (truth[1:].sum(1) >= 1).all()


def test_calibration_writes_thresholds_that_load(tmp_path: Path, tiny_training_data) -> None:
    from vlir.perception.calibrate import main

    data, _ = tiny_training_data
    folder = PerceptionModel(TINY).save_pretrained(tmp_path / "perception")
    main([str(folder), "--data", str(data), "--holdout", "1", "--write"])
    thresholds = PerceptionModel.from_pretrained(folder).config.thresholds
    assert thresholds is not None and len(thresholds) == len(OP_NAMES)
    assert all(0.05 <= t <= 0.95 for t in thresholds)


def test_weights_fingerprint_follows_the_weights(tmp_path: Path) -> None:
    from vlir.modeling import weights_fingerprint
    from vlir.perception import load_perception

    model = PerceptionModel(TINY)
    folder = model.save_pretrained(tmp_path / "p")
    assert weights_fingerprint(PerceptionModel.from_pretrained(folder)) == weights_fingerprint(
        model
    )
    print_ = weights_fingerprint(model)
    assert load_perception(str(folder), print_) is not None
    with torch.no_grad():
        model.presence.bias[0] += 1e-3
    model.save_pretrained(folder)
    assert weights_fingerprint(model) != print_
    with pytest.raises(VlirError, match="not the one this model was trained with"):
        load_perception(str(folder), print_)


def test_a_cropped_jpegs_grid_is_found_where_the_crop_left_it() -> None:
    """The grid of a JPEG cropped by (3, 5) starts at row 5, column 3; uncropped at the
    corner; a flat or clean photo, or one too small to tell, reads as (0, 0)."""
    from skimage import data

    from vlir.degradations.jpeg import jpeg_roundtrip
    from vlir.perception.jpeg_grid import jpeg_grid_start

    clean = data.astronaut()[:256, :256].astype(np.float32) / 255.0
    for quality in (10, 40):
        compressed = jpeg_roundtrip(clean, quality)
        assert jpeg_grid_start(compressed) == (0, 0)
        assert jpeg_grid_start(compressed[3:, 5:]) == (5, 3)
        assert jpeg_grid_start(compressed[8:, 1:]) == (0, 7)
        assert jpeg_grid_start(compressed[3:30, 5:]) == (0, 3)  # 27 rows: too few to tell
    assert jpeg_grid_start(np.full((64, 64, 3), 0.5, np.float32)) == (0, 0)
    assert jpeg_grid_start(clean[3:, 5:]) == (0, 0)


@pytest.mark.parametrize("planes", [3, 1])
def test_a_jpeg_under_strong_noise_shows_in_its_quantised_blocks(planes: int) -> None:
    """Sigma-50 noise saved at quality 50 has no grid of steps to find, but its blocks'
    high frequencies sit at zero far more often at the grid than off it, wherever the
    crop left it; the same noise unsaved, or a clean photo, has no such offset."""
    from skimage import data

    from vlir.degradations.jpeg import jpeg_roundtrip
    from vlir.io import grey_rgb
    from vlir.perception.jpeg_grid import QUANTISED_PEAK, jpeg_grid_start, quantisation_peak

    clean = data.astronaut()[:256, :256].astype(np.float32) / 255.0
    if planes == 1:
        clean = grey_rgb(clean)
    noise = np.random.default_rng(0).standard_normal((256, 256, planes)).astype(np.float32)
    noisy = np.clip(clean + noise * np.float32(50 / 255), 0, 1)
    file = np.round(noisy * 255) / 255
    saved = jpeg_roundtrip(noisy, 50)
    assert jpeg_grid_start(saved[3:, 5:]) == (0, 0)  # the steps drown in the noise
    assert quantisation_peak(saved) > 3 * QUANTISED_PEAK
    assert quantisation_peak(saved[3:, 5:]) > 3 * QUANTISED_PEAK
    assert quantisation_peak(file) < QUANTISED_PEAK
    assert quantisation_peak(clean) < QUANTISED_PEAK
    assert quantisation_peak(file[:12, :12]) == 1.0  # too small to tell


def test_an_enlarged_photos_period_is_no_jpeg_grid() -> None:
    """Steps repeating every 2 or 4 pixels also peak at one phase of 8 (1.1-1.2 times the
    median on these), but as much half a block on, where a JPEG's do not."""
    from skimage import data

    from vlir.degradations import imresize
    from vlir.perception.jpeg_grid import jpeg_grid_start

    clean = data.astronaut()[:256, :256].astype(np.float32) / 255.0
    for scale in (2, 4):
        enlarged = np.clip(imresize(imresize(clean, 1 / scale), scale), 0, 1)
        for rows, cols in ((0, 0), (1, 3), (2, 2)):
            assert jpeg_grid_start(enlarged[rows:, cols:]) == (0, 0)


def test_grey_strength_map_is_monotone_and_undoes_a_known_misreading() -> None:
    """A tower that reads grey noise 1.5 times too strong (saturating at the top of its
    range), as the shipped one does: the fitted map states the true strength back."""
    from vlir.perception.grey_strength import fit_map

    truth = np.random.default_rng(0).uniform(0, 1, 400)
    read = np.clip(1.5 * truth, 0, 1)
    reads, truths = fit_map(read, truth)
    assert reads[0] == truths[0] == 0 and reads[-1] == 1
    assert truths[-1] == pytest.approx(5 / 6, abs=0.03)  # what a saturated read hides: 2/3-1
    assert np.all(np.diff(reads) > 0) and np.all(np.diff(truths) >= 0)
    for value in (0.1, 0.3, 0.6):
        assert np.interp(1.5 * value, reads, truths) == pytest.approx(value, abs=0.04)


def test_analyze_states_a_grey_photos_strength_through_its_map() -> None:
    """The map applies to a grey photo (R = G = B) alone; the tower's own reading, which the
    models conditioned on it learned, is passed on unchanged."""
    halved = {"noise": [[0.0, 1.0], [0.0, 0.5]]}
    plain = PerceptionModel(TINY).eval()
    mapped = PerceptionModel(dataclasses.replace(TINY, grey_strength=halved)).eval()
    mapped.load_state_dict(plain.state_dict())
    grey = torch.rand(1, 1, 96, 144).repeat(1, 3, 1, 1)
    colour = torch.rand(1, 3, 96, 144)

    def noise(model: PerceptionModel, image: torch.Tensor) -> tuple[float, torch.Tensor]:
        result = analyze(model, image)
        found = next(f for f in result.findings if f.op == "noise")
        return found.strength, result.perception.strength

    (grey_plain, tower_plain), (grey_mapped, tower_mapped) = noise(plain, grey), noise(mapped, grey)
    read = float(tower_plain[0, OP_NAMES.index("noise")])
    assert grey_plain == strength_value("noise", read)
    assert grey_mapped == strength_value("noise", read / 2)
    assert torch.equal(tower_plain, tower_mapped)
    assert noise(plain, colour)[0] == noise(mapped, colour)[0]
    for bad in ({"noise": [[0.0, 1.0]]}, {"noise": [[0.5, 0.5], [0, 1]]}, {"rainbow": [[0], [0]]}):
        with pytest.raises(VlirError, match="grey_strength"):
            PerceptionModel(dataclasses.replace(TINY, grey_strength=bad))


def test_grey_strength_fit_keeps_maps_that_help_and_writes_them(
    tmp_path: Path, tiny_training_data, capsys
) -> None:
    from vlir.perception.grey_strength import main

    data, _ = tiny_training_data
    folder = PerceptionModel(TINY).save_pretrained(tmp_path / "perception")
    argv = [str(folder), "--data", str(data), "--holdout", "1", "--ops", "noise", "jpeg"]
    main([*argv, "--check-rounds", "2", "--write"])
    kept = set()
    for line in capsys.readouterr().out.splitlines()[:2]:  # "op param error ... a -> b [kept]"
        words = line.split()
        before, after = float(words[-3 - ("kept" in words)]), float(words[-1 - ("kept" in words)])
        assert ("kept" in words) == (after <= 0.9 * before)
        kept |= {words[0]} if "kept" in words else set()
    assert set(PerceptionModel.from_pretrained(folder).config.grey_strength) == kept
    # a gain far below 0 keeps every map, whatever it does on the held-out photo
    main([*argv, "--check-rounds", "2", "--gain", "-1000", "--write"])
    maps = PerceptionModel.from_pretrained(folder).config.grey_strength
    assert set(maps) == {"noise", "jpeg"}
    assert all(reads[0] == 0 and reads[-1] == 1 for reads, _ in maps.values())
    with pytest.raises(SystemExit):
        main([str(folder), "--data", str(data), "--ops", "rainbow"])
