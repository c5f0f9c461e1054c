"""The ops do what they say, deterministically, and records rebuild every target."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlir.degradations import (
    OPS,
    DegradationPipeline,
    DegradationRecord,
    RestorationPrompt,
    Step,
    get_op,
    imresize,
    parse_ops,
)
from vlir.degradations.jpeg import jpeg_roundtrip
from vlir.errors import VlirError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


@pytest.mark.parametrize("sigma", [5, 15, 25, 50, 75])
def test_gaussian_noise_std_matches_sigma(sigma: int) -> None:
    flat = np.full((256, 256, 3), 0.5, np.float32)
    noisy = get_op("noise").apply(flat, get_op("noise").params_type(sigma=sigma, seed=3))
    measured = float((noisy - flat).std() * 255)
    assert abs(measured - sigma) <= 0.05 * sigma


def test_gaussian_noise_is_not_clipped() -> None:
    black = np.zeros((64, 64, 3), np.float32)
    noisy = get_op("noise").apply(black, get_op("noise").params_type(sigma=25, seed=0))
    assert noisy.min() < 0  # AWGN protocol: noise added in float, no clipping


def test_shot_noise_variance_grows_with_brightness() -> None:
    op = get_op("shot_noise")
    params = op.params_type(peak=50, seed=1)
    for level in (0.2, 0.8):
        flat = np.full((200, 200, 3), level, np.float32)
        variance = float((op.apply(flat, params) - flat).var())
        assert variance == pytest.approx(level / 50, rel=0.05)


def test_a_grey_photo_gets_one_plane_of_noise_and_stays_grey(photo: np.ndarray) -> None:
    """A black-and-white photo's grain is one plane, as its file is: drawn per channel and
    saved grey, sigma-25 noise came out 16.8. Colour photos draw as they always did (the
    same bytes from the same records)."""
    from vlir.degradations.base import rng_for
    from vlir.io import grey_rgb, is_grey, luma

    grey = grey_rgb(photo)
    for ops in ("noise sigma=25", "shot_noise peak=30", "low_light exposure=0.2", "jpeg"):
        degraded = parse_ops(ops, np.random.default_rng(0)).apply(grey)
        assert is_grey(degraded), ops
        assert not is_grey(parse_ops(ops, np.random.default_rng(0)).apply(photo)), ops
    flat = np.full((256, 256, 3), 0.5, np.float32)
    noise = get_op("noise")
    noisy = noise.apply(flat, noise.params_type(sigma=25, seed=3))
    assert abs(float((luma(noisy) - 0.5).std()) * 255 - 25) < 0.5  # what a grey file keeps
    quality = get_op("jpeg").params_type(quality=20)
    one_channel = jpeg_roundtrip(grey[..., 0], 20)  # a grey photo's JPEG has one channel
    assert np.array_equal(get_op("jpeg").apply(grey, quality)[..., 1], one_channel)
    colour = noise.apply(photo, noise.params_type(sigma=25, seed=3))
    drawn = rng_for(3).standard_normal(photo.shape, dtype=np.float32)
    assert np.array_equal(colour, photo + drawn * np.float32(25 / 255.0))


def test_every_op_but_a_colour_cast_keeps_a_grey_photo_exactly_grey(photo: np.ndarray) -> None:
    """Filters run over three equal channels can round them apart (bicubic by 3: 1e-7), and
    a grey photo read as colour loses its grey strengths and thresholds in ``analyze``."""
    from vlir.io import grey_rgb, is_grey

    grey = grey_rgb(photo)
    rng = np.random.default_rng(0)
    for name in OPS:
        for _ in range(3):
            step = parse_ops(name, rng).steps[0]
            assert is_grey(DegradationRecord((step,)).apply(grey)) != (name == "color_cast"), step
    assert is_grey(parse_ops("downsample scale=3, blur sigma=1.3", rng).apply(grey))


def test_jpeg_low_quality_is_measurably_worse(photo: np.ndarray) -> None:
    op = get_op("jpeg")
    worst = psnr(op.apply(photo, op.params_type(quality=10)), photo)
    best = psnr(op.apply(photo, op.params_type(quality=90)), photo)
    assert best > worst + 5


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("blur", {"sigma": 0.3}),
        ("blur", {"sigma": 4.0}),
        ("defocus", {"radius": 1.0}),
        ("defocus", {"radius": 7.3}),
        ("motion_blur", {"length": 3, "angle": 0, "seed": 1}),
        ("motion_blur", {"length": 31, "angle": 120, "seed": 9}),
    ],
)
def test_blur_kernels_sum_to_one(name: str, values: dict) -> None:
    op = get_op(name)
    kernel = op.kernel(op.params_type(**values))
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert (kernel >= 0).all()
    assert kernel.shape[0] % 2 == 1 and kernel.shape[0] == kernel.shape[1]


@pytest.mark.parametrize("angle", [0, 45, 90, 150])
def test_motion_kernel_extends_along_its_angle(angle: int) -> None:
    op = get_op("motion_blur")
    kernel = op.kernel(op.params_type(length=21, angle=angle, seed=5))
    ys, xs = np.nonzero(kernel > 1e-4)
    theta = np.radians(angle)
    along = (xs - xs.mean()) * np.cos(theta) - (ys - ys.mean()) * np.sin(theta)
    across = (xs - xs.mean()) * np.sin(theta) + (ys - ys.mean()) * np.cos(theta)
    assert 18 <= np.ptp(along) <= 23
    assert np.ptp(across) < np.ptp(along)


def test_blur_preserves_mean_brightness(photo: np.ndarray, rng: np.random.Generator) -> None:
    for name in ("blur", "motion_blur", "defocus"):
        op = get_op(name)
        blurred = op.apply(photo, op.sample(rng))
        assert blurred.mean() == pytest.approx(photo.mean(), abs=2e-3)


@pytest.mark.parametrize("name", list(OPS))
def test_each_op_is_deterministic_and_changes_the_image(
    name: str, photo: np.ndarray, rng: np.random.Generator
) -> None:
    op = get_op(name)
    params = op.sample(rng)
    first, second = op.apply(photo, params), op.apply(photo.copy(), params)
    assert first.dtype == np.float32
    assert first.tobytes() == second.tobytes()
    assert not np.allclose(first, photo, atol=1e-3)


@pytest.mark.parametrize("name", list(OPS))
def test_sampled_params_lie_in_documented_ranges(name: str) -> None:
    op = get_op(name)
    generator = np.random.default_rng(0)
    for _ in range(50):
        op.validate(op.sample(generator))  # raises if out of range


def test_same_seed_gives_same_bytes(photo: np.ndarray) -> None:
    pipeline = DegradationPipeline()
    a, record_a = pipeline(photo, np.random.default_rng(99))
    b, record_b = pipeline(photo, np.random.default_rng(99))
    assert record_a == record_b
    assert a.tobytes() == b.tobytes()
    c, _ = pipeline(photo, np.random.default_rng(100))
    assert a.shape != c.shape or a.tobytes() != c.tobytes()


def test_record_json_rebuilds_the_same_bytes(photo: np.ndarray) -> None:
    pipeline = DegradationPipeline(max_ops=4)
    generator = np.random.default_rng(5)
    for _ in range(10):
        degraded, record = pipeline(photo, generator)
        rebuilt = DegradationRecord.from_json(record.to_json())
        assert rebuilt == record
        assert rebuilt.apply(photo).tobytes() == degraded.tobytes()


def test_pipeline_order_and_families() -> None:
    pipeline = DegradationPipeline(max_ops=3)
    generator = np.random.default_rng(0)
    seen: set[str] = set()
    for _ in range(300):
        record = pipeline.sample(generator)
        orders = [OPS[name].order for name in record.names]
        families = [OPS[name].family for name in record.names]
        assert 1 <= len(record.names) <= 3
        assert orders == sorted(orders)
        assert len(set(families)) == len(families)
        seen.update(record.names)
    assert seen == set(OPS)


def test_op_weights_shift_the_draw_and_unknown_names_are_refused() -> None:
    def share(weights: dict[str, float] | None) -> float:
        pipeline = DegradationPipeline(max_ops=1, weights=weights)
        generator = np.random.default_rng(0)
        draws = [pipeline.sample(generator).names[0] for _ in range(600)]
        return draws.count("haze") / len(draws)

    even, weighted = share(None), share({"haze": 3.0})
    assert 0.04 < even < 0.14  # one op in eleven
    assert weighted > 2 * even
    with pytest.raises(VlirError, match="hazy"):
        DegradationPipeline(weights={"hazy": 2.0})


def test_denoise_only_target_is_the_blurred_image(photo: np.ndarray) -> None:
    record = parse_ops("blur sigma=2, noise sigma=30", np.random.default_rng(0))
    target = record.partial_target(photo, RestorationPrompt.parse("denoise"))
    blurred = get_op("blur").apply(photo, record.steps[0].params)
    assert target.tobytes() == blurred.tobytes()
    assert record.partial_target(photo, RestorationPrompt.blind_prompt()).tobytes() == (
        photo.tobytes()
    )


def test_partial_target_equals_applying_the_remaining_ops(
    photo: np.ndarray, rng: np.random.Generator
) -> None:
    pipeline = DegradationPipeline(min_ops=3, max_ops=3)
    for _ in range(5):
        record = pipeline.sample(rng)
        for removed in record.names:
            target = record.partial_target(photo, RestorationPrompt.removing([removed]))
            expected = photo
            for step in record.steps:
                if step.op != removed:
                    expected = get_op(step.op).apply(expected, step.params)
            assert target.tobytes() == np.asarray(expected, np.float32).tobytes()


def test_stated_sigma_below_the_true_one_leaves_the_rest() -> None:
    flat = np.full((256, 256, 3), 0.5, np.float32)
    record = parse_ops("noise sigma=50 seed=4", np.random.default_rng(0))
    target = record.partial_target(flat, RestorationPrompt.parse("denoise with sigma 30"))
    assert float((target - flat).std() * 255) == pytest.approx(40, rel=0.05)
    full = record.partial_target(flat, RestorationPrompt.parse("denoise with sigma 60"))
    assert full.tobytes() == flat.tobytes()


def test_record_prompt_and_names(rng: np.random.Generator) -> None:
    record = parse_ops("blur sigma=1.5, noise sigma=25", rng)
    assert record.prompt().format() == "deblur with sigma 1.5; denoise with sigma 25"
    assert record.names == ("blur", "noise")


def test_parse_ops_errors() -> None:
    generator = np.random.default_rng(0)
    with pytest.raises(VlirError, match="unknown degradation"):
        parse_ops("sparkle amount=3", generator)
    with pytest.raises(VlirError, match="outside its range"):
        parse_ops("noise sigma=90", generator)
    with pytest.raises(VlirError, match="has no parameter"):
        parse_ops("noise level=3", generator)
    with pytest.raises(VlirError, match="key=value"):
        parse_ops("noise 25", generator)
    with pytest.raises(VlirError, match="not a valid int"):
        parse_ops("jpeg quality=3.5", generator)


def test_record_rejects_bad_json() -> None:
    with pytest.raises(VlirError):
        DegradationRecord.from_json("{not json")
    with pytest.raises(VlirError):
        DegradationRecord.from_json('{"steps": [{"op": "noise"}]}')


def test_downsample_without_resize_back_changes_size(photo: np.ndarray) -> None:
    record = DegradationRecord((Step("downsample", get_op("downsample").params_type(4, False)),))
    assert record.apply(photo).shape == (24, 32, 3)
    assert get_op("downsample").apply(photo, get_op("downsample").params_type(4)).shape == (
        photo.shape
    )


def test_imresize_keeps_constants_and_shapes() -> None:
    flat = np.full((30, 45, 3), 0.25, np.float32)
    assert np.allclose(imresize(flat, 1 / 3), 0.25, atol=1e-6)
    assert imresize(flat, 1 / 3).shape == (10, 15, 3)
    assert imresize(flat, 2).shape == (60, 90, 3)
    assert imresize(flat[..., 0], size=(7, 9)).shape == (7, 9)


def test_imresize_matches_the_matlab_made_set5_inputs() -> None:
    from PIL import Image

    from tests.conftest import shared_data

    root = shared_data("eval", "Set5")
    for scale in (2, 3, 4):
        for hr_path in sorted((root / "HR").glob("*.png")):
            hr = np.asarray(Image.open(hr_path).convert("RGB"), np.float32)
            lr = np.asarray(
                Image.open(root / f"LR_bicubic_x{scale}" / hr_path.name).convert("RGB"),
                np.float32,
            )
            h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
            # MATLAB resizes uint8 one axis at a time, rounding half away from zero each time.
            rows = np.clip(np.floor(imresize(hr[:h, :w], size=(h // scale, w)) + 0.5), 0, 255)
            ours = np.clip(np.floor(imresize(rows, size=(h // scale, w // scale)) + 0.5), 0, 255)
            inner = np.abs(ours - lr)[2:-2, 2:-2]  # the files' borders were made differently
            assert inner.max() <= 1
            assert (inner == 0).mean() > 0.99


def test_params_are_frozen_records() -> None:
    params = get_op("noise").params_type(sigma=10, seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.sigma = 3  # type: ignore[misc]
