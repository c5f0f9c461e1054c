"""Perception's image-level head: its evidence, its fit, and a checkpoint that carries it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.test_perception import TINY
from vlir.degradations import OP_NAMES
from vlir.errors import VlirError
from vlir.perception import PerceptionModel, analyze, fit_image_head, image_head
from vlir.perception import signal_statistics as signals
from vlir.perception.analyze import read_tiles
from vlir.perception.calibrate import best_thresholds
from vlir.perception.image_head import ImageHead, evidence_dim, fit_head, image_evidence

WITH_STATISTICS = dataclasses.replace(TINY, signal_statistics=True)


def test_evidence_pools_the_tiles_and_reads_the_whole_photo_at_two_scales() -> None:
    ops, features = 3, 10
    tile_logits = torch.tensor([[1.0, -2.0, 0.0], [3.0, -4.0, 0.0]])  # [T=2, N=3]
    image = torch.rand(1, 3, 64, 96)
    evidence = image_evidence(tile_logits, image, features)[0]
    assert evidence.shape == (evidence_dim(ops, features),)
    pooled = evidence[: 4 * ops].view(4, ops)
    assert pooled.tolist() == [[2, -3, 0], [3, -2, 0], [1, -4, 0], [1, 1, 0]]
    whole = signals.signal_statistics(image)[0, :features]
    half = signals.signal_statistics(torch.nn.functional.avg_pool2d(image, 2))[0, :features]
    assert torch.allclose(evidence[4 * ops : 4 * ops + features], whole)
    assert torch.allclose(evidence[4 * ops + features :], half, atol=1e-5)


def test_a_large_photo_is_read_on_a_centre_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_head, "WHOLE_SIDE", 64)
    image = torch.rand(1, 3, 100, 200)
    centre = image[..., 18:82, 68:132]
    logits = torch.zeros(1, 2)
    assert torch.equal(image_evidence(logits, image, 5), image_evidence(logits, centre, 5))


@pytest.mark.parametrize("hidden", [0, 16])
def test_the_fitted_head_finds_what_the_evidence_shows(hidden: int) -> None:
    generator = torch.Generator().manual_seed(0)
    evidence = torch.randn(600, 6, generator=generator) * torch.tensor([1, 2, 5, 1, 1, 1.0])
    evidence[:, 3] += 7.0  # standardised away by the head, not by the caller
    truth = torch.stack([evidence[:, 2] > 0, evidence[:, 0] + evidence[:, 1] > 0.5], 1).float()
    head = fit_head(evidence[:400], truth[:400], hidden)
    with torch.no_grad():
        found = head(evidence[400:]) > 0
    accuracy = (found == truth[400:].bool()).float().mean(0)
    assert (accuracy > 0.95).all(), accuracy
    assert torch.allclose(head.evidence_mean, evidence[:400].mean(0))


def test_a_model_with_an_image_head_decides_with_it_and_keeps_it_at_full_precision(
    tmp_path: Path,
) -> None:
    config = dataclasses.replace(WITH_STATISTICS, image_head=0)
    model = PerceptionModel(config).eval()
    assert isinstance(model.image_head, ImageHead)
    haze = OP_NAMES.index("haze")
    with torch.no_grad():
        model.image_head.net.weight.zero_()
        model.image_head.net.bias.fill_(-20.0)
        model.image_head.net.bias[haze] = 20.0
    image = torch.rand(1, 3, 120, 200)
    assert [f.op for f in analyze(model, image).found] == ["haze"]
    # without the head, the same tower decides from its tiles alone
    plain = PerceptionModel(WITH_STATISTICS).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    by_op = {f.op: f.probability for f in analyze(plain, image).findings}
    assert 0.01 < by_op["haze"] < 0.99

    folder = model.save_pretrained(tmp_path / "p", dtype=torch.float16)
    stored = load_file(str(folder / "model.safetensors"))
    assert stored["image_head.evidence_scale"].dtype == torch.float32
    assert stored["presence.weight"].dtype == torch.float16
    loaded = PerceptionModel.from_pretrained(folder)
    assert loaded.config.image_head == 0
    assert [f.op for f in analyze(loaded, image).found] == ["haze"]


def test_the_head_blends_with_the_tiles_and_leaves_tile_ops_to_them() -> None:
    config = dataclasses.replace(WITH_STATISTICS, image_head=0, head_blend=0.25, tile_ops=("haze",))
    model = PerceptionModel(config).eval()
    with torch.no_grad():
        model.image_head.net.weight.zero_()
        model.image_head.net.bias.fill_(4.0)
    image = torch.rand(1, 3, 120, 200)
    by_op = {f.op: f.probability for f in analyze(model, image).findings}
    with torch.no_grad():
        tiles = read_tiles(model, image)[0].presence_logits.mean(0)  # [N]
    expected = torch.sigmoid(0.75 * 4.0 + 0.25 * tiles)
    haze, rain = OP_NAMES.index("haze"), OP_NAMES.index("rain")
    assert by_op["rain"] == pytest.approx(expected[rain].item(), abs=1e-5)
    assert by_op["haze"] == pytest.approx(torch.sigmoid(tiles[haze]).item(), abs=1e-5)
    assert by_op["rain"] != pytest.approx(by_op["haze"], abs=0.05)


def test_an_image_head_needs_the_signal_statistics_and_known_tile_ops() -> None:
    with pytest.raises(VlirError, match="needs signal_statistics"):
        PerceptionModel(dataclasses.replace(TINY, image_head=0))
    with pytest.raises(VlirError, match="tile_ops names an op it has not: fog"):
        PerceptionModel(dataclasses.replace(WITH_STATISTICS, image_head=0, tile_ops=("fog",)))
    with pytest.raises(VlirError, match="head_blend must be from 0 to 1"):
        PerceptionModel(dataclasses.replace(WITH_STATISTICS, image_head=0, head_blend=1.5))
    with pytest.raises(VlirError, match="a grey head needs an image head"):
        PerceptionModel(dataclasses.replace(WITH_STATISTICS, grey_head=True))


def test_fitting_a_checkpoints_head_writes_a_calibrated_model(
    tmp_path: Path, tiny_training_data
) -> None:
    data, _ = tiny_training_data
    base = PerceptionModel(WITH_STATISTICS).save_pretrained(tmp_path / "base")
    cache = tmp_path / "evidence.pt"
    arguments = ["--data", str(data), "--holdout", "1", "--rounds", "1", "--hidden", "0"]
    arguments += ["--folds", "2", "--check-rounds", "1", "--evidence", str(cache)]
    fit_image_head.main([str(base), "--out", str(tmp_path / "head"), *arguments])
    fitted = PerceptionModel.from_pretrained(tmp_path / "head")
    assert fitted.config.image_head == 0 and fitted.config.thresholds is not None
    assert fitted.config.tile_ops == ("low_light",) and fitted.config.head_blend == 0.5
    evidence, truth, photo, grey = torch.load(cache).values()
    assert not grey.any() and fitted.config.grey_thresholds is None
    # the two training photos (one of three is held out), each as it is, with every single
    # op, 4 pairs and 2 triples
    draws = 1 + len(OP_NAMES) + 4 + 2
    assert truth.shape == (2 * draws, len(OP_NAMES))
    assert (truth.sum(1) == 0).sum() == 2 and (truth.sum(1) == 3).sum() == 2 * 2
    assert evidence.shape == (len(truth), evidence_dim(len(OP_NAMES), signals.DIM))
    assert photo.tolist() == [0] * draws + [1] * draws
    # thresholds come from heads that never saw the photo they score
    weights = fitted.image_head.tile_weight.tolist()
    scored = fit_image_head.out_of_fold((evidence, truth, photo, grey), 0, 1e-4, 2, weights)
    other = fit_head(evidence[draws:], truth[draws:], 0)
    head = ImageHead(evidence.shape[1], len(OP_NAMES), 0, weights)
    head.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.allclose(scored[:draws], head(evidence[:draws]))
    capped = best_thresholds(truth.numpy(), torch.sigmoid(scored).numpy(), clean_rate=0.002)
    assert fitted.config.thresholds == pytest.approx(capped)
    # the tower is the base's, to the bit of its half-precision copy
    tower = PerceptionModel.from_pretrained(base)
    for key, value in tower.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(fitted.state_dict()[key], value.half().float()), key
    # a second fit reads the cached evidence
    fit_image_head.main([str(base), "--out", str(tmp_path / "again"), *arguments])
    again = PerceptionModel.from_pretrained(tmp_path / "again")
    assert torch.equal(again.image_head.net.weight, fitted.image_head.net.weight)
    assert torch.is_grad_enabled()  # the command leaves the process as it found it
    # a grey round: its draws are of the photos turned grey, one plane
    grey_cache = tmp_path / "grey.pt"
    grey = [*arguments[:-1], str(grey_cache), "--grey-rounds", "1"]
    fit_image_head.main([str(base), "--out", str(tmp_path / "grey"), *grey])
    grey_evidence, grey_truth, grey_photo, grey_draws = torch.load(grey_cache).values()
    assert torch.equal(grey_truth, truth) and not torch.equal(grey_evidence, evidence)
    # a draw is grey as analyze tells: a colour cast makes a grey photo a colour one
    tinted = grey_truth[:, OP_NAMES.index("color_cast")] == 1
    assert torch.equal(grey_draws, ~tinted)
    # both versions read together: each version's thresholds are set on its own draws
    both = [*arguments[:-1], str(cache), str(grey_cache)]
    fit_image_head.main([str(base), "--out", str(tmp_path / "both"), *both])
    joined = fit_image_head.load_evidence([cache, grey_cache], tower)
    scored = torch.sigmoid(fit_image_head.out_of_fold(joined, 0, 1e-4, 2, weights)).numpy()
    truth_both, grey_rows = joined[1].numpy(), joined[3].numpy()
    config = PerceptionModel.from_pretrained(tmp_path / "both").config
    assert config.thresholds == pytest.approx(
        best_thresholds(truth_both[~grey_rows], scored[~grey_rows], clean_rate=0.002)
    )
    assert config.grey_thresholds == pytest.approx(
        best_thresholds(truth_both[grey_rows], scored[grey_rows], clean_rate=0.002)
    )
    # a grey head added to the colour-only fit: colour photos read exactly as before
    added = [*arguments[:-1], str(grey_cache), "--grey-head"]
    fit_image_head.main([str(tmp_path / "head"), "--out", str(tmp_path / "added"), *added])
    with_grey = PerceptionModel.from_pretrained(tmp_path / "added")
    assert with_grey.config.grey_head and with_grey.config.thresholds == fitted.config.thresholds
    for key, value in fitted.state_dict().items():
        assert torch.equal(with_grey.state_dict()[key], value), key
    grey_only = tuple(x[grey_draws] for x in (grey_evidence, grey_truth, grey_photo, grey_draws))
    scored = torch.sigmoid(fit_image_head.out_of_fold(grey_only, 0, 1e-4, 2, weights))
    assert with_grey.config.grey_thresholds == pytest.approx(
        best_thresholds(grey_only[1].numpy(), scored.numpy(), clean_rate=0.002)
    )
    own = fit_head(grey_only[0], grey_only[1], 0)
    assert torch.allclose(with_grey.grey_image_head.net.weight, own.net.weight)
    photo_grey = torch.rand(1, 1, 64, 96).expand(-1, 3, -1, -1)
    photo_colour = torch.rand(1, 3, 64, 96)
    for image, head in ((photo_grey, with_grey.grey_image_head), (photo_colour, fitted.image_head)):
        local, view = read_tiles(with_grey, image)
        expected = torch.sigmoid(head(image_evidence(local.presence_logits, view, signals.DIM)))
        by_op = {f.op: f.probability for f in analyze(with_grey, image).findings}
        assert [by_op[name] for name in OP_NAMES] == pytest.approx(expected[0].tolist(), abs=1e-5)
    with pytest.raises(VlirError, match="needs grey draws"):
        fit_image_head.main(
            [str(tmp_path / "head"), "--out", str(tmp_path / "x"), *arguments, "--grey-head"]
        )
    with pytest.raises(VlirError, match="adds to a perception with an image head"):
        fit_image_head.main([str(base), "--out", str(tmp_path / "x"), *added])
    # refitting one head leaves no grey head behind
    fit_image_head.main([str(tmp_path / "added"), "--out", str(tmp_path / "refit"), *arguments])
    refit = PerceptionModel.from_pretrained(tmp_path / "refit")
    assert not refit.config.grey_head and refit.grey_image_head is None
    with pytest.raises(VlirError, match="--grey-rounds must be from 0 to --rounds"):
        fit_image_head.main(
            [str(base), "--out", str(tmp_path / "x"), *arguments[:-2], "--grey-rounds", "2"]
        )
    # held-out F1 thresholds would undo the clean-photo cap: measured, never written
    from vlir.perception.calibrate import calibrate_checkpoint

    with pytest.raises(VlirError, match="keeps the thresholds its fit set"):
        calibrate_checkpoint(tmp_path / "head", data, 1, rounds=1)
    assert PerceptionModel.from_pretrained(tmp_path / "head").config == fitted.config


def test_fitting_refuses_a_perception_without_statistics_or_foreign_evidence(
    tmp_path: Path,
) -> None:
    base = PerceptionModel(TINY).save_pretrained(tmp_path / "base")
    with pytest.raises(VlirError, match="reads signal statistics"):
        fit_image_head.main([str(base), "--out", str(tmp_path / "out")])
    base = PerceptionModel(WITH_STATISTICS).save_pretrained(tmp_path / "with")
    cache = tmp_path / "evidence.pt"
    foreign = {"evidence": torch.zeros(4, 7), "truth": torch.zeros(4, len(OP_NAMES))}
    torch.save(foreign, cache)
    out = ["--out", str(tmp_path / "out")]
    with pytest.raises(VlirError, match="not evidence this command wrote"):
        fit_image_head.main([str(base), *out, "--evidence", str(cache)])
    torch.save({**foreign, "photo": torch.zeros(4, dtype=torch.long)}, cache)
    with pytest.raises(VlirError, match="not evidence this command wrote"):  # no grey flags
        fit_image_head.main([str(base), *out, "--evidence", str(cache)])
    foreign = {**foreign, "photo": torch.zeros(4, dtype=torch.long), "grey": torch.zeros(4) > 0}
    torch.save(foreign, cache)
    with pytest.raises(VlirError, match="evidence of another perception"):
        fit_image_head.main([str(base), *out, "--evidence", str(cache)])
    with pytest.raises(VlirError, match="no such evidence"):
        fit_image_head.main([str(base), *out, "--evidence", str(cache), str(tmp_path / "x.pt")])
    with pytest.raises(VlirError, match="no such folder of training photos"):
        fit_image_head.main([str(base), *out, "--data", str(tmp_path / "nowhere")])
    assert not (tmp_path / "out").exists()


def test_training_starts_from_a_model_with_a_head_and_leaves_the_head_behind() -> None:
    from vlir.training.perception import init_from

    fitted = PerceptionModel(dataclasses.replace(WITH_STATISTICS, image_head=0)).eval()
    tower = PerceptionModel(WITH_STATISTICS).eval()
    init_from(tower, fitted)
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(tower(images).presence_logits, fitted(images).presence_logits)
    assert tower.image_head is None


def test_each_version_sets_its_own_thresholds_under_the_clean_photo_cap() -> None:
    # one op: colour photos read it at 0.8 where present and 0.2 where not; the grey
    # photos' clean draws read it at 0.85, which one shared cap would make the colour
    # photos pay for with a threshold above 0.85
    truth = np.array([1, 1, 0, 0, 1, 1, 0, 0], float)[:, None]
    probability = np.array([0.8, 0.8, 0.2, 0.2, 0.9, 0.9, 0.85, 0.85])[:, None]
    grey = np.array([False] * 4 + [True] * 4)
    shared = best_thresholds(truth, probability, clean_rate=0.0)
    assert shared[0] > 0.85
    colour, grey_thresholds = fit_image_head.version_thresholds(truth, probability, grey, 0.0)
    assert 0.2 < colour[0] <= 0.8 and grey_thresholds is not None
    assert 0.85 < grey_thresholds[0] <= 0.9
    assert fit_image_head.version_thresholds(truth, probability, grey & False, 0.0) == (
        shared,
        None,
    )
