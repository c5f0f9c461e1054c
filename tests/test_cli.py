"""`vlir degrade` end to end, as a user runs it: real process, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from vlir.degradations import DegradationRecord
from vlir.io import load_image


def vlir(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlir.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def picture(tmp_path: Path, photo: np.ndarray) -> Path:
    path = tmp_path / "in.png"
    PILImage.fromarray(np.round(photo * 255).astype(np.uint8)).save(path)
    return path


def test_degrade_with_ops_prints_prompt_and_writes_record(tmp_path: Path, picture: Path) -> None:
    result = vlir(
        "degrade",
        picture,
        "-o",
        "out.png",
        "--ops",
        "blur sigma=1.5, noise sigma=25",
        "--record",
        "rec.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "out.png: deblur with sigma 1.5; denoise with sigma 25"
    record = DegradationRecord.from_json((tmp_path / "rec.json").read_text())
    assert record.names == ("blur", "noise")
    clean = load_image(picture).rgb
    expected = np.round(np.clip(record.apply(clean), 0, 1) * 255)
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "out.png")), expected)


def test_random_is_reproducible_by_seed(tmp_path: Path, picture: Path) -> None:
    for name in ("a.png", "b.png"):
        assert (
            vlir("degrade", picture, "-o", name, "--random", "--seed", "7", cwd=tmp_path).returncode
            == 0
        )
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_folder_in_folder_out_with_records(tmp_path: Path, picture: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        (folder / f"p{index}.png").write_bytes(picture.read_bytes())
    result = vlir("degrade", folder, "-o", "out", "--random", "--record", "recs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    for index in range(3):
        data = json.loads((tmp_path / "recs" / f"p{index}.json").read_text())
        assert data["prompt"] == DegradationRecord.from_dict(data).prompt().format()


def test_bad_inputs_fail_with_one_line_each_and_keep_going(tmp_path: Path, picture: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    result = vlir(
        "degrade",
        picture,
        tmp_path / "empty.png",
        tmp_path / "text.jpg",
        "-o",
        "out",
        "--ops",
        "jpeg quality=20",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("vlir: error:")]
    assert len(errors) == 2
    assert (tmp_path / "out" / "in.png").exists()
    assert not (tmp_path / "out" / "empty.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ops", "sparkle"], "unknown degradation"),
        (["--ops", "noise sigma=500"], "outside its range"),
        ([], "exactly one of"),
        (["--ops", "noise", "--random"], "exactly one of"),
        (["--ops", "noise", "--max-pixels", "100"], "--max-pixels"),
    ],
)
def test_bad_options_fail_cleanly(
    tmp_path: Path, picture: Path, args: list[str], message: str
) -> None:
    result = vlir("degrade", picture, "-o", "out.png", *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_never_overwrites_without_flag(tmp_path: Path, picture: Path) -> None:
    original = picture.read_bytes()
    result = vlir("degrade", picture, "-o", picture, "--ops", "noise", cwd=tmp_path)
    assert result.returncode == 1 and "is an input" in result.stderr
    assert picture.read_bytes() == original
    (tmp_path / "taken.png").write_bytes(b"keep me")
    result = vlir("degrade", picture, "-o", "taken.png", "--ops", "noise", cwd=tmp_path)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert (tmp_path / "taken.png").read_bytes() == b"keep me"
    result = vlir(
        "degrade", picture, "-o", "taken.png", "--ops", "noise", "--overwrite", cwd=tmp_path
    )
    assert result.returncode == 0 and load_image(tmp_path / "taken.png").width == 128


def test_alpha_and_16bit_survive_degrade(tmp_path: Path) -> None:
    import cv2

    deep = np.random.default_rng(0).integers(0, 65536, (32, 32, 4), dtype=np.uint16)
    deep[..., 3] = 40000
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    result = vlir("degrade", "deep.png", "-o", "out.png", "--ops", "blur sigma=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    image = load_image(tmp_path / "out.png")
    assert image.bit_depth == 16 and image.alpha is not None
    assert np.allclose(image.alpha, 40000 / 65535, atol=1e-6)


def test_a_grey_photo_is_degraded_as_stated(tmp_path: Path) -> None:
    """Noise on a grey file is one plane: sigma 25 is 25 in the grey file written (drawn
    per channel, the file's luma kept 16.8 of it)."""
    PILImage.fromarray(np.full((128, 128), 128, np.uint8)).save(tmp_path / "grey.png")
    result = vlir("degrade", "grey.png", "-o", "noisy.png", "--ops", "noise sigma=25", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = PILImage.open(tmp_path / "noisy.png")
    assert written.mode == "L"
    assert abs(float(np.asarray(written, np.float64).std()) - 25) < 1.0


def test_example_and_version(tmp_path: Path) -> None:
    assert vlir("example", "-o", "ex.png", cwd=tmp_path).returncode == 0
    assert load_image(tmp_path / "ex.png").width == 512
    version = vlir("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("vlir ")


def test_each_command_is_one_line_in_the_command_list() -> None:
    """The command list shows each docstring's first paragraph with its line breaks kept:
    a summary spread over lines read as broken sentences in ``vlir --help``."""
    from vlir.cli import app

    for command in app.registered_commands:
        summary = (command.callback.__doc__ or "").split("\n\n")[0]
        assert summary and "\n" not in summary, command.callback.__name__
