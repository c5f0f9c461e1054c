"""The restorer network, its blocks, requests, tiling and the Restorer pipeline."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from vlir.conditioning import Conditioning
from vlir.data.requests import sample_request
from vlir.degradations import parse_ops
from vlir.errors import VlirError
from vlir.perception import PerceptionConfig, PerceptionModel
from vlir.restoration import RestorerConfig, RestorerModel
from vlir.restoration.blocks import CrossAttentionBlock, ModulationFusion, ReferenceBlock
from vlir.tiling import axis_windows, restore_tiled, window_starts

TINY = RestorerConfig(
    width=8, encoder_blocks=(1, 1), bottleneck_blocks=1, decoder_blocks=(1, 1), prompt_queries=2
)


def conditioning(batch: int = 2, reference: bool = False, size: int = 32) -> Conditioning:
    return Conditioning(
        deg_tokens=torch.randn(batch, 4, 384),
        content_tokens=torch.randn(batch, 6, 384),
        prompt_tokens=torch.randn(batch, 5, 384),
        prompt_vector=torch.randn(batch, 384),
        content_mask=torch.ones(batch, 6),
        prompt_mask=torch.ones(batch, 5),
        reference=torch.rand(batch, 3, size, size) if reference else None,
    )


def test_restorer_shapes_and_identity_at_start() -> None:
    model = RestorerModel(TINY).eval()
    image = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        out = model(image, conditioning())
    assert out.shape == image.shape
    with torch.no_grad():
        with_reference = model(image, conditioning(reference=True))
    assert torch.isfinite(with_reference).all()


@pytest.mark.parametrize(
    "switch",
    ["use_degradation_block", "use_content_block", "use_reference_block", "use_modulation"],
)
def test_ablation_switches_remove_parts(switch: str) -> None:
    import dataclasses

    config = dataclasses.replace(TINY, **{switch: False})
    model = RestorerModel(config)
    names = {n for n, _ in model.named_parameters()}
    full = {n for n, _ in RestorerModel(TINY).named_parameters()}
    if switch != "use_modulation":
        assert names < full
    out = model(torch.rand(1, 3, 16, 16), conditioning(1, reference=True, size=16))
    out.mean().backward()


def test_modulation_starts_as_identity_and_learns() -> None:
    fusion = ModulationFusion(384, 8)
    x = torch.randn(2, 8, 4, 4)
    vector = torch.randn(2, 384)
    assert torch.equal(fusion(x, vector), x)
    torch.nn.init.normal_(fusion.to_gamma_beta.weight)
    assert not torch.allclose(fusion(x, vector), x)


def test_cross_attention_respects_the_mask() -> None:
    block = CrossAttentionBlock(16, 384)
    torch.nn.init.constant_(block.gate, 1.0)
    x = torch.randn(1, 16, 4, 4)
    tokens = torch.randn(1, 3, 384)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    changed = tokens.clone()
    changed[0, 2] += 10.0  # a masked token must not matter
    assert torch.allclose(block(x, tokens, mask), block(x, changed, mask), atol=1e-5)


def test_reference_block_uses_the_reference() -> None:
    block = ReferenceBlock(16)
    torch.nn.init.constant_(block.gate, 1.0)
    x = torch.randn(1, 16, 8, 8)
    a, b = block(x, torch.randn(1, 16, 8, 8)), block(x, torch.randn(1, 16, 8, 8))
    assert not torch.allclose(a, b)


def test_requests_and_their_targets(photo: np.ndarray) -> None:
    record = parse_ops("blur sigma=2, noise sigma=30", np.random.default_rng(0))
    rng = np.random.default_rng(5)
    kinds = set()
    for _ in range(200):
        request = sample_request(record, "an astronaut", rng)
        kinds.add(request.kind)
        target = record.partial_target(photo, request.target)
        if request.kind in ("blind", "exact", "paraphrase"):
            assert target.tobytes() == photo.tobytes()
        if request.kind == "partial":
            assert target.tobytes() != photo.tobytes()
        if request.kind == "strength":
            assert request.text.startswith(("deblur with sigma", "denoise"))
    assert kinds == {"blind", "exact", "paraphrase", "partial", "strength"}


def test_tiling_matches_untiled() -> None:
    image = torch.rand(1, 3, 100, 140)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    with torch.no_grad():

        def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
            return conv(patch)

        whole = run(image, (0, 0))
        tiled = restore_tiled(image, run, tile=48, overlap=16)
    mse = float(((whole - tiled) ** 2).mean())
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 45
    pointwise = restore_tiled(image, lambda p, c: p * 2, tile=40, overlap=8)
    assert torch.allclose(pointwise, image * 2, atol=1e-6)


def wake(model: RestorerModel) -> None:
    """Random residual scales and norm weights: NAF blocks start as the identity, and an
    identity network cannot show how tiles and statistics differ."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("alpha", "beta")) or "norm" in name:
                parameter.normal_(0.5, 0.2)


@pytest.fixture
def tiny_checkpoints(tmp_path: Path) -> Path:
    torch.manual_seed(0)  # the same random weights every run
    perception = tmp_path / "perception"
    PerceptionModel(PerceptionConfig(widths=(8, 8, 8, 8, 8), hidden=16)).save_pretrained(perception)
    import dataclasses

    RestorerModel(dataclasses.replace(TINY, perception=str(perception))).save_pretrained(
        tmp_path / "restorer"
    )
    return tmp_path / "restorer"


def test_restorer_pipeline(tiny_checkpoints: Path, photo: np.ndarray) -> None:
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    result = restorer(photo, prompt="remove all degradation")
    assert result.image.shape == photo.shape and not result.automatic
    assert "found:" in result.report()
    assert "reference: none (the reference block is skipped)" in result.report()
    kept = restorer(photo, prompt="denoise", strength=0.0)
    assert np.allclose(kept.image, np.clip(photo, 0, 1), atol=1e-6)
    guided = restorer(
        photo,
        prompt="remove the rain but keep the blur",
        semantic="a person",
        reference=photo[::-1],
        tile=64,
    )
    assert guided.tiles and not guided.automatic and guided.image.shape == photo.shape
    assert "reference: given" in guided.report()


