"""The evaluation harness follows the field's protocols and its loop resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from skimage.metrics import peak_signal_noise_ratio

from tests.conftest import shared_data
from vlir.degradations import parse_ops
from vlir.errors import VlirError
from vlir.evaluation import (
    Sample,
    get_method,
    modcrop,
    parse_task,
    psnr,
    psnr_gt_mean,
    rgb_to_y,
    ssim,
)
from vlir.evaluation.no_reference import brisque, niqe
from vlir.evaluation.report import write_sheet, write_tables
from vlir.evaluation.runner import run_benchmark


def test_psnr_agrees_with_scikit_image_on_rgb(photo: np.ndarray) -> None:
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.05, photo.shape), 0, 1)
    a, b = np.round(noisy * 255), np.round(photo * 255)
    expected = peak_signal_noise_ratio(b, a, data_range=255)
    assert psnr(noisy, photo) == pytest.approx(expected, abs=1e-9)


def test_y_channel_is_matlab_rgb2ycbcr() -> None:
    assert rgb_to_y(np.array([255.0, 255.0, 255.0])) == pytest.approx(235.0)
    assert rgb_to_y(np.array([0.0, 0.0, 0.0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([255.0, 0.0, 0.0])) == pytest.approx(16 + 65.481)


def test_shave_modcrop_and_ssim(photo: np.ndarray) -> None:
    assert modcrop(photo[:95, :127], 4).shape == (92, 124, 3)
    spoiled = photo.copy()
    spoiled[:3] = 0  # damage only the border
    assert psnr(spoiled, photo, shave=3) == float("inf")
    assert psnr(spoiled, photo) < 40
    assert ssim(photo, photo) == pytest.approx(1.0)
    assert ssim(np.clip(photo + 0.1, 0, 1), photo, channel="y") < 1.0
    with pytest.raises(ValueError, match="differ"):
        psnr(photo[:10], photo)


def test_gt_mean_psnr_forgives_the_overall_gain_only(photo: np.ndarray) -> None:
    darker = photo * 0.6
    assert psnr(darker, photo) < 20
    assert psnr_gt_mean(darker, photo) > 40  # one gain off: all of it forgiven
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.05, photo.shape), 0, 1)
    assert psnr_gt_mean(noisy * 0.6, photo) < psnr(noisy, photo) + 1  # the noise is not
    swapped = photo[..., ::-1]  # a wrong colour is not either
    assert psnr_gt_mean(swapped, photo) == pytest.approx(psnr(swapped, photo), abs=0.5)


def test_no_reference_scores_prefer_clean_images() -> None:
    from skimage import data

    clean = data.astronaut()[:288, :288].astype(np.float32) / 255
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 30 / 255, clean.shape), 0, 1)
    assert brisque(noisy) > brisque(clean) + 10
    score = niqe(clean)
    assert np.isfinite(score) and score > 0
    assert niqe(noisy) > score
    with pytest.raises(VlirError):
        niqe(clean[:50, :50])


@pytest.mark.parametrize(
    ("spec", "method"),
    [
        ("noise sigma=25", "nlm"),
        ("noise sigma=25", "tv"),
        ("haze beta=1.2", "dark_channel"),
        ("low_light exposure=0.15", "lime"),
        ("blur sigma=2", "wiener"),
        ("motion_blur length=9", "richardson_lucy"),
        ("color_cast temperature=0.8", "grey_world"),
    ],
)
def test_baselines_improve_their_task(spec: str, method: str) -> None:
    from skimage import data

    clean = data.astronaut()[100:228, 150:278].astype(np.float32) / 255
    record = parse_ops(spec, np.random.default_rng(2))
    sample = Sample("x", record.apply(clean), record)
    restored = get_method(method)(sample)
    assert restored.shape == clean.shape and restored.dtype == np.float32
    assert psnr(restored, clean) > psnr(np.clip(sample.degraded, 0, 1), clean) + 0.5


def test_denoising_baselines_estimate_sigma_when_not_told() -> None:
    """A sample with no record (a real photo, or low light's noise) has its sigma
    estimated (scikit-image's wavelet estimate: PyWavelets must be installed)."""
    from skimage import data

    clean = data.astronaut()[100:228, 150:278].astype(np.float32) / 255
    noisy = parse_ops("noise sigma=25", np.random.default_rng(2)).apply(clean)
    for method in ("nlm", "tv"):
        restored = get_method(method)(Sample("x", noisy))
        assert psnr(restored, clean) > psnr(np.clip(noisy, 0, 1), clean) + 3


def test_bm3d_when_installed(photo: np.ndarray) -> None:
    pytest.importorskip("bm3d")
    record = parse_ops("noise sigma=25", np.random.default_rng(0))
    sample = Sample("x", record.apply(photo), record)
    assert psnr(get_method("bm3d")(sample), photo) > psnr(sample.degraded, photo) + 5


def test_sr_baselines_give_the_hr_size(photo: np.ndarray) -> None:
    sample = Sample("x", photo[:24, :32], scale=4)
    assert get_method("bicubic")(sample).shape == (96, 128, 3)
    assert get_method("identity")(sample).shape == (96, 128, 3)


def test_sr_uses_the_datasets_lr_only_when_it_matches_its_hr(tmp_path: Path) -> None:
    from skimage import data

    hr = data.astronaut()[:96, :124]  # mod-4 crop: 96 x 124
    (tmp_path / "HR").mkdir()
    (tmp_path / "LR_bicubic_x2").mkdir()
    PILImage.fromarray(hr).save(tmp_path / "HR" / "a.png")
    PILImage.fromarray(hr).save(tmp_path / "HR" / "b.png")
    matching = data.astronaut()[100:148, 100:162]  # 48 x 62: its content marks it as given
    PILImage.fromarray(matching).save(tmp_path / "LR_bicubic_x2" / "a.png")
    PILImage.fromarray(data.astronaut()[:48, :63]).save(tmp_path / "LR_bicubic_x2" / "b.png")
    task = parse_task("sr:2")
    given, target = task.make(tmp_path / "HR" / "a.png", tmp_path, 0, 0)
    np.testing.assert_array_equal(np.round(given.degraded * 255), matching)
    made, target = task.make(tmp_path / "HR" / "b.png", tmp_path, 0, 1)
    assert made.degraded.shape == (48, 62, 3) and target.shape == (96, 124, 3)


def test_task_parsing() -> None:
    assert parse_task("denoise:25").name == "denoise-25"
    sr = parse_task("sr:4")
    assert (sr.channel, sr.shave, sr.scale) == ("y", 4, 4)
    assert parse_task("jpeg-y:10").channel == "grey"
    assert parse_task("noise+blur").ops == ("noise", "blur")
    for bad in ("denoise", "sr:5", "denoise:200", "sparkle", "rain:3"):
        with pytest.raises(VlirError):
            parse_task(bad)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    from skimage import data

    folder = tmp_path / "tiny"
    folder.mkdir()
    for index, image in enumerate((data.astronaut(), data.chelsea(), data.coffee())):
        PILImage.fromarray(image[:64, :96]).save(folder / f"img{index}.png")
    return folder


def test_runner_writes_reports_and_resumes(tmp_path: Path, tiny_dataset: Path) -> None:
    task = parse_task("denoise:15")
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = run_benchmark(task, tiny_dataset, ["identity", "tv"], out, cache=cache)
    assert [m.name for m in result.methods] == ["identity", "tv"]
    assert result.methods[1].mean("psnr") > result.methods[0].mean("psnr")
    assert result.methods[0].mean("psnr") == pytest.approx(24.6, abs=0.6)
    table = write_tables(result).read_text()
    assert "| tv (oracle) | 3 |" in table and "standard protocol" in table
    assert (out / "results.csv").exists() and (out / "per_image.csv").exists()
    write_sheet(result, 2, cache)
    assert PILImage.open(out / "sheet.png").size[0] > 0
    assert "data:image/png;base64," in (out / "sheet.html").read_text()

    stamp = (out / "results" / "tv" / "img0.json").stat().st_mtime_ns
    again = run_benchmark(task, tiny_dataset, ["identity", "tv"], out, cache=cache)
    assert (out / "results" / "tv" / "img0.json").stat().st_mtime_ns == stamp
    assert again.methods[1].per_image == result.methods[1].per_image
    with pytest.raises(VlirError, match="another run"):
        run_benchmark(parse_task("denoise:50"), tiny_dataset, ["identity"], out, cache=cache)


def test_low_light_runs_report_the_gt_mean_psnr(tmp_path: Path, tiny_dataset: Path) -> None:
    out = tmp_path / "run"
    result = run_benchmark(
        parse_task("low_light"), tiny_dataset, ["identity", "lime"], out, cache=tmp_path / "c"
    )
    identity = result.methods[0]
    # The dark input, brightened to the right mean, is far nearer than as it is.
    assert identity.mean("psnr_gt_mean") > identity.mean("psnr") + 5
    table = write_tables(result).read_text()
    assert "GT-mean PSNR" in table
    assert "psnr_gt_mean" in (out / "per_image.csv").read_text().splitlines()[0]
    # A run resumed from results without it says so rather than averaging some images.
    stored = out / "results" / "identity" / "img0.json"
    row = json.loads(stored.read_text())
    del row["psnr_gt_mean"]
    stored.write_text(json.dumps(row))
    again = run_benchmark(
        parse_task("low_light"), tiny_dataset, ["identity"], out, cache=tmp_path / "c"
    )
    assert np.isnan(again.methods[0].mean("psnr_gt_mean"))
    denoised = run_benchmark(
        parse_task("denoise:15"), tiny_dataset, ["identity"], tmp_path / "d", cache=tmp_path / "c"
    )
    assert "GT-mean" not in write_tables(denoised).read_text()


def test_methods_see_identical_cached_inputs(tmp_path: Path, tiny_dataset: Path) -> None:
    task = parse_task("rain+noise")
    cache = tmp_path / "cache"
    run_benchmark(task, tiny_dataset, ["identity"], tmp_path / "a", cache=cache)
    run_benchmark(task, tiny_dataset, ["identity"], tmp_path / "b", cache=cache)
    for name in ("img0", "img1", "img2"):
        a = (tmp_path / "a" / "outputs" / "identity" / f"{name}.png").read_bytes()
        assert a == (tmp_path / "b" / "outputs" / "identity" / f"{name}.png").read_bytes()
    stored = next(cache.rglob("img0.npz"))
    with np.load(stored) as data:
        assert "rain" in str(data["record"])


def test_eval_cli(tmp_path: Path, tiny_dataset: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlir.cli",
            "eval",
            "--task",
            "haze",
            "--data",
            str(tiny_dataset),
            "--baselines",
            "-o",
            str(tmp_path / "out"),
            "--cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "dark_channel" in result.stdout and "in-project synthetic" in result.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlir.cli",
            "eval",
            "--task",
            "haze",
            "--data",
            str(tmp_path / "missing"),
            "-m",
            "identity",
            "-o",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_protocol_live1_jpeg_q10_matches_published(tmp_path: Path) -> None:
    live1 = shared_data("eval", "LIVE1")
    result = run_benchmark(
        parse_task("jpeg-y:10"), live1, ["identity"], tmp_path / "o", cache=tmp_path / "c"
    )
    assert result.methods[0].mean("psnr") == pytest.approx(27.77, abs=0.05)


def test_protocol_set5_x4_bicubic_matches_published(tmp_path: Path) -> None:
    set5 = shared_data("eval", "Set5")
    result = run_benchmark(
        parse_task("sr:4"), set5, ["bicubic"], tmp_path / "o", cache=tmp_path / "c"
    )
    assert result.methods[0].mean("psnr") == pytest.approx(28.42, abs=0.1)
    assert json.loads((tmp_path / "o" / "run.json").read_text())["task"] == "sr-x4"


def test_checkpoints_as_methods(tmp_path: Path) -> None:
    from vlir.perception import PerceptionConfig, PerceptionModel

    PerceptionModel(PerceptionConfig(widths=(8, 8, 8, 8, 8), hidden=16)).save_pretrained(
        tmp_path / "p"
    )
    with pytest.raises(VlirError, match="does not restore"):
        get_method(str(tmp_path / "p"))
    with pytest.raises(VlirError, match="not a baseline"):
        get_method("no-such-method")


def test_a_mean_psnr_stays_finite_where_an_output_is_exact() -> None:
    from vlir.evaluation.runner import PSNR_CAP, MethodResult

    result = MethodResult("m", False, [{"psnr": float("inf")}, {"psnr": 30.0}, {"psnr": None}])
    assert result.mean("psnr") == pytest.approx((PSNR_CAP + 30.0) / 2)
    assert MethodResult("m", False, [{"ssim": 0.5}, {"ssim": 1.0}]).mean("ssim") == 0.75
