"""Classical signal statistics: each responds to the degradation it was chosen for."""

from __future__ import annotations

import dataclasses
import json
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


def _degrade(image: np.ndarray, spec: str, **params: float) -> np.ndarray:
    op = get_op(spec)
    return DegradationRecord((Step(spec, op.make(params, np.random.default_rng(0))),)).apply(image)


def _statistics(image: np.ndarray, spec: str | None = None, **params: float) -> dict[str, float]:
    if spec is not None:
        image = _degrade(image, spec, **params)
    values = signal_statistics(torch.from_numpy(image).permute(2, 0, 1)[None])[0]
    return dict(zip(FEATURE_NAMES, values.tolist(), strict=True))


def test_one_finite_value_per_name(photo: np.ndarray) -> None:
    values = signal_statistics(torch.from_numpy(photo).permute(2, 0, 1)[None].repeat(2, 1, 1, 1))
    assert values.shape == (2, DIM) == (2, len(FEATURE_NAMES))
    assert torch.isfinite(values).all()
    flat = signal_statistics(torch.full((1, 3, 32, 48), 0.5))  # no texture, one brightness
    assert torch.isfinite(flat).all()


@pytest.mark.parametrize("size", [3, 5, 7, 9])
def test_window_filters_match_pooling(size: int) -> None:
    """The shifted-sum filters are the windows pooling with stride 1 computes, borders
    shrinking (maxima exactly; means to rounding)."""
    import torch.nn.functional as F

    from vlir.perception.signal_statistics import _box, _max_filter

    x = torch.rand(2, 1, 20, 31) - 0.5
    pad = size // 2
    pooled_max = F.max_pool2d(x, size, stride=1, padding=pad)
    pooled_mean = F.avg_pool2d(x, size, stride=1, padding=pad, count_include_pad=False)
    assert torch.equal(_max_filter(x, size), pooled_max)
    assert torch.allclose(_box(x, size), pooled_mean, atol=1e-6)


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


def test_noise_slope_tells_photon_noise_from_gaussian(photo: np.ndarray) -> None:
    # photon noise: sigma ~ sqrt(brightness), slope 1/2 on log-log (texture adds some);
    # AWGN: flat
    shot = _statistics(photo, "shot_noise", peak=30)
    gaussian = _statistics(photo, "noise", sigma=40)
    assert 0.35 < shot["noise_slope"] < 0.8
    assert abs(gaussian["noise_slope"]) < 0.1
    # the same AWGN clipped as a file holds it shrinks near black and white
    clipped = _statistics(np.clip(_degrade(photo, "noise", sigma=40), 0, 1))
    assert clipped["noise_slope"] == pytest.approx(clipped["noise_slope_clipped"])
    assert gaussian["noise_slope_clipped"] != pytest.approx(gaussian["noise_slope"])


def test_edge_steepness_falls_with_blur_width(photo: np.ndarray) -> None:
    clean = _statistics(photo)
    widths = [_statistics(photo, "blur", sigma=s)["edge_steepness_7"] for s in (0.6, 1.2, 2.4)]
    assert clean["edge_steepness_7"] > widths[0] > widths[1] > widths[2]
    assert clean["edge_steepness_7"] - widths[1] > 0.4
    # horizontal motion spreads steps along x only
    motion = _statistics(photo, "motion_blur", length=11, angle=0)
    assert motion["edge_steepness_7_x"] < motion["edge_steepness_7_y"] - 0.4
    assert motion["edge_steepness_7_y"] > clean["edge_steepness_7_y"] - 0.3


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


def test_coarse_colour_ratios_see_a_cast_through_noise(photo: np.ndarray) -> None:
    """Noise added after a cast is equal in every channel (and clipped more in the channel
    the cast brightened): at full resolution the bright-pixel and spread ratios lose the
    cast's shift, averaged over blocks they keep at least half of it."""
    clean = _statistics(photo)
    cast_image = _degrade(photo, "color_cast", temperature=0.9, tint=0.0)
    cast = _statistics(cast_image)
    noisy = _statistics(_degrade(cast_image, "noise", sigma=50))
    for name in ("bright", "channel_spread"):
        for scale in ("", "_coarse"):
            key = f"{name}{scale}_r"
            kept = (noisy[key] - clean[key]) / (cast[key] - clean[key])
            assert (kept > 0.5) == (scale == "_coarse"), (key, kept)
    small = signal_statistics(torch.rand(1, 3, 16, 20))  # 2 blocks a side still
    assert torch.isfinite(small).all()


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


def test_appended_statistics_grow_a_model_without_changing_it(tmp_path) -> None:
    from vlir.errors import VlirError
    from vlir.perception.signal_statistics import FIRST_DIM
    from vlir.training.perception import init_from

    torch.manual_seed(0)
    older = PerceptionModel(
        dataclasses.replace(TINY, signal_statistics=True, signal_features=FIRST_DIM)
    )
    torch.nn.init.normal_(older.signal_in.weight)  # as if trained
    images = torch.rand(4, 3, 48, 64)
    older(images)  # training mode: BatchNorm running statistics move off identity
    older.eval()
    grown = PerceptionModel(dataclasses.replace(TINY, signal_statistics=True))
    assert grown.signal_in.weight.shape[1] == DIM > FIRST_DIM
    init_from(grown, older)
    grown.eval()
    with torch.no_grad():
        assert torch.allclose(
            grown(images).presence_logits, older(images).presence_logits, atol=1e-6
        )
    with pytest.raises(VlirError, match="more signal statistics"):
        init_from(older, grown)
    # a config saved before signal_features existed reads the first statistics
    older.save_pretrained(tmp_path / "older")
    config = tmp_path / "older" / "config.json"
    values = json.loads(config.read_text())
    del values["signal_features"]
    config.write_text(json.dumps(values))
    loaded = PerceptionModel.from_pretrained(tmp_path / "older")
    assert loaded.config.signal_features == FIRST_DIM
    with pytest.raises(VlirError, match="signal_features"):
        PerceptionModel(dataclasses.replace(TINY, signal_statistics=True, signal_features=0))
