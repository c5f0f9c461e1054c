"""`vlir serve`: the service behind the page, and the page itself over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.test_restoration import tiny_checkpoints  # noqa: F401 (a fixture)
from vlir.errors import VlirError
from vlir.io import Image, load_image, save_image, to_tensor
from vlir.pipeline import Restorer
from vlir.serve import Service, findings_markdown, preview, upload_limit


@pytest.fixture
def service(tiny_checkpoints: Path, tmp_path: Path) -> Service:  # noqa: F811
    return Service(Restorer.from_pretrained(tiny_checkpoints), tmp_path / "served")


def noisy(photo: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 30 / 255, photo.shape)
    return np.clip(photo + noise, 0, 1).astype(np.float32)


def test_a_restored_upload_is_the_file_the_cli_writes(
    service: Service, tmp_path: Path, photo: np.ndarray
) -> None:
    upload = tmp_path / "portrait.png"
    alpha = np.linspace(0, 1, photo.shape[1], dtype=np.float32)[None].repeat(photo.shape[0], 0)
    save_image(upload, Image(rgb=noisy(photo), alpha=alpha, bit_depth=16))
    passes: list[tuple[int, int]] = []
    served = service.restore(
        str(upload),
        prompt=" denoise ",
        semantic="",
        strength=0.8,
        progress=lambda done, total: passes.append((done, total)),
    )
    # a small photo, untiled; clipped at 0 and 1 (sigma-30 noise on a white suit), so the
    # PCA declines and the expert runs a first pass to fit the level: two passes, each told
    assert passes == [(1, 1), (2, 2)]
    assert "fitted to the photo's clipped noise" in served.report
    assert served.path.name == "portrait_restored.png" and served.path.exists()
    written = load_image(served.path)
    assert written.bit_depth == 16 and np.allclose(written.alpha, alpha, atol=1 / 65535)
    expected = service.restorer(load_image(upload).rgb, prompt="denoise", strength=0.8)
    assert np.abs(written.rgb - expected.image).max() <= 1 / 65535
    assert "did (user-guided): denoise" in served.report
    assert served.before.dtype == np.uint8 and served.after.shape == photo.shape
    assert not np.array_equal(served.before, served.after)


def test_bad_uploads_are_one_line_named_by_the_upload(service: Service, tmp_path: Path) -> None:
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(VlirError) as caught:
        service.restore(str(broken))
    message = caught.value.one_line()
    assert message.startswith("holiday.jpg: ") and str(tmp_path) not in message
    with pytest.raises(VlirError, match="no photo given"):
        service.analyze(None)
    with pytest.raises(VlirError, match="strength"):
        service.restore(str(_png(tmp_path)), strength=3.0)
    assert not service.workdir.exists() or not any(service.workdir.iterdir())


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(path)
    return path


def test_only_the_latest_results_are_kept(tiny_checkpoints: Path, tmp_path: Path) -> None:  # noqa: F811
    service = Service(Restorer.from_pretrained(tiny_checkpoints), tmp_path / "served", kept=2)
    paths = [service.restore(str(_png(tmp_path)), prompt="denoise").path for _ in range(3)]
    assert [path.exists() for path in paths] == [False, True, True]
    assert len(list(service.workdir.iterdir())) == 2


def test_analysis_suggests_the_prompt_it_implies(
    service: Service, tmp_path: Path, photo: np.ndarray
) -> None:
    upload = tmp_path / "noisy.png"
    save_image(upload, noisy(photo))
    table, suggested = service.analyze(str(upload))
    assert "**noise**" in table and "denoise with sigma" in suggested
    assert f"`{suggested}`" in table
    unedited = service.restore(str(upload), prompt=f" {suggested}", suggested=suggested)
    assert f"did (automatic): {suggested}" in unedited.report
    edited = service.restore(str(upload), prompt="denoise", suggested=suggested)
    assert "did (user-guided): denoise;" in edited.report


def test_findings_table_says_when_nothing_is_found(photo: np.ndarray) -> None:
    from vlir.perception import PerceptionModel, analyze

    analysis = analyze(PerceptionModel.from_pretrained("perception"), to_tensor(photo))
    analysis.findings = [f for f in analysis.findings if not f.present]
    assert "(nothing found)" in findings_markdown(analysis)


def test_examples_are_the_bundled_photos_degraded_as_labelled(tmp_path: Path) -> None:
    from skimage import data

    from vlir.degradations import parse_ops
    from vlir.serve import EXAMPLES, write_examples

    written = write_examples(tmp_path / "examples")
    assert [(path.stem, ops) for path, ops in written] == list(EXAMPLES)
    path, ops = written[0]  # the README's: blur and noise on the astronaut
    clean = data.astronaut().astype(np.float32) / 255
    expected = np.clip(parse_ops(ops, np.random.default_rng(0)).apply(clean), 0, 1)
    assert np.abs(load_image(path).rgb - expected).max() <= 0.5 / 255 + 1e-6


def test_preview_fits_the_long_side_and_is_8_bit() -> None:
    rgb = np.random.default_rng(0).random((48, 96, 3)).astype(np.float32)
    small = preview(rgb, side=32)
    assert small.shape == (16, 32, 3) and small.dtype == np.uint8
    assert preview(rgb, side=200).shape == (48, 96, 3)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serving(command: list[str], url: str, seconds: float = 120) -> subprocess.Popen[str]:
    """``vlir serve`` started and answering at ``url`` (or failed with what it printed)."""
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vlir serve exited {server.returncode}: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    pytest.fail(f"vlir serve did not answer at {url} in {seconds:g} s")


def test_vlir_serve_restores_over_http(
    tiny_checkpoints: Path,  # noqa: F811
    tmp_path: Path,
    photo: np.ndarray,
) -> None:
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    upload = tmp_path / "street.png"
    save_image(upload, noisy(photo))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "vlir.cli", "serve", "--model", str(tiny_checkpoints)]
    server = _serving([*command, "--port", str(port), "--max-pixels", "20000"], url)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "got"))
        table, suggested = client.predict(handle_file(str(upload)), api_name="/analyze")
        assert "**noise**" in table and "denoise" in suggested
        compare, restored, report = client.predict(
            handle_file(str(upload)), "denoise", "", None, 1.0, False, False, 0, api_name="/restore"
        )
        assert Path(restored).name == "street_restored.png"
        assert "did (user-guided): denoise" in report
        before, after = (np.asarray(PILImage.open(path)) for path in compare)
        assert before.shape == after.shape == photo.shape
        assert np.array_equal(np.asarray(PILImage.open(restored)), after)  # small: no resize
        broken = tmp_path / "broken.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        with pytest.raises(Exception, match=r"^broken\.png: corrupt image header") as caught:
            client.predict(
                handle_file(str(broken)), "", "", None, 1.0, False, False, 0, api_name="/restore"
            )
        assert "\n" not in str(caught.value) and "/tmp" not in str(caught.value)
        huge = tmp_path / "huge.png"  # more bytes than 20 000 pixels of any photo take
        huge.write_bytes(upload.read_bytes() + bytes(upload_limit(20_000)))
        limit = f"maximum file size of {upload_limit(20_000)} bytes"  # the page's, told the client
        with pytest.raises(ValueError, match=limit):
            client.predict(handle_file(str(huge)), api_name="/analyze")
        taken = subprocess.run(
            [*command, "--port", str(port)], capture_output=True, text=True, timeout=120
        )
        assert taken.returncode == 1 and "Traceback" not in taken.stderr
        assert (
            taken.stderr.strip() == f"vlir: error: 127.0.0.1:{port} is taken (give another --port)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0  # stopped as by Ctrl+C: the server closed, its files gone


def test_serve_without_gradio_is_one_line() -> None:
    script = (
        "import sys; sys.modules['gradio'] = None; "
        "from vlir.cli import main; sys.exit(main(['serve']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip() == "vlir: error: vlir serve needs Gradio (pip install 'vlir[serve]')"
    )