def test_a_grey_photo_comes_back_grey(
    tiny_checkpoints: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network's three outputs differ even on a grey photo; it gets their luma, as a
    grey file is written back, not a tint nothing in the photo asked for."""
    import vlir.pipeline
    from vlir.io import grey_rgb
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    wake(restorer.model)
    grey = grey_rgb(photo)
    with monkeypatch.context() as patch:
        patch.setattr(vlir.pipeline.restorer, "is_grey", lambda rgb: False)
        tinted = restorer(grey, prompt="denoise").image
    assert np.abs(tinted[..., 0] - tinted[..., 1]).max() > 1e-3  # the network tints
    restored = restorer(grey, prompt="denoise").image
    assert np.array_equal(restored[..., 0], restored[..., 1])
    assert np.array_equal(restored[..., 1], restored[..., 2])
    assert np.abs(restored - grey).max() > 1e-3  # restored, not returned as it came


def test_dihedral_views_are_the_eight_and_undo_exactly() -> None:
    from vlir.pipeline import dihedral_view, undo_dihedral_view

    pixels = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    views = [dihedral_view(pixels, view) for view in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    for view, seen in enumerate(views):
        assert torch.equal(undo_dihedral_view(seen, view), pixels)


class ColumnRamp(torch.nn.Module):
    """Stands in for a restorer that is not equivariant at all: it adds a ramp across
    whatever columns it is shown."""

    def __init__(self, config: RestorerConfig) -> None:
        super().__init__()
        self.config = config
        self.calls = 0
        self.sizes: list[tuple[int, int]] = []

    def forward(self, patch: torch.Tensor, condition: Conditioning) -> torch.Tensor:
        self.calls += 1
        self.sizes.append(tuple(patch.shape[-2:]))
        columns = torch.arange(patch.shape[-1], dtype=patch.dtype) / (patch.shape[-1] - 1)
        return patch + 0.1 * columns


def test_self_ensemble_averages_the_views_back_in_the_photos_frame(
    tiny_checkpoints: Path,
) -> None:
    """Averaged back in the photo's frame, a ramp across each view's columns is a ramp
    across columns, reversed columns, rows and reversed rows alike: a constant. Views
    left in their own frame, or undone wrongly, would show in the photo's pixels."""
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    ramp = ColumnRamp(restorer.model.config)
    restorer.model = ramp
    side = restorer.model.config.multiple * 4
    photo = np.random.default_rng(0).uniform(0.2, 0.6, (side, side, 3)).astype(np.float32)
    single = restorer(photo, prompt="denoise")
    assert ramp.calls == 1 and single.views == 1
    columns = np.linspace(0, 0.1, side, dtype=np.float32)[None, :, None]
    assert np.allclose(single.image, photo + columns, atol=1e-5)
    averaged = restorer(photo, prompt="denoise", ensemble=True, reference=photo[::-1])
    assert ramp.calls == 9 and averaged.views == 8
    assert np.allclose(averaged.image, photo + 0.05, atol=1e-5)
    assert "averaged over 8 flips and quarter turns" in averaged.report()
    # a JPEG: only the upright views (a quarter turn transposes its blocks' quantisation),
    # each on a photo padded to the 8-px grid, so a side off it (here 4 px) is no matter
    wide = np.random.default_rng(1).uniform(0.2, 0.6, (side, side + 4, 3)).astype(np.float32)
    upright = restorer(wide, prompt="remove jpeg artifacts", ensemble=True, align_grid=False)
    assert ramp.calls == 9 + 4 and upright.views == 4 and upright.image.shape == wide.shape
    assert ramp.sizes[-4:] == [(side, side + 8)] * 4  # each view padded to the grid
    assert np.allclose(upright.image, wide + 0.05, atol=1e-5)
    assert "averaged over 4 upright flips (a JPEG)" in upright.report()


def test_progress_counts_every_network_pass_and_knows_the_total_first(
    tiny_checkpoints: Path, tmp_path: Path, photo: np.ndarray
) -> None:
    from tests.test_diffusion import tiny_refiner
    from vlir.pipeline import Restorer, tile_overlap
    from vlir.tiling import tile_count

    refiner = tiny_refiner(tmp_path / "refiner")
    restorer = Restorer.from_pretrained(tiny_checkpoints, refiner=str(refiner))
    calls: list[tuple[int, int]] = []
    result = restorer(
        photo,
        prompt="denoise",
        tile=64,
        ensemble=True,
        refine=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    covering = tile_count(*photo.shape[:2], tile=64, overlap=tile_overlap(restorer.model.config))
    assert result.gathered == 1 and covering == 6  # 2 rows of 3
    # 8 views, each gathered once and restored once, then refined over the same tiles
    total = 8 * 2 * covering + tile_count(*photo.shape[:2], tile=64)
    assert calls == [(done, total) for done in range(1, total + 1)]
    calls.clear()
    restorer(photo, prompt="denoise", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 1)]


def test_channels_last_restores_as_the_plain_layout(
    tiny_checkpoints: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline runs the restorer in channels-last for speed; through tiles, the
    photo's gathered statistics, a reference and the eight views it restores as the
    plain (NCHW) layout does."""
    from vlir import pipeline

    restorer = pipeline.Restorer.from_pretrained(tiny_checkpoints)
    wake(restorer.model)
    assert restorer.model.intro.weight.is_contiguous(memory_format=torch.channels_last)
    options = dict(prompt="denoise", reference=photo[::-1], tile=64, ensemble=True)
    fast = restorer(photo, **options).image
    monkeypatch.setattr(pipeline.tiled, "CHANNELS_LAST", torch.contiguous_format)
    plain = pipeline.Restorer(
        restorer.model, restorer.perception, restorer.text, analyzer=restorer.analyzer
    )
    assert plain.model.intro.weight.is_contiguous()
    assert np.abs(plain(photo, **options).image - fast).max() < 1e-5


def test_a_device_not_here_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlir.modeling import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(" CPU ") == torch.device("cpu")
    refusals = {
        "banana": "unknown device",
        "cuda:x": "unknown device",
        "mps": "not supported",
        "cuda": "torch sees no CUDA GPU",
    }
    for name, words in refusals.items():
        with pytest.raises(VlirError, match=words):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(VlirError, match="has 1 CUDA GPU"):
        resolve_device("cuda:1")


def test_restorer_to_moves_every_network_and_the_refiner_it_loads_later(
    tiny_checkpoints: Path,
) -> None:
    from vlir.evaluation import get_method
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints, device="auto")
    assert restorer.to("cpu") is restorer and restorer.device == torch.device("cpu")
    refiner = restorer.load_refiner()
    networks = [restorer.model, restorer.perception, restorer.text, refiner.adaptor, refiner.prior]
    assert {p.device for n in networks for p in n.parameters()} == {torch.device("cpu")}
    with pytest.raises(VlirError, match="unknown device 'banana'"):
        Restorer.from_pretrained(tiny_checkpoints, device="banana")
    with pytest.raises(VlirError, match="unknown device 'banana'"):
        get_method(str(tiny_checkpoints), device="banana")  # (vlir eval --device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_cli_refuses_a_gpu_it_does_not_have_before_any_work(
    tiny_checkpoints: Path, tmp_path: Path, photo: np.ndarray
) -> None:
    PILImage.fromarray(np.round(photo * 255).astype(np.uint8)).save(tmp_path / "in.png")
    for command in (
        ["restore", "--model", str(tiny_checkpoints), "in.png", "-o", "out.png"],
        ["analyze", "in.png"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "vlir.cli", *command, "--device", "cuda"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        first = result.stderr.strip().splitlines()[0]
        assert first.startswith("vlir: error: device 'cuda': torch sees no CUDA GPU here")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_restores_as_the_cpu_does(photo: np.ndarray) -> None:
    """The shipped restorer on the GPU and on the CPU: the same reading and prompt, and
    images within float tolerance of each other (cuDNN may use TF32), through tiles with
    gathered statistics, a reference, the self-ensemble, refinement and a diffusion
    restorer."""
    from vlir.evaluation import psnr
    from vlir.pipeline import Restorer

    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    cases = {
        "restorer": [
            {},
            {"prompt": "denoise with sigma 25", "tile": 64, "reference": photo[::-1]},
            {"prompt": "remove all degradation", "ensemble": True},
            {"prompt": "denoise with sigma 25", "refine": True, "seed": 3},
        ],
        "vlmir": [{"steps": 2, "seed": 1}],
    }
    for model, calls in cases.items():
        cpu = Restorer.from_pretrained(model)
        gpu = Restorer.from_pretrained(model, device="cuda")
        assert gpu.device.type == "cuda"
        for options in calls:
            on_cpu, on_gpu = cpu(noisy, **options), gpu(noisy, **options)
            assert on_gpu.prompt == on_cpu.prompt, options
            assert psnr(on_gpu.image, on_cpu.image) > 40, options


def test_pipeline_deconvolves_blur_it_is_asked_to_remove(
    tiny_checkpoints: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "remove motion blur" (or defocus) alone: the restorer has nothing left to do, the
    kernel is estimated from the photo and divided out; with other ops the restorer does
    them all (but white noise: tests/test_denoiser.py); ``deconvolve=False`` leaves the
    blur to the restorer; a sharp photo is kept. A Gaussian blur is divided out as a
    Gaussian, of the width stated or read."""
    import dataclasses

    import vlir.pipeline
    from vlir.deconvolution import (
        WIENER_BALANCE_BY_BLUR,
        estimate_blur_kernel,
        kernel_spread,
        wiener_deconvolve,
    )
    from vlir.degradations import RestorationPrompt, get_op
    from vlir.perception.analyze import Analysis, Finding
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    shake = get_op("motion_blur")
    shaken = shake.apply(photo, shake.params_type(length=9, angle=30, seed=3))
    alone = restorer(shaken, prompt="remove motion blur")
    assert alone.kernel is not None and alone.kernel.shape == (35, 35)
    assert kernel_spread(alone.kernel) > 1
    assert "blur by deconvolution (a 35x35 kernel estimated)" in alone.report()
    assert "reference" not in alone.report()  # the restorer (and its reference block) idle
    expected = np.clip(wiener_deconvolve(shaken, estimate_blur_kernel(shaken)), 0, 1)
    assert np.allclose(alone.image, expected, atol=1e-5)
    stated = restorer(shaken, prompt="remove motion blur with length 40 and angle 0")
    assert stated.kernel is not None and stated.kernel.shape == (55, 55)
    both = restorer(shaken, prompt="remove the rain; remove motion blur")
    assert both.kernel is None and "deconvolution" not in both.report()
    left = restorer(shaken, prompt="remove motion blur", deconvolve=False)
    assert left.kernel is None and "deconvolution" not in left.report()
    assert restorer(shaken, prompt="denoise").kernel is None
    defocus = get_op("defocus")
    blurred = defocus.apply(photo, defocus.params_type(radius=2.5))
    disk = restorer(blurred, prompt="remove defocus blur with radius 2.5")
    balance = WIENER_BALANCE_BY_BLUR["defocus"]
    expected = np.clip(wiener_deconvolve(blurred, estimate_blur_kernel(blurred), balance), 0, 1)
    assert disk.kernel is not None and np.allclose(disk.image, expected, atol=1e-5)
    gaussian = get_op("blur")
    softened = gaussian.apply(photo, gaussian.params_type(sigma=1.5))
    stated = restorer(softened, prompt="deblur with sigma 1.2")  # a Gaussian: its own kernel
    narrower = gaussian.kernel(gaussian.params_type(sigma=1.2))
    assert stated.sigma == 1.2 and np.array_equal(stated.kernel, narrower)
    balance = WIENER_BALANCE_BY_BLUR["blur"]
    expected = np.clip(wiener_deconvolve(softened, narrower, balance), 0, 1)
    assert np.allclose(stated.image, expected, atol=1e-5)
    assert "blur by deconvolution (a Gaussian of sigma 1.20, as stated)" in stated.report()
    record = json.loads(json.dumps(stated.to_dict()))  # (all of it JSON as it is)
    assert record["action"] == "deconvolved" and record["prompt"] == "deblur with sigma 1.2"
    assert record["deconvolution"]["gaussian_sigma"] == 1.2
    assert record["deconvolution"]["sigma_stated"] and not record["deconvolution"]["sharp"]
    assert record["report"] == stated.report() and not record["automatic"]
    # automatic, the analyzer's reading (in its prompt as a number) is checked against
    # the estimate: read far too wide, the estimate's narrower fitted width is divided out
    analyze = vlir.pipeline.restorer.analyze

    def reads_wide(model: PerceptionModel, pixels: torch.Tensor) -> Analysis:
        real = analyze(model, pixels)
        wide = [Finding("blur", 0.9, 4.0, "sigma", True)]
        return Analysis(wide, RestorationPrompt.parse("deblur with sigma 4"), real.perception)

    with monkeypatch.context() as patch:
        patch.setattr("vlir.pipeline.restorer.analyze", reads_wide)
        read = restorer(softened)
    assert read.automatic and read.prompt == "deblur with sigma 4.0"
    assert read.sigma is not None and 1.2 < read.sigma < 2.0, read.sigma
    assert f"(a Gaussian of sigma {read.sigma:.2f}, read from the photo)" in read.report()
    kept = restorer(photo, prompt="deblur")  # the sharp photo: its estimate is a point
    assert kept.kernel is not None and kernel_spread(kept.kernel) == 0.0
    assert np.array_equal(kept.image, photo)
    assert "no blur to deconvolve (the photo reads sharp)" in kept.report()
    assert kept.to_dict()["deconvolution"]["sharp"] and kept.action == "kept"
    assert both.to_dict()["action"] == "restored"
    assert np.array_equal(restorer(photo[:2, :3], prompt="deblur").image, photo[:2, :3])
    light = "remove defocus blur; remove jpeg artifacts with quality 90"
    both = restorer(blurred, prompt=light)  # a light JPEG is left, the blur deconvolved
    assert both.kernel is not None and both.left == ("jpeg",)
    assert "kernel estimated; jpeg left as it is (light))" in both.report()
    sharp_jpeg = restorer(photo, prompt=light)  # no blur to undo: the restorer does the JPEG
    assert sharp_jpeg.kernel is None and not sharp_jpeg.left
    # an analyzer that finds nothing (every threshold out of reach) and reads no
    # enlargement: the automatic request is blind, and the blur is deconvolved all the same
    monkeypatch.setattr("vlir.pipeline.hints.ENLARGED_HINT", 1.01)
    monkeypatch.setattr("vlir.pipeline.hints.HAZE_HINT", 1.01)
    config = restorer.analyzer.config
    restorer.analyzer = PerceptionModel(
        dataclasses.replace(config, thresholds=(2.0,) * len(config.ops))
    ).eval()
    blind = restorer(shaken)
    assert not blind.analysis.found and blind.kernel is not None
    assert np.allclose(blind.image, np.clip(wiener_deconvolve(shaken, blind.kernel, 0.005), 0, 1))
    left = restorer(shaken, deconvolve=False)  # reads blurred: the restorer's blind mode
    assert not left.kept and left.kernel is None and left.prompt == "remove all degradation"
    assert not np.array_equal(left.image, shaken)
    for deconvolve in (True, False):  # a sharp photo, nothing found: nothing to restore
        sharp = restorer(photo, deconvolve=deconvolve, ensemble=True, tile=64)
        assert sharp.kept and not sharp.analysis.found and sharp.kernel is None
        assert np.array_equal(sharp.image, photo) and not sharp.tiles and sharp.views == 1
        assert sharp.report() == (
            "found: nothing; did (automatic): left it as it is (it reads clean and sharp; "
            "give a prompt to restore it anyway)"
        )
    told = restorer(photo, prompt="remove all degradation")  # words: the blind mode runs
    assert not told.kept and told.kernel is None and not np.array_equal(told.image, photo)


def test_a_photo_that_reads_enlarged_and_nothing_else_is_left_as_it_is(
    tiny_checkpoints: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing found, but a downsampling probability at or over ``ENLARGED_HINT``: the
    photo comes back as it is (neither deconvolved nor given to the blind restorer),
    and says why; words, or a reading under the hint, restore it."""
    from vlir.degradations import get_op
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    config = restorer.analyzer.config
    restorer.analyzer = PerceptionModel(  # finds nothing: every threshold out of reach
        dataclasses.replace(config, thresholds=(2.0,) * len(config.ops))
    ).eval()
    defocus = get_op("defocus")
    soft = defocus.apply(photo, defocus.params_type(radius=2.5))  # reads blurred, too
    reading = restorer(soft, deconvolve=False, prompt="remove all degradation").analysis
    downsample = next(f.probability for f in reading.findings if f.op == "downsample")
    monkeypatch.setattr("vlir.pipeline.hints.ENLARGED_HINT", downsample)
    monkeypatch.setattr("vlir.pipeline.hints.HAZE_HINT", 1.01)  # (reads no haze either)
    kept = restorer(soft, ensemble=True)
    assert kept.enlarged == pytest.approx(downsample) and not kept.analysis.found
    assert np.array_equal(kept.image, soft) and kept.kernel is None and kept.views == 1
    assert kept.report().startswith(
        f"found: nothing, but it reads enlarged (downsample p={downsample:.2f}); "
        "did (automatic): left it as it is"
    )
    told = restorer(soft, prompt="remove all degradation")  # words: the restorer runs
    assert told.enlarged is None and not np.array_equal(told.image, soft)
    assert told.kernel is None  # and the enlarged photo's softness is not deconvolved
    monkeypatch.setattr("vlir.pipeline.hints.ENLARGED_HINT", downsample + 1e-3)
    read_blurred = restorer(soft)  # under the hint: the unseen blur is deconvolved
    assert read_blurred.enlarged is None and read_blurred.kernel is not None


def test_a_photo_that_reads_faintly_hazy_and_nothing_else_is_dehazed(
    tiny_checkpoints: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing found, but a haze probability at or over ``HAZE_HINT``: the automatic
    request is "dehaze", and the report says why; under the hint the photo is kept."""
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    wake(restorer.model)
    config = restorer.analyzer.config
    restorer.analyzer = PerceptionModel(  # finds nothing: every threshold out of reach
        dataclasses.replace(config, thresholds=(2.0,) * len(config.ops))
    ).eval()
    monkeypatch.setattr("vlir.pipeline.hints.ENLARGED_HINT", 1.01)
    reading = restorer(photo, prompt="dehaze").analysis
    haze = next(f.probability for f in reading.findings if f.op == "haze")
    monkeypatch.setattr("vlir.pipeline.hints.HAZE_HINT", haze)
    hazy = restorer(photo)
    assert hazy.hazy == pytest.approx(haze) and not hazy.analysis.found and not hazy.kept
    assert hazy.prompt == "dehaze" and hazy.automatic and hazy.kernel is None
    assert np.array_equal(hazy.image, restorer(photo, prompt="dehaze").image)
    assert not np.array_equal(hazy.image, photo)
    assert hazy.report().startswith(
        f"found: nothing, but it reads faintly hazy (haze p={haze:.2f}); did (automatic): dehaze"
    )
    monkeypatch.setattr("vlir.pipeline.hints.HAZE_HINT", haze + 1e-3)
    kept = restorer(photo)  # under the hint, and it reads sharp: kept
    assert kept.kept and kept.hazy is None and np.array_equal(kept.image, photo)
    # a grey photo reads hazier than its colour original: no hint, whatever it reads
    grey = np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2)
    grey_haze = next(
        f.probability for f in restorer(grey, prompt="dehaze").analysis.findings if f.op == "haze"
    )
    monkeypatch.setattr("vlir.pipeline.hints.HAZE_HINT", min(grey_haze, haze))
    assert restorer(photo).hazy is not None  # (the colour photo still takes the hint)
    assert restorer(grey).hazy is None


def test_a_tile_is_never_normalised_by_less_than_its_own_spread() -> None:
    """Under shared photo statistics a map norm scales a tile by the photo's spread, but a
    tile spread wider than the photo's is scaled by its own (stale deep statistics must
    not let gated features grow without bound)."""
    from vlir.restoration.blocks import LayerNorm2d
    from vlir.restoration.photo_statistics import PhotoStatistics

    torch.manual_seed(0)
    norm = LayerNorm2d(4)
    calm, wild = torch.randn(1, 4, 16, 16), 10 * torch.randn(1, 4, 16, 16)
    statistics = PhotoStatistics()
    with statistics.gathering((0, 16, 0, 16), (16, 16)):
        norm(calm)
    statistics.end_pass()  # the photo's statistics are calm's
    with torch.no_grad(), statistics.active():
        assert torch.allclose(norm(calm), norm.norm(calm), atol=1e-4)
        assert abs(float(norm(wild).std()) - 1) < 0.05  # its own spread, not 10x the photo's
        assert float(norm(0.1 * calm).std()) < 0.2  # the photo's spread


def test_pipeline_tiles_share_the_photo_statistics(
    tmp_path: Path, tiny_checkpoints: Path, photo: np.ndarray
) -> None:
    """By default a tiled restoration first gathers the whole photo's statistics, so its
    tiles restore closer to the untiled photo than with ``gather=0`` (each tile's own)."""
    from vlir.evaluation import psnr
    from vlir.pipeline import Restorer

    model = RestorerModel.from_pretrained(tiny_checkpoints)
    torch.manual_seed(0)
    wake(model)
    model.save_pretrained(tmp_path / "awake")
    restorer = Restorer.from_pretrained(tmp_path / "awake")
    halves = photo.copy()
    halves[:, 64:] *= 0.5  # a dark half: tiles with statistics unlike the photo's
    blind = "remove all degradation"
    whole_result = restorer(halves, prompt=blind)
    assert "gathering" not in whole_result.report()
    whole = whole_result.image
    shared_result = restorer(halves, prompt=blind, tile=64)
    assert "with the photo's statistics (1 gathering pass)" in shared_result.report()
    shared = shared_result.image
    own = restorer(halves, prompt=blind, tile=64, gather=0).image
    # measured: 43.9 vs 40.9 dB (the tiles' cut receptive fields limit both)
    assert psnr(shared, whole) > psnr(own, whole) + 1.5, (psnr(shared, whole), psnr(own, whole))
    with pytest.raises(VlirError, match="gather"):
        restorer(halves, tile=64, gather=-1)


def test_a_model_without_reference_block_refuses_a_reference(
    tmp_path: Path, tiny_checkpoints: Path, photo: np.ndarray
) -> None:
    import dataclasses

    from vlir.pipeline import Restorer

    config = RestorerModel.from_pretrained(tiny_checkpoints).config
    RestorerModel(dataclasses.replace(config, use_reference_block=False)).save_pretrained(
        tmp_path / "no-reference"
    )
    restorer = Restorer.from_pretrained(tmp_path / "no-reference")
    assert "reference" not in restorer(photo, prompt="denoise").report()
    with pytest.raises(VlirError, match="no reference photo"):
        restorer(photo, reference=photo)


def test_too_small_to_read_is_refused_unless_the_prompt_says(
    tiny_checkpoints: Path, photo: np.ndarray
) -> None:
    """Under 32 px a side perception reads mirrored copies: its guesses would restore
    what is not there, so automatic restoration refuses, and a prompt still works."""
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    icon = photo[:20, :40]
    with pytest.raises(VlirError, match=r"40x20 is under 32 px a side.*--prompt"):
        restorer(icon)
    guided = restorer(icon, prompt="denoise")
    assert guided.image.shape == icon.shape
    assert guided.report().startswith("found: not read (40x20 is under 32 px a side")
    assert restorer(photo[:32, :32]).automatic


def test_restore_cli(tiny_checkpoints: Path, tmp_path: Path, photo: np.ndarray) -> None:
    rgba = np.dstack(
        [np.round(photo * 255).astype(np.uint8), np.full(photo.shape[:2], 128, np.uint8)]
    )
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff")
    command = [sys.executable, "-m", "vlir.cli", "restore", "--model", str(tiny_checkpoints)]
    result = subprocess.run(
        [
            *command,
            str(tmp_path / "in.png"),
            str(tmp_path / "bad.jpg"),
            "-o",
            str(tmp_path / "out"),
            "--prompt",
            "denoise",
            "--no-deconvolve",
            "--ensemble",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "did (user-guided): denoise" in result.stdout
    assert "averaged over 8 flips and quarter turns" in result.stdout
    restored = PILImage.open(tmp_path / "out" / "in.png")
    assert restored.mode == "RGBA" and np.asarray(restored)[..., 3].min() == 128
    bad = subprocess.run(
        [*command, str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--strength", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "strength" in bad.stderr
    inputs = [str(tmp_path / "in.png"), str(tmp_path / "bad.jpg")]
    as_json = subprocess.run(
        [*command, *inputs, "-o", str(tmp_path / "j"), "--prompt", "denoise", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert as_json.returncode == 1 and "bad.jpg" in as_json.stderr  # the batch went on
    (report,) = json.loads(as_json.stdout)  # stdout is the JSON alone
    assert report["input"] == str(tmp_path / "in.png") and report["device"] == "cpu"
    assert report["output"] == str(tmp_path / "j" / "in.png")
    assert report["action"] == "restored" and report["prompt"] == "denoise"
    assert report["report"].startswith("found: ") and "all" in report["analysis"]
    PILImage.fromarray(rgba[:8, :8]).save(tmp_path / "icon.png")
    small = subprocess.run(
        [*command, str(tmp_path / "icon.png"), str(tmp_path / "in.png"), "-o", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert small.returncode == 1 and "Traceback" not in small.stderr
    line = f"vlir: error: {tmp_path / 'icon.png'}: 8x8 is under 32 px a side"
    assert line in small.stderr and (tmp_path / "s" / "in.png").exists()
    assert not (tmp_path / "s" / "icon.png").exists()


def test_restorer_checkpoint_round_trip(tiny_checkpoints: Path) -> None:
    model = RestorerModel.from_pretrained(tiny_checkpoints)
    config = json.loads((tiny_checkpoints / "config.json").read_text())
    assert config["model_type"] == "restorer" and model.config.width == 8


def test_restorer_checkpoint_runs_in_the_benchmark(tiny_checkpoints: Path, tmp_path: Path) -> None:
    from skimage import data

    from vlir.evaluation import parse_task, run_benchmark

    folder = tmp_path / "set"
    folder.mkdir()
    PILImage.fromarray(data.astronaut()[:64, :64]).save(folder / "a.png")
    result = run_benchmark(
        parse_task("sr:2"),
        folder,
        ["identity", str(tiny_checkpoints), f"{tiny_checkpoints}+x8"],
        tmp_path / "run",
        cache=tmp_path / "cache",
    )
    assert [m.name for m in result.methods] == ["identity", "restorer", "restorer+x8"]
    assert np.isfinite(result.methods[1].mean("psnr"))
    assert result.methods[1].mean("psnr") != result.methods[2].mean("psnr")


def tiny_perception(folder: Path) -> Path:
    """A random perception checkpoint small enough for training tests."""
    path = folder / "perception"
    PerceptionModel(PerceptionConfig(widths=(8, 8, 8, 8, 8), hidden=16)).save_pretrained(path)
    return path


def test_restorer_training_runs_and_resumes(
    tmp_path: Path, tiny_training_data: tuple[Path, Path]
) -> None:
    from vlir.training.common import load_recipe
    from vlir.training.restorer import RestorerRecipe, train

    data, captions = tiny_training_data
    perception = tiny_perception(tmp_path)
    recipe = tmp_path / "restorer.yaml"
    recipe.write_text(
        f"data: {data}\ncaptions: {captions}\nperception: {perception}\nsteps: 2\nbatch: 2\n"
        "crop: 32\nholdout: 1\nvalidate_every: 2\nlog_every: 1\ncheckpoint_minutes: 0\n"
        "p_reference: 1.0\nmodel:\n  width: 8\n  prompt_queries: 2\n"
    )
    out = tmp_path / "run"
    train(load_recipe(RestorerRecipe, recipe, {"out": str(out)}))
    train(load_recipe(RestorerRecipe, recipe, {"out": str(out), "steps": 3, "ema": 0.9}))
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 3 and "val/psnr_blind" in lines[-1]
    assert RestorerModel.from_pretrained(out / "best").config.width == 8
    # with ema, the exported weights are the average's
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    exported = RestorerModel.from_pretrained(out / "last").state_dict()
    key = next(k for k, v in exported.items() if v.is_floating_point() and v.dim() == 4)
    assert torch.equal(exported[key], state["ema"]["model"][key])
    assert not torch.equal(exported[key], state["model"][key])


def test_restorer_recipe_op_weights_shape_the_training_draws(
    tiny_training_data: tuple[Path, Path],
) -> None:
    from vlir.data.clean import CleanImages, load_captions
    from vlir.degradations.registry import OPS
    from vlir.training.restorer import RestorerRecipe, holdout_sampler, training_sampler

    data, captions = tiny_training_data
    images = CleanImages(str(data), None, load_captions(str(captions)))
    only_noise = {name: 0.0 for name in OPS} | {"noise": 1.0}
    recipe = RestorerRecipe(
        data=str(data), captions=str(captions), crop=32, p_clean=0.0, op_weights=only_noise
    )
    rng = np.random.default_rng(0)
    drawn = training_sampler(recipe, images, [0, 1]).sample(rng, 6).records
    assert [[step.op for step in record.steps] for record in drawn] == [["noise"]] * 6
    # validation keeps drawing every op alike, whatever the recipe dwells on
    held = holdout_sampler(dataclasses.replace(recipe, holdout=1), images).sample(rng, 12)
    assert {step.op for record in held.records for step in record.steps} != {"noise"}
    with pytest.raises(VlirError, match="hazy"):
        training_sampler(dataclasses.replace(recipe, op_weights={"hazy": 2.0}), images, [0])


def test_restorer_training_with_workers_stops_on_its_time_limit(
    tmp_path: Path, tiny_training_data: tuple[Path, Path]
) -> None:
    from vlir.training.restorer import main

    data, captions = tiny_training_data
    perception = tiny_perception(tmp_path)
    out = tmp_path / "run"
    settings = {
        "data": data,
        "captions": captions,
        "crop": 32,
        "holdout": 1,
        "log_every": 1,
        "workers": 1,
        "max_minutes": 0,
        "model": "{width: 8, prompt_queries: 2, prompt_layers: 1}",
    }
    argv = ["--out", str(out), "--steps", "50", "--batch", "2", "--perception", str(perception)]
    main(argv + [arg for k, v in settings.items() for arg in ("--set", f"{k}={v}")])
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 1 and "val/psnr_blind" in lines[-1]
    assert lines[0]["time/data_ms"] > 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 1
    assert RestorerModel.from_pretrained(out / "last").config.prompt_layers == 1


def test_shipped_restorer_removes_noise(photo: np.ndarray) -> None:
    """The shipped weights do real work: blind restoration of sigma-25 noise gains >= 3 dB."""
    from vlir.evaluation import psnr
    from vlir.pipeline import Restorer

    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    result = Restorer.from_pretrained()(noisy)
    assert "noise" in {f.op for f in result.analysis.found}
    assert psnr(result.image, photo) > psnr(np.clip(noisy, 0, 1), photo) + 3


def test_sampler_can_turn_photos_grey(tiny_training_data: tuple[Path, Path]) -> None:
    from vlir.data import CleanImages, DegradedSampler
    from vlir.degradations import DegradationPipeline

    images = CleanImages(tiny_training_data[0], None, None)
    pipeline = DegradationPipeline(max_ops=1)
    grey = DegradedSampler(images, pipeline, p_grey=1.0, crop=(32, 32))
    batch = grey.sample(np.random.default_rng(0), 4)
    assert torch.allclose(batch.clean[:, 0], batch.clean[:, 1], atol=1e-6)
    assert torch.allclose(batch.clean[:, 1], batch.clean[:, 2], atol=1e-6)
    colour = DegradedSampler(images, pipeline, p_grey=0.0, crop=(32, 32))
    batch = colour.sample(np.random.default_rng(0), 4)
    assert (batch.clean[:, 0] - batch.clean[:, 2]).abs().max() > 0.05


def test_analyzer_reads_the_photo_and_the_model_keeps_its_tokens(
    tmp_path: Path, tiny_checkpoints: Path, photo: np.ndarray
) -> None:
    """A better-trained perception can say what is wrong for a restorer trained on another
    perception's tokens: the report and automatic prompt are the analyzer's, the pixels
    for a given prompt do not change."""
    from vlir.degradations import OP_NAMES
    from vlir.pipeline import Restorer

    only_noise = tuple(0.0 if name == "noise" else 1.01 for name in OP_NAMES)
    config = PerceptionConfig(widths=(8, 8, 8, 8, 8), hidden=16, thresholds=only_noise)
    torch.manual_seed(1)
    analyzer = PerceptionModel(config).save_pretrained(tmp_path / "analyzer")
    # (the restorer's pixels: noise alone would otherwise go to the noise expert)
    guided = Restorer.from_pretrained(tiny_checkpoints, analyzer=analyzer, denoiser=None)
    own = Restorer.from_pretrained(tiny_checkpoints, analyzer=None, denoiser=None)
    assert own.analyzer is own.perception and guided.analyzer is not guided.perception
    result = guided(photo)
    assert [f.op for f in result.analysis.found] == ["noise"]
    assert result.prompt.startswith("denoise")
    same_prompt = own(photo, prompt=result.prompt)
    assert np.array_equal(result.image, same_prompt.image)
    # the same weights under another name: one analysis serves both
    tokens_from = RestorerModel.from_pretrained(tiny_checkpoints).config.perception
    twin = PerceptionModel.from_pretrained(tokens_from).save_pretrained(tmp_path / "twin")
    single = Restorer.from_pretrained(tiny_checkpoints, analyzer=twin)
    assert single.analyzer is single.perception


def test_restorer_training_records_its_perception(
    tmp_path: Path,
    tiny_training_data: tuple[Path, Path],
    photo: np.ndarray,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A restorer names the exact perception weights it was trained on: a checkpoint
    changed under that name since is refused, not silently used, and a run continuing
    it on other tokens says so."""
    from vlir.modeling import weights_fingerprint
    from vlir.pipeline import Restorer
    from vlir.training.common import load_recipe
    from vlir.training.restorer import RestorerRecipe, train

    data, captions = tiny_training_data
    perception = tiny_perception(tmp_path)
    recipe = tmp_path / "restorer.yaml"
    recipe.write_text(
        f"data: {data}\ncaptions: {captions}\nperception: {perception}\nsteps: 1\nbatch: 2\n"
        "crop: 32\nholdout: 1\nvalidate_every: 1\nlog_every: 1\ncheckpoint_minutes: 0\n"
        "model:\n  width: 8\n  prompt_queries: 2\n"
    )
    train(load_recipe(RestorerRecipe, recipe, {"out": str(tmp_path / "run")}))
    trained = RestorerModel.from_pretrained(tmp_path / "run" / "best").config
    assert trained.perception_fingerprint == weights_fingerprint(
        PerceptionModel.from_pretrained(perception)
    )
    Restorer.from_pretrained(tmp_path / "run" / "best", analyzer=None)
    tiny_perception(tmp_path)  # another random perception, same folder
    with pytest.raises(VlirError, match="not the one this model was trained with"):
        Restorer.from_pretrained(tmp_path / "run" / "best", analyzer=None)
    # continuing from it (normalised per pixel now: the same tensors) on the new tokens
    capsys.readouterr()
    overrides = {"out": str(tmp_path / "next"), "init": str(tmp_path / "run" / "best")}
    train(load_recipe(RestorerRecipe, recipe, {**overrides, "model.norm": "pixel"}))
    assert "whose tokens differ" in capsys.readouterr().out
    assert RestorerModel.from_pretrained(tmp_path / "next" / "best").config.norm == "pixel"


def test_local_statistics_are_the_windows_and_global_where_the_map_fits() -> None:
    from vlir.restoration.local_statistics import local_group_norm, local_mean, to_pixels

    x = torch.randn(2, 3, 40, 56)
    assert torch.allclose(local_mean(x, 64), x.mean(dim=(-2, -1), keepdim=True))
    norm = torch.nn.GroupNorm(1, 3)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    with torch.no_grad():
        fitted = local_group_norm(x, norm.weight, norm.bias, 64, 1e-5)
        assert torch.allclose(fitted, norm(x), atol=1e-5)
    grid = local_mean(x, 16)  # blocks of 2: a 20 x 28 grid of 8 x 8-block windows
    assert grid.shape == (2, 3, 20, 28)
    # block (0, 0): its window is shifted inside the map to rows and columns 0..15
    assert torch.allclose(grid[..., 0, 0], x[..., :16, :16].mean(dim=(-2, -1)), atol=1e-6)
    # block (10, 14): the window centred on it, rows 12..27 and columns 20..35
    assert torch.allclose(grid[..., 10, 14], x[..., 12:28, 20:36].mean(dim=(-2, -1)), atol=1e-6)
    assert to_pixels(grid, (40, 56)).shape == x.shape
    constant = torch.full((1, 4, 50, 70), 0.3)
    assert torch.allclose(to_pixels(local_mean(constant, 16), (50, 70)), constant)
    # local normalisation of a map whose windows hold different levels: each window's own
    halves = torch.cat([torch.randn(1, 3, 64, 64), 5 + 3 * torch.randn(1, 3, 64, 64)], dim=-1)
    normed = local_group_norm(halves, torch.ones(3), torch.zeros(3), 32, 1e-5)
    assert abs(float(normed[..., 8:56, 8:56].mean())) < 0.1
    assert abs(float(normed[..., 8:56, 72:120].std()) - 1) < 0.1


def test_statistics_window_makes_tiles_agree_with_the_whole() -> None:
    """With whole-map statistics a tile's output depends on where it was cut; with a
    window, or normalised per pixel, tiled and untiled restoration agree (the 45 dB
    target of the restore benchmark), and a map within one window restores exactly as
    before."""
    import dataclasses

    from vlir.pipeline import tile_overlap

    torch.manual_seed(0)
    image = torch.rand(1, 3, 128, 128)
    image[..., 64:] = image[..., 64:] * 0.2 + 0.7  # halves with different statistics
    condition = conditioning(batch=1)
    agreement = {}
    for norm, window in (("map", None), ("map", 32), ("pixel", None), ("pixel", 32)):
        config = dataclasses.replace(TINY, statistics_window=window, norm=norm)
        model = RestorerModel(config).eval()
        wake(model)
        with torch.no_grad():

            def run(patch: torch.Tensor, corner: tuple[int, int], m=model) -> torch.Tensor:
                return m(patch, condition)

            whole = run(image, (0, 0))
            tiled = restore_tiled(image, run, tile=64, overlap=tile_overlap(config))
            small = image[..., :32, :32]
            if window is not None:
                model_global = model.with_statistics(None)
                assert model_global.config.statistics_window is None and not model_global.training
                assert torch.equal(run(small, (0, 0)), model_global(small, condition))
        mse = float(((whole - tiled) ** 2).mean())
        agreement[norm, window] = 10 * np.log10(1 / max(mse, 1e-12))
    # per-pixel normalisation leaves channel attention as the only whole-map statistic
    windowed = agreement["map", 32]
    assert windowed > 45 and windowed > agreement["map", None] + 3, agreement
    assert agreement["pixel", None] > agreement["map", None] + 3, agreement
    assert agreement["pixel", 32] > 45, agreement
    with pytest.raises(VlirError, match="statistics_window"):
        RestorerModel(dataclasses.replace(TINY, statistics_window=4))
    with pytest.raises(VlirError, match="norm"):
        RestorerModel(dataclasses.replace(TINY, norm="batch"))


def test_tiles_partition_the_image_by_what_they_own() -> None:
    from vlir.tiling import tile_grid

    for height, width, tile, overlap in ((100, 140, 48, 12), (64, 64, 64, 16), (97, 61, 40, 10)):
        owners = torch.zeros(height, width, dtype=torch.int64)
        for part in tile_grid(height, width, tile, overlap):
            top, bottom, left, right = part.owned
            assert 0 <= top < bottom <= tile and 0 <= left < right <= tile
            owners[part.y + top : part.y + bottom, part.x + left : part.x + right] += 1
        assert bool((owners == 1).all()), (height, width, tile)


def test_tiles_are_as_few_as_full_tiles_and_no_longer_than_covering_takes() -> None:
    for length, tile, overlap in ((1024, 384, 32), (1536, 384, 32), (385, 384, 32), (97, 48, 12)):
        starts, size = axis_windows(length, tile, overlap)
        full = window_starts(length, tile, tile - overlap)  # every tile ``tile`` long
        assert len(starts) == len(full) and size <= tile
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(after - here <= size - overlap for here, after in itertools.pairwise(starts))
        assert all(start % 8 == 0 for start in starts[:-1])  # on the JPEG grid but the last
    assert axis_windows(1536, 384, 32) == ([0, 304, 608, 912, 1200], 336)  # 5 x 384 before
    assert axis_windows(300, 384, 32) == ([0], 300)


def test_photo_statistics_make_tiles_restore_as_the_whole_photo() -> None:
    """Whole-map statistics gathered over the tiles and shared with each: tiled restoration
    agrees with untiled far better than with each tile's own statistics (what is left is
    the tiles' cut receptive fields, which a second gathering pass cannot mend)."""
    from vlir.pipeline import tile_overlap
    from vlir.restoration.photo_statistics import PhotoStatistics, gather_photo_statistics

    torch.manual_seed(0)
    image = torch.rand(1, 3, 128, 128)
    image[..., 64:] = image[..., 64:] * 0.2 + 0.7  # halves with different statistics
    condition = conditioning(batch=1)
    model = RestorerModel(TINY).eval()
    wake(model)
    with torch.no_grad():

        def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
            return model(patch, condition)

        layout = {"tile": 64, "overlap": tile_overlap(TINY), "multiple": TINY.multiple}
        whole = run(image, (0, 0))
        agreement = {}
        for passes in (0, 1, 2):
            statistics = gather_photo_statistics(image, run, **layout, passes=passes)
            with statistics.active():
                tiled = restore_tiled(image, run, **layout)
            mse = float(((whole - tiled) ** 2).mean())
            agreement[passes] = 10 * np.log10(1 / max(mse, 1e-12))
        # statistics gathered over one tile covering the whole map are exactly its own
        one = gather_photo_statistics(image, run, tile=128, overlap=32, multiple=4)
        with one.active():
            assert torch.allclose(run(image, (0, 0)), whole, atol=1e-4)
        with PhotoStatistics().active():  # nothing gathered: each map its own
            assert torch.allclose(run(image, (0, 0)), whole, atol=1e-4)
    assert agreement[1] > 45 and agreement[1] > agreement[0] + 5, agreement
    assert agreement[2] > agreement[1] - 0.5, agreement


def test_per_pixel_norm_sees_only_its_pixel() -> None:
    """NAFNet's LayerNorm2d: changing one pixel leaves every other pixel's output alone,
    and the weights are the map norm's, so a shipped checkpoint can start it."""
    from vlir.restoration.blocks import LayerNorm2d

    torch.manual_seed(0)
    per_pixel, over_map = LayerNorm2d(6, per_pixel=True), LayerNorm2d(6)
    per_pixel.load_state_dict(over_map.state_dict())
    for norm in (per_pixel, over_map):
        norm.requires_grad_(False)  # the checks below read plain numbers
    x = torch.randn(1, 6, 8, 8)
    changed = x.clone()
    changed[0, 2, 3, 4] += 5
    delta = (per_pixel(changed) - per_pixel(x)).abs().amax(dim=1)[0]  # [H, W]
    assert delta[3, 4] > 0.1 and float(delta.sum() - delta[3, 4]) == 0
    assert float((over_map(changed) - over_map(x)).abs()[..., 0, 0].amax()) > 0
    normed = per_pixel(x)
    assert torch.allclose(normed.mean(dim=1), torch.zeros(1, 8, 8), atol=1e-5)
    assert torch.allclose(normed.var(dim=1, unbiased=False), torch.ones(1, 8, 8), atol=1e-3)


def test_crop_context_degrades_a_larger_region_and_keeps_the_crop(
    tiny_training_data: tuple[Path, Path],
) -> None:
    from vlir.data import CleanImages, DegradedSampler
    from vlir.degradations import DegradationPipeline

    images = CleanImages(tiny_training_data[0], None, None)
    pipeline = DegradationPipeline(ops=["downsample"], max_ops=1)
    for context in (0, 15):
        sampler = DegradedSampler(
            images, pipeline, p_clean=0.0, crop=(48, 72), crop_context=context
        )
        batch = sampler.sample(np.random.default_rng(0), 6)
        assert batch.degraded.shape == batch.clean.shape == (6, 3, 48, 72)
        # the clean crop degraded on its own: the same as the sample only without context
        alone = [
            torch.from_numpy(r.apply(c.permute(1, 2, 0).numpy())).permute(2, 0, 1)
            for r, c in zip(batch.records, batch.clean, strict=True)
        ]
        same = [torch.allclose(a, d, atol=1e-6) for a, d in zip(alone, batch.degraded, strict=True)]
        assert all(same) if context == 0 else not all(same)


def test_8bit_share_stores_degraded_crops_as_a_file_would(
    tiny_training_data: tuple[Path, Path],
) -> None:
    from vlir.data import CleanImages, DegradedSampler
    from vlir.degradations import DegradationPipeline

    images = CleanImages(tiny_training_data[0], None, None)
    pipeline = DegradationPipeline(ops=["noise"], max_ops=1)

    def batch(p_8bit: float) -> torch.Tensor:
        sampler = DegradedSampler(images, pipeline, p_clean=0.0, crop=(32, 32), p_8bit=p_8bit)
        return sampler.sample(np.random.default_rng(0), 4).degraded

    as_float, as_file = batch(0.0), batch(1.0)
    assert as_float.min() < 0 or as_float.max() > 1  # AWGN is unclipped by protocol
    assert as_file.min() >= 0 and as_file.max() <= 1
    assert torch.allclose(as_file * 255, (as_file * 255).round(), atol=1e-4)
    # the first crop is drawn alike (the share's own draw comes after it)
    assert torch.allclose(as_file[0], as_float[0].clamp(0, 1), atol=0.5 / 255 + 1e-6)


def test_a_cropped_jpeg_is_restored_with_its_grid_at_the_corner(tiny_checkpoints: Path) -> None:
    """Restoring a JPEG cropped off its grid is restoring it mirrored back onto the grid,
    with the mirrored rows and columns cut off again; the report says so."""
    from skimage import data

    from vlir.degradations.jpeg import jpeg_roundtrip
    from vlir.pipeline import Restorer

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    wake(restorer.model)
    clean = data.astronaut()[100:228, 150:278].astype(np.float32) / 255.0
    crop = jpeg_roundtrip(clean, 20)[3:, 5:]  # the grid starts at row 5, column 3
    result = restorer(crop, prompt="remove jpeg artifacts")
    assert result.grid == (5, 3) and result.image.shape == crop.shape
    assert "JPEG grid moved to the corner (it started at row 5, column 3)" in result.report()
    mirrored = np.pad(crop, ((3, 0), (5, 0), (0, 0)), mode="reflect")
    on_grid = restorer(mirrored, prompt="remove jpeg artifacts", align_grid=False)
    assert np.array_equal(result.image, on_grid.image[3:, 5:])
    framed = restorer(crop, prompt="remove jpeg artifacts", align_grid=False)
    assert framed.grid == (0, 0) and np.abs(framed.image - result.image).max() > 1e-3


def test_a_grid_is_moved_only_where_jpeg_is_removed(tiny_checkpoints: Path) -> None:
    """A grid read in a photo with no JPEG to remove leaves the photo as framed."""
    from skimage import data

    from vlir.degradations import RestorationPrompt
    from vlir.degradations.jpeg import jpeg_roundtrip
    from vlir.perception import Analysis, Finding
    from vlir.pipeline import Restorer, removes_jpeg

    def read(*found: str) -> Analysis:
        findings = [Finding(op, 0.9, 1.0, "strength", True) for op in found]
        return Analysis(findings, RestorationPrompt.removing(found), perception=None)

    assert removes_jpeg("remove jpeg artifacts", read())
    assert not removes_jpeg("denoise with sigma 25", read("jpeg"))
    assert removes_jpeg(None, read("noise", "jpeg")) and not removes_jpeg(None, read("noise"))
    assert removes_jpeg("remove all degradation", read("jpeg"))
    assert not removes_jpeg("remove all degradation", read("blur"))
    assert removes_jpeg("make it look less blocky", read("jpeg"))  # free words: the reading

    restorer = Restorer.from_pretrained(tiny_checkpoints)
    wake(restorer.model)
    clean = data.astronaut()[100:228, 150:278].astype(np.float32) / 255.0
    crop = jpeg_roundtrip(clean, 20)[3:, 5:]
    denoised = restorer(crop, prompt="denoise with sigma 10")
    assert denoised.grid == (0, 0) and "JPEG grid" not in denoised.report()
    framed = restorer(crop, prompt="denoise with sigma 10", align_grid=False)
    assert np.array_equal(denoised.image, framed.image)


def test_restore_cli_moves_a_cropped_jpegs_grid_unless_told_not_to(
    tiny_checkpoints: Path, tmp_path: Path
) -> None:
    from skimage import data

    from vlir.degradations.jpeg import jpeg_roundtrip

    clean = data.astronaut()[100:228, 150:278].astype(np.float32) / 255.0
    crop = jpeg_roundtrip(clean, 20)[3:, 5:]  # a cropped JPEG, saved again as a PNG
    PILImage.fromarray(np.round(crop * 255).astype(np.uint8)).save(tmp_path / "crop.png")
    command = [sys.executable, "-m", "vlir.cli", "restore", "--model", str(tiny_checkpoints)]
    command += [str(tmp_path / "crop.png"), "--prompt", "remove jpeg artifacts", "-o"]
    moved = subprocess.run(
        [*command, str(tmp_path / "moved.png")], capture_output=True, text=True, timeout=300
    )
    assert moved.returncode == 0, moved.stderr
    assert "JPEG grid moved to the corner (it started at row 5, column 3)" in moved.stdout
    framed = subprocess.run(
        [*command, str(tmp_path / "framed.png"), "--no-align-grid"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert framed.returncode == 0 and "JPEG grid" not in framed.stdout
    assert PILImage.open(tmp_path / "moved.png").size == (123, 125)
