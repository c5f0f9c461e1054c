"""Classical signal statistics: each responds to the degradation it was chosen for."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from skimage import data

from vlir.degradations import DegradationRecord, Step, get_op
from vlir.perception import PerceptionConfig, PerceptionModel
from vlir.perception.signal_statistics import DIM, FEATURE_NAMES, LUMA, signal_statistics

TINY = PerceptionConfig(widths=(8, 8, 16, 16, 16), hidden=32, embed_dim=384, deg_tokens=2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """[H, W, 3] float in [0, 1], a multiple of 8 and 12 on each side."""
    return (data.astronaut()[96:384, 96:384] / 255.0).astype(np.float32)


def _statistics(image: np.ndarray, spec: str | None = None, **params: float) -> dict[str, float]:
    if spec is not None:
        op = get_op(spec)
        record = DegradationRecord((Step(spec, op.make(params, np.random.default_rng(0))),))
        image = record.apply(image)
    values = signal_statistics(torch.from_numpy(image).permute(2, 0, 1)[None])[0]
    return dict(zip(FEATURE_NAMES, values.tolist(), strict=True))


def test_one_finite_value_per_name(photo: np.ndarray) -> None:
    values = signal_statistics(torch.from_numpy(photo).permute(2, 0, 1)[None].repeat(2, 1, 1, 1))
    assert values.shape == (2, DIM) == (2, len(FEATURE_NAMES))
    assert torch.isfinite(values).all()
    flat = signal_statistics(torch.full((1, 3, 32, 48), 0.5))  # no texture, one brightness
    assert torch.isfinite(flat).all()


def test_noise_level_reads_gaussian_sigma(photo: np.ndarray) -> None:
    clean = _statistics(photo)["noise_level_all"]
    noisy = _statistics(photo, "noise", sigma=25)["noise_level_all"]
    assert noisy > clean + 1.0
    # Immerkaer's estimator on the flat half reads roughly the sigma that reaches luma:
    # independent noise per channel, weighted by the luma coefficients
    luma_sigma = 25 * math.hypot(*LUMA)
    assert abs(math.exp(noisy) * 255 - luma_sigma) < 3


def test_shot_noise_grows_with_brightness_gaussian_does_not(photo: np.ndarray) -> None:
    def slope(stats: dict[str, float]) -> float:  # log level, brightest bins minus darkest
        return stats["noise_level_bin4"] - stats["noise_level_bin1"]

    gaussian = slope(_statistics(photo, "noise", sigma=30))
    shot = slope(_statistics(photo, "shot_noise", peak=20))
    assert shot > gaussian + 0.3


def test_jpeg_grid_and_upsampling_periodicity(photo: np.ndarray) -> None:
    clean = _statistics(photo)
    jpeg = _statistics(photo, "jpeg", quality=30)
    assert jpeg["block_grid_x"] > clean["block_grid_x"] + 0.1
    assert jpeg["block_grid_y"] > clean["block_grid_y"] + 0.1
    twice = _statistics(photo, "downsample", scale=2)
    blurred = _statistics(photo, "blur", sigma=1.2)
    assert twice["period2_step_x"] > blurred["period2_step_x"] + 0.1
    thrice = _statistics(photo, "downsample", scale=3)
    assert thrice["period3_curve_y"] > blurred["period3_curve_y"] + 0.2
    assert blurred["highpass_3"] < clean["highpass_3"] - 0.5


def test_colour_cast_moves_the_channel_ratios_by_its_gains(photo: np.ndarray) -> None:
    op = get_op("color_cast")
    params = op.make({"temperature": 0.5, "tint": 0.0}, np.random.default_rng(0))
    gains = op.gains(params)
    clean, cast = _statistics(photo), _statistics(photo, "color_cast", temperature=0.5, tint=0.0)
    # grey world: mean R / mean G scales by the gain ratio (clipping aside)
    expected = math.log(gains[0] / gains[1])
    assert abs((cast["greyworld_r"] - clean["greyworld_r"]) - expected) < 0.05
    assert cast["greyworld_b"] < clean["greyworld_b"]


def test_haze_lifts_the_dark_channel(photo: np.ndarray) -> None:
    hazy = _statistics(photo, "haze", beta=1.2, airlight=0.9)
    assert hazy["dark_channel"] > _statistics(photo)["dark_channel"] + 0.1


def test_signal_branch_starts_neutral_and_round_trips(tmp_path) -> None:
    from vlir.errors import VlirError
    from vlir.training.perception import init_from

    torch.manual_seed(0)
    plain = PerceptionModel(TINY).eval()
    model = PerceptionModel(dataclasses.replace(TINY, signal_statistics=True))
    init_from(model, plain)
    model.eval()
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(model(images).presence_logits, plain(images).presence_logits)
        torch.nn.init.normal_(model.signal_in.weight)  # as if trained
        changed = model(images).presence_logits
    assert not torch.equal(changed, plain(images).presence_logits)
    model.save_pretrained(tmp_path / "m")
    loaded = PerceptionModel.from_pretrained(tmp_path / "m")
    assert loaded.config.signal_statistics
    with torch.no_grad():
        assert torch.allclose(loaded(images).presence_logits, changed, atol=1e-6)
    wider = PerceptionModel(dataclasses.replace(TINY, hidden=64))
    with pytest.raises(VlirError):
        init_from(plain, wider)
