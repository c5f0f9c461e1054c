"""The noise expert: its network, when the pipeline hands it a photo, and its training."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from vlir.degradations import RestorationPrompt
from vlir.perception.analyze import Analysis, Finding
from vlir.restoration.denoiser import DenoiserConfig, DenoiserModel

if TYPE_CHECKING:  # (the tests import the pipeline inside themselves, as elsewhere here)
    from vlir.pipeline import Restorer

TINY = DenoiserConfig(width=8, encoder_blocks=(1, 1), bottleneck_blocks=1, decoder_blocks=(1, 1))


def test_denoiser_reads_its_sigma_map_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DenoiserModel(TINY).eval()
    noisy = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        low, high = model(noisy, 10.0), model(noisy, 50.0)
        per_image = model(noisy, torch.tensor([10.0, 50.0]))
        capped = model(noisy, 200.0)
        at_cap = model(noisy, TINY.max_sigma)
    assert low.shape == noisy.shape and not torch.allclose(low, high)  # the level steers it
    assert torch.allclose(per_image[0], low[0]) and torch.allclose(per_image[1], high[1])
    assert torch.equal(capped, at_cap)  # never asked past what it trained on
    model.save_pretrained(tmp_path / "denoiser")
    again = DenoiserModel.from_pretrained(tmp_path / "denoiser").eval()
    with torch.no_grad():
        assert torch.equal(again(noisy, 10.0), low)
    assert TINY.multiple == 4


def test_a_statistics_window_changes_only_maps_larger_than_a_training_crop() -> None:
    """TLC: channel attention over the window a crop covered, so training on crops of
    the window's size computes as before and a whole photo sees crop-sized statistics."""
    import dataclasses

    torch.manual_seed(0)
    model = DenoiserModel(TINY).eval()
    for name, parameter in model.named_parameters():  # (zero alpha/beta: every block idle)
        if name.endswith(("alpha", "beta")):
            torch.nn.init.constant_(parameter, 1.0)
    windowed = DenoiserModel(dataclasses.replace(TINY, statistics_window=32)).eval()
    windowed.load_state_dict(model.state_dict())
    assert [block.window for block in windowed.bottleneck] == [8]  # two halvings deep
    crop, photo = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        assert torch.allclose(windowed(crop, 25.0), model(crop, 25.0), atol=1e-6)
        assert not torch.allclose(windowed(photo, 25.0), model(photo, 25.0), atol=1e-4)


def analysis_of(**read: tuple[float, float, bool]) -> Analysis:
    """An analysis where each op reads (probability, strength, found)."""
    findings = [
        Finding(op, probability, strength, "x", present)
        for op, (probability, strength, present) in read.items()
    ]
    prompt = RestorationPrompt.blind_prompt()  # (not read by the rule)
    return Analysis(findings, prompt, perception=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("words", "read", "expected"),
    [
        ("remove all degradation", {"noise": (0.9, 27.0, True)}, (27.0, False)),
        ("denoise", {"noise": (0.9, 27.0, True)}, (27.0, False)),
        ("denoise with sigma 15", {"noise": (0.9, 27.0, True)}, (15.0, True)),
        # named but not found: the level read all the same
        ("denoise", {"noise": (0.1, 4.0, False)}, (4.0, False)),
        # anything else found: the restorer does it all
        ("denoise", {"noise": (0.9, 27.0, True), "rain": (0.8, 0.01, True)}, None),
        (
            "remove all degradation",
            {"noise": (0.9, 27.0, True), "blur": (0.8, 2.0, True), "rain": (0.8, 0.01, True)},
            None,
        ),
        # but a blur under the noise: kept ("denoise") or divided out after (blind)
        (
            "remove all degradation",
            {"noise": (0.9, 27.0, True), "blur": (0.8, 2.0, True)},
            (27.0, False),
        ),
        ("denoise", {"noise": (0.9, 27.0, True), "defocus": (0.8, 3.0, True)}, (27.0, False)),
        ("denoise; remove motion blur", {"noise": (0.9, 27.0, True)}, (27.0, False)),
        # a colour cast found and kept: the expert denoises through it; removed: the restorer
        ("denoise", {"noise": (0.9, 27.0, True), "color_cast": (0.9, -0.4, True)}, (27.0, False)),
        (
            "remove all degradation",
            {"noise": (0.9, 27.0, True), "color_cast": (0.9, -0.4, True)},
            None,
        ),
        # blind with nothing found, or more than noise asked for, or free words
        ("remove all degradation", {"noise": (0.1, 4.0, False)}, None),
        ("denoise; remove the haze", {"noise": (0.9, 27.0, True)}, None),
        ("remove the rain", {"noise": (0.9, 27.0, True)}, None),
        ("make it look nice", {"noise": (0.9, 27.0, True)}, None),
    ],
)
def test_noise_request_is_noise_alone(words: str, read: dict, expected: tuple | None) -> None:
    from vlir.pipeline import noise_request

    request = RestorationPrompt.parse(words)
    assert noise_request(request, analysis_of(**read)) == expected


def test_an_automatic_request_reads_its_numbers_as_readings() -> None:
    from vlir.pipeline import noise_request

    request = RestorationPrompt.parse("denoise with sigma 27")  # the analyzer's own prompt
    read = analysis_of(noise=(0.9, 26.6, True))
    assert noise_request(request, read, automatic=True) == (26.6, False)
    read.note = "20x20 is under 32 px a side"
    assert noise_request(request, read) is None


def test_shot_noise_alone_is_requested_as_shot_noise_with_its_peak() -> None:
    from vlir.pipeline import noise_request

    blind = RestorationPrompt.blind_prompt()
    read = analysis_of(shot_noise=(0.8, 40.0, True), noise=(0.3, 14.0, False))
    assert noise_request(blind, read, op="shot_noise") == (40.0, False)
    assert noise_request(blind, read) is None  # white noise was not found
    named = RestorationPrompt.parse("remove shot noise with peak 25")
    assert noise_request(named, read, op="shot_noise") == (25.0, True)
    both = analysis_of(shot_noise=(0.8, 40.0, True), noise=(0.9, 14.0, True))
    assert noise_request(blind, both, op="shot_noise") is None  # two noises: the restorer
    blurred = analysis_of(shot_noise=(0.8, 40.0, True), blur=(0.8, 2.0, True))
    assert noise_request(blind, blurred, op="shot_noise") == (40.0, False)  # a blur under it


def test_a_blur_under_the_noise_is_planned_for_the_experts_output() -> None:
    """Removed, a blur found with the noise is divided out of the expert's output: a
    Gaussian read as one (fitted), defocus as estimated, at a balance growing with the
    sigma; "denoise" keeps it; one not found is left."""
    from vlir.deconvolution import WIENER_BALANCE_BY_BLUR, wiener_balance
    from vlir.deconvolution.fourier import BALANCE_PER_NOISE
    from vlir.pipeline import NoiseLevel, deconvolution_request

    blind = RestorationPrompt.blind_prompt()
    gaussian = analysis_of(noise=(0.9, 50.0, True), blur=(0.8, 2.0, True))
    plan = deconvolution_request(blind, gaussian, under_noise=50.0)
    assert plan is not None and plan.fitted and plan.read_sigma == 2.0
    assert plan.balance == wiener_balance(("blur",), 50.0) == BALANCE_PER_NOISE * 50 / 255
    assert deconvolution_request(blind, gaussian) is None  # without the expert: the restorer
    light = deconvolution_request(blind, gaussian, under_noise=2.0)
    assert light.balance == WIENER_BALANCE_BY_BLUR["blur"]  # never under the blur's own
    disk = analysis_of(noise=(0.9, 25.0, True), defocus=(0.8, 4.0, True))
    plan = deconvolution_request(blind, disk, under_noise=25.0)
    assert plan is not None and not plan.fitted and plan.read_sigma is None
    assert plan.least_spread == 0.0
    kept = RestorationPrompt.parse("denoise")
    assert deconvolution_request(kept, gaussian, under_noise=50.0) is None
    alone = analysis_of(noise=(0.9, 25.0, True))  # a blur missed under the noise: left
    automatic = RestorationPrompt.parse("denoise with sigma 25")
    assert deconvolution_request(automatic, alone, automatic=True, under_noise=25.0) is None
    assert deconvolution_request(blind, alone, under_noise=25.0) is None
    shot = analysis_of(shot_noise=(0.9, 100.0, True), blur=(0.8, 2.0, True))
    plan = deconvolution_request(blind, shot, under_noise=12.75)
    assert plan is not None and plan.fitted and plan.read_sigma == 2.0
    # shot noise's sigma in the photo: sqrt(brightness / peak), here at brightness 0.25
    assert NoiseLevel("shot_noise", 100.0, "measured").photo_sigma(0.25) == pytest.approx(12.75)
    assert NoiseLevel("noise", 20.0, "measured").photo_sigma(0.25) == 20.0


@pytest.fixture
def with_expert(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny restorer and a tiny noise expert (random weights, the shipped analyzer)."""
    import dataclasses

    from tests.test_restoration import TINY as TINY_RESTORER
    from vlir.perception import PerceptionConfig, PerceptionModel
    from vlir.restoration import RestorerModel

    torch.manual_seed(0)
    perception = tmp_path / "perception"
    PerceptionModel(PerceptionConfig(widths=(8, 8, 8, 8, 8), hidden=16)).save_pretrained(perception)
    config = dataclasses.replace(TINY_RESTORER, perception=str(perception))
    RestorerModel(config).save_pretrained(tmp_path / "restorer")
    DenoiserModel(TINY).save_pretrained(tmp_path / "denoiser")
    return tmp_path / "restorer", tmp_path / "denoiser"


def listening(
    paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[Restorer, list[float]]:
    """The tiny pipeline with an expert that returns its input unchanged, and the list of
    the sigmas it is told, one per pass."""
    from vlir.pipeline import Restorer

    restorer_path, denoiser_path = paths
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    given: list[float] = []

    def keep(image: torch.Tensor, sigma: float) -> torch.Tensor:
        given.append(sigma)
        return image

    monkeypatch.setattr(restorer.denoiser, "forward", keep)
    return restorer, given


def test_the_pipeline_gives_noise_alone_to_the_expert(
    with_expert: tuple[Path, Path], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlir.pipeline import Restorer

    restorer_path, denoiser_path = with_expert
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    assert restorer.denoiser is not None
    given: list[float] = []

    def grey_out(image: torch.Tensor, sigma: float) -> torch.Tensor:
        given.append(sigma)
        return torch.full_like(image, 0.5)

    monkeypatch.setattr(restorer.denoiser, "forward", grey_out)
    stated = restorer(photo, prompt="denoise with sigma 15", tile=64)
    assert np.allclose(stated.image, 0.5) and set(given) == {15.0}  # every tile, its level
    assert stated.noise_sigma == 15.0 and stated.noise_sigma_stated and stated.tiles
    assert "by the noise expert (sigma 15, as stated)" in stated.report()
    assert "reference" not in stated.report()
    record = json.loads(json.dumps(stated.to_dict()))
    assert record["denoiser"] == {
        "sigma": 15.0,
        "sigma_stated": True,
        "source": "stated",
        "shot_peak": None,
        "present": None,
        "retyped": False,
        "colours_from_restorer": False,
        "cast_corrected_after": False,
    }
    half = restorer(photo, prompt="denoise with sigma 15", strength=0.5)
    assert np.allclose(half.image, (np.clip(photo, 0, 1) + 0.5) / 2, atol=1e-6)
    # what the expert cannot read, or asked not to: the restorer
    for kwargs in (
        {"semantic": "a person"},
        {"reference": photo[::-1]},
        {"noise_expert": False},
        {"prompt": "denoise; remove the rain"},
    ):
        words = kwargs.pop("prompt", "denoise with sigma 15")
        result = restorer(photo, prompt=words, **kwargs)
        assert result.noise_sigma is None and not np.allclose(result.image, 0.5)
        assert result.to_dict()["denoiser"] is None
    # ensemble: every view through the expert
    given.clear()
    assert np.allclose(restorer(photo, prompt="denoise", ensemble=True).image, 0.5)
    assert len(given) == 8
    # no expert loaded: the restorer
    plain = Restorer.from_pretrained(restorer_path, denoiser=None)
    assert plain.denoiser is None
    assert plain(photo, prompt="denoise with sigma 15").noise_sigma is None


def test_a_blur_removed_with_the_noise_is_divided_out_of_the_experts_output(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The expert (here one that changes nothing) first, then the stated Gaussian divided
    out of what it returns; "denoise" alone keeps the blur; --no-deconvolve: the restorer."""
    from skimage import data

    from vlir.deconvolution import gaussian_psf, wiener_balance, wiener_deconvolve
    from vlir.degradations import parse_ops

    restorer, given = listening(with_expert, monkeypatch)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    blurred = parse_ops("blur sigma=2", np.random.default_rng(0)).apply(clean)
    result = restorer(blurred, prompt="deblur with sigma 2; denoise with sigma 5")
    assert given == [5.0] and result.sigma == 2.0 and result.action == "restored"
    balance = wiener_balance(("blur",), 5.0)
    expected = np.clip(wiener_deconvolve(blurred, gaussian_psf(2.0), balance), 0, 1)
    assert np.allclose(result.image, expected, atol=1e-5)
    assert np.mean((result.image - clean) ** 2) < 0.5 * np.mean((blurred - clean) ** 2)
    report = result.report()
    assert "by the noise expert (sigma 5, as stated)" in report
    assert "blur by deconvolution (a Gaussian of sigma 2.00, as stated)" in report
    assert result.to_dict()["deconvolution"]["gaussian_sigma"] == 2.0
    kept = restorer(blurred, prompt="denoise with sigma 5")
    assert kept.kernel is None and np.allclose(kept.image, blurred, atol=1e-6)
    both = restorer(blurred, prompt="deblur with sigma 2; denoise with sigma 5", deconvolve=False)
    assert both.noise_sigma is None and both.kernel is None  # the restorer does both


def test_a_blur_hinted_under_the_noise_is_planned_only_where_it_is_removed() -> None:
    """The blurs' probabilities are summed; any blur found, or a sum under the hint, and
    there is no hint; the plan is a fitted Gaussian at a found Gaussian's balance."""
    from vlir.deconvolution import wiener_balance
    from vlir.pipeline import BLUR_UNDER_NOISE_HINT, blur_hint, hidden_blur_request

    spread = analysis_of(
        noise=(0.9, 30.0, True),
        blur=(0.2, 1.0, False),
        defocus=(0.25, 2.0, False),
        motion_blur=(0.1, 5.0, False),
        rain=(0.4, 0.01, False),
    )
    assert blur_hint(spread) == pytest.approx(0.55)  # rain is no blur
    at = analysis_of(noise=(0.9, 30.0, True), defocus=(BLUR_UNDER_NOISE_HINT, 2.0, False))
    assert blur_hint(at) == BLUR_UNDER_NOISE_HINT  # at the hint: hinted
    assert blur_hint(analysis_of(noise=(0.9, 30.0, True), blur=(0.3, 1.0, False))) is None
    found = analysis_of(noise=(0.9, 30.0, True), blur=(0.8, 1.0, True), defocus=(0.3, 2, False))
    assert blur_hint(found) is None  # found: planned as found (deconvolution_request)
    plan = hidden_blur_request(30.0)
    assert plan.fitted and plan.read_sigma is None and plan.stated_sigma is None
    assert plan.balance == wiener_balance(("blur",), 30.0) and plan.least_spread == 0.0


def misreading(findings: list[Finding], words: str) -> Callable:
    """An ``analyze`` that gives ``findings`` and prompts ``words``, keeping the real
    analysis's perception tokens: what a misreading analyzer would say."""
    import vlir.pipeline

    analyze = vlir.pipeline.restorer.analyze

    def read(model: object, pixels: torch.Tensor) -> Analysis:
        real = analyze(model, pixels)
        return Analysis(list(findings), RestorationPrompt.parse(words), real.perception)

    return read


def hinting(blur: float, defocus: float, noise: float = 2.0) -> Callable:
    """An ``analyze`` that finds white noise of sigma ``noise`` alone and reads the two
    blurs at these probabilities, not found."""
    findings = [
        Finding("noise", 0.9, noise, "sigma", True),
        Finding("blur", blur, 1.0, "sigma", False),
        Finding("defocus", defocus, 2.0, "radius", False),
    ]
    return misreading(findings, f"denoise with sigma {noise:g}")


def test_a_blur_hinted_under_the_noise_is_divided_out_automatic_or_blind(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise found alone, blurs read under their thresholds but summing past the hint:
    the expert's output (here the photo) has a fitted Gaussian divided out, and the report
    says why; "denoise" keeps the blur, and a sum under the hint leaves it."""
    from skimage import data

    import vlir.pipeline
    from vlir.deconvolution import gaussian_psf, wiener_balance, wiener_deconvolve
    from vlir.degradations import parse_ops
    from vlir.io import grey_rgb

    restorer, given = listening(with_expert, monkeypatch)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    blurred = parse_ops("blur sigma=2, noise sigma=2", np.random.default_rng(0)).apply(clean)
    monkeypatch.setattr(vlir.pipeline.restorer, "analyze", hinting(0.3, 0.25))
    for prompt in (None, "remove all degradation"):
        result = restorer(blurred, prompt=prompt)
        assert result.blurred == pytest.approx(0.55) and len(given) == 1
        assert result.sigma is not None and 1.5 < result.sigma < 2.6  # fitted, near the truth
        balance = wiener_balance(("blur",), result.noise_sigma)
        kernel = gaussian_psf(result.sigma)
        expected = np.clip(wiener_deconvolve(np.clip(blurred, 0, 1), kernel, balance), 0, 1)
        assert np.allclose(result.image, expected, atol=1e-5)
        # (the expert here leaves the sigma-2 noise, which the inverse lifts a little)
        assert np.mean((result.image - clean) ** 2) < 0.6 * np.mean((blurred - clean) ** 2)
        assert "but it reads blurred under the noise (blur p=0.55, summed)" in result.report()
        assert result.to_dict()["blurred"] == pytest.approx(0.55)
        given.clear()
    kept = restorer(blurred, prompt="denoise")
    assert kept.blurred is None and kept.kernel is None
    assert np.allclose(kept.image, np.clip(blurred, 0, 1), atol=1e-6)
    grey = restorer(grey_rgb(blurred))  # a grey photo reads blurrier: no hint taken
    assert grey.blurred is None and grey.kernel is None
    for hint in (hinting(0.2, 0.2), hinting(0.3, 0.25, noise=20.0)):
        # under the hint; or the noise measures a tenth of what it reads (a real photo's
        # coarse noise, which the inverse would sharpen): the expert's output as it is
        monkeypatch.setattr(vlir.pipeline.restorer, "analyze", hint)
        unhinted = restorer(blurred)
        assert unhinted.blurred is None and unhinted.kernel is None
        assert "blurred under the noise" not in unhinted.report()


def test_a_jpeg_read_beside_the_noise_that_the_blocks_disprove_is_left_out(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise and JPEG found: where the photo's blocks show no quantisation and its noise
    measures as white as it reads, automatic or blind, the JPEG is left out and the expert
    takes the noise; a real JPEG, words that name the JPEG, or noise measured far weaker
    than it reads keep the restorer."""
    from skimage import data

    import vlir.pipeline
    from vlir.degradations.jpeg import jpeg_roundtrip

    restorer, given = listening(with_expert, monkeypatch)
    findings = [Finding("noise", 0.99, 30.0, "sigma", True), Finding("jpeg", 0.8, 36.0, "q", True)]
    words = "remove JPEG artifacts with quality 36; denoise"
    monkeypatch.setattr(vlir.pipeline.restorer, "analyze", misreading(findings, words))
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    noisy = clean + noise * np.float32(25 / 255)  # (unclipped: its level is measured)
    for prompt in (None, "remove all degradation"):
        result = restorer(noisy, prompt=prompt)
        assert result.unquantised is not None and len(given) == 1 and result.noise_sigma
        assert [f.op for f in result.analysis.found] == ["noise"]
        assert "not the JPEG read (p=0.80): its blocks show no quantisation" in result.report()
        assert "JPEG" not in result.prompt and result.to_dict()["unquantised"] < 1.25
        given.clear()
    saved = restorer(jpeg_roundtrip(np.clip(noisy, 0, 1), 50))  # a JPEG: the restorer
    named = restorer(noisy, prompt="remove JPEG artifacts; denoise")
    findings[0] = Finding("noise", 0.99, 60.0, "sigma", True)  # read over twice the 25 there:
    coarse = restorer(noisy)  # not white noise (a real photo's), so no reason to doubt the JPEG
    for result in (saved, named, coarse):
        assert result.unquantised is None and result.noise_sigma is None and not given


def test_a_cast_removed_with_the_noise_is_taken_off_the_experts_output(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise and a colour cast found, both removed (automatic, blind, or named): the expert
    denoises and its output takes the colours of the restorer's, per channel; named but
    not found, the restorer corrects the cast of the expert's output; "denoise" keeps the
    cast (the expert alone), and anything more found keeps the restorer."""
    from skimage import data

    import vlir.pipeline
    from vlir.pipeline import CAST_WORDS, cast_with_noise, colours_of

    detail = torch.rand(1, 3, 16, 16)
    gain, offset = torch.tensor([1.2, 0.9, 0.7]), torch.tensor([0.05, -0.02, 0.1])
    colours = detail * gain[:, None, None] + offset[:, None, None]
    assert torch.allclose(colours_of(colours, detail), colours.clamp(0, 1), atol=1e-5)

    both = analysis_of(noise=(0.99, 20.0, True), color_cast=(0.9, -0.5, True))
    for words in ("denoise with sigma 20; correct the color cast", "remove all degradation"):
        assert cast_with_noise(RestorationPrompt.parse(words), both)
    assert not cast_with_noise(RestorationPrompt.parse("denoise"), both)
    unseen = analysis_of(noise=(0.99, 20.0, True), color_cast=(0.3, -0.5, False))
    assert cast_with_noise(RestorationPrompt.parse("correct the color cast; denoise"), unseen)
    assert not cast_with_noise(RestorationPrompt.blind_prompt(), unseen)  # (none found)
    more = analysis_of(noise=(0.9, 20.0, True), color_cast=(0.9, -0.5, True), rain=(0.9, 0, True))
    assert not cast_with_noise(RestorationPrompt.blind_prompt(), more)

    restorer, given = listening(with_expert, monkeypatch)
    findings = [
        Finding("noise", 0.99, 20, "sigma", True),
        Finding("color_cast", 0.9, -0.5, "t", True),
    ]
    words = "correct the color cast; denoise with sigma 20"
    monkeypatch.setattr(vlir.pipeline.restorer, "analyze", misreading(findings, words))
    clean = data.astronaut()[:96, 160:256].astype(np.float32) / 255.0
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    noisy = clean + noise * np.float32(20 / 255)
    photo = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    for prompt in (None, "remove all degradation"):
        result = restorer(noisy, prompt=prompt)
        assert result.cast and len(given) == 1 and result.noise_sigma_source == "measured"
        alone = restorer(noisy, prompt=prompt, noise_expert=False)  # the restorer's colours
        colours = torch.from_numpy(alone.image).permute(2, 0, 1)[None]
        expected = colours_of(colours, photo.clamp(0, 1))[0].permute(1, 2, 0).numpy()
        assert np.allclose(result.image, expected, atol=1e-5)
        assert "in the colours of the restorer's, which corrected the cast" in result.report()
        assert result.to_dict()["denoiser"]["colours_from_restorer"]
        given.clear()
    kept = restorer(noisy, prompt="denoise")
    assert not kept.cast and np.allclose(kept.image, np.clip(noisy, 0, 1), atol=1e-6)
    # named but not found: the restorer corrects the cast of the expert's output
    findings[1] = Finding("color_cast", 0.3, -0.5, "t", False)
    given.clear()
    named = restorer(noisy, prompt="correct the color cast; denoise")
    assert named.cast_after and not named.cast and len(given) == 1
    expected = restorer(np.clip(noisy, 0, 1), prompt=CAST_WORDS, noise_expert=False).image
    assert np.allclose(named.image, expected, atol=1e-5)
    assert not np.allclose(expected, np.clip(noisy, 0, 1), atol=1e-3)
    assert "then the restorer corrected the cast of its output" in named.report()
    assert named.to_dict()["denoiser"]["cast_corrected_after"]
    given.clear()
    blind = restorer(noisy, prompt="remove all degradation")  # not found: the noise alone
    assert not blind.cast_after and np.allclose(blind.image, np.clip(noisy, 0, 1), atol=1e-6)
    findings[0] = Finding("noise", 0.99, 60.0, "sigma", True)  # read at three times the 20
    given.clear()
    coarse = restorer(noisy)  # there: a real photo's coarse noise, for the restorer
    assert not coarse.cast and coarse.noise_sigma is None and not given


def test_the_expert_gets_the_measured_level_unless_stated(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A level not stated is measured (PCA of the patches; a grey photo's weakly
    textured ones), not the tiny analyzer's random read."""
    from skimage import data

    from vlir.io import grey_rgb

    restorer, given = listening(with_expert, monkeypatch)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    result = restorer(clean + noise * np.float32(20 / 255), prompt="denoise")
    assert result.noise_sigma_source == "measured" and abs(result.noise_sigma - 20) < 0.5
    assert set(given) == {result.noise_sigma}
    assert f"(sigma {round(result.noise_sigma, 1):g}, measured from the photo)" in result.report()
    grey = grey_rgb(clean) + noise[..., :1] * np.float32(20 / 255)
    read = restorer(grey, prompt="denoise")
    assert read.noise_sigma_source == "measured" and abs(read.noise_sigma - 20) < 0.6
    stated = restorer(grey, prompt="denoise with sigma 9")
    assert (stated.noise_sigma, stated.noise_sigma_source) == (9.0, "stated")


def test_a_stated_sigma_under_the_measured_one_puts_the_rest_back(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "denoise with sigma 20" on sigma-40 noise: the expert removes all 40 and
    sqrt(40^2 - 20^2) / 40 of what it removed is put back (the engine's partial target)."""
    from skimage import data

    from vlir.pipeline import Restorer

    restorer_path, denoiser_path = with_expert
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    given: list[float] = []

    def grey_out(image: torch.Tensor, sigma: float) -> torch.Tensor:
        given.append(sigma)
        return torch.full_like(image, 0.5)

    monkeypatch.setattr(restorer.denoiser, "forward", grey_out)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    noisy = clean + noise * np.float32(40 / 255)
    partial = restorer(noisy, prompt="denoise with sigma 20")
    present = partial.noise_sigma_present
    assert abs(present - 40) < 1 and given == [present]  # told all of it
    assert (partial.noise_sigma, partial.noise_sigma_source) == (20.0, "stated")
    keep = np.sqrt(present**2 - 20**2) / present
    assert np.allclose(partial.image, np.clip(0.5 + keep * (noisy - 0.5), 0, 1), atol=1e-5)
    assert f"of sigma {round(present, 1):g} measured, the rest left" in partial.report()
    given.clear()  # stated at (or over) what is there: the stated level, nothing put back
    whole = restorer(noisy, prompt="denoise with sigma 40")
    assert given == [40.0] and whole.noise_sigma_present is None
    assert np.allclose(whole.image, 0.5)


def test_shot_noise_goes_to_the_expert_through_the_anscombe_transform(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from skimage import data

    from vlir.degradations import get_op
    from vlir.pipeline import Restorer
    from vlir.restoration.anscombe import anscombe, inverse_anscombe, stabilised_sigma

    restorer_path, denoiser_path = with_expert
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    given: list[tuple[torch.Tensor, float]] = []

    def keep(image: torch.Tensor, sigma: float) -> torch.Tensor:
        given.append((image, sigma))
        return image

    monkeypatch.setattr(restorer.denoiser, "forward", keep)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    op = get_op("shot_noise")
    noisy = op.apply(clean, op.params_type(peak=30.0, seed=0))
    stated = restorer(noisy, prompt="remove shot noise with peak 30")
    assert (stated.shot_peak, stated.noise_sigma_source) == (30.0, "stated")
    assert stated.noise_sigma == pytest.approx(stabilised_sigma(30.0))
    assert given[-1][1] == pytest.approx(stabilised_sigma(30.0))
    pixels = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    assert torch.allclose(given[-1][0], anscombe(pixels, 30.0), atol=1e-5)  # transformed in
    back = inverse_anscombe(anscombe(pixels, 30.0), 30.0)[0].permute(1, 2, 0).clamp(0, 1)
    assert np.allclose(stated.image, back.numpy(), atol=1e-5)  # and undone after
    assert "(on the Anscombe transform, peak 30, as stated)" in stated.report()
    assert stated.to_dict()["denoiser"]["shot_peak"] == 30.0
    measured = restorer(noisy, prompt="remove shot noise")  # the tiny analyzer's read, corrected
    assert measured.noise_sigma_source == "measured" and abs(measured.shot_peak - 30) < 2
    # too strong for the expert's sigmas (peak 2: sigma 117 transformed): the restorer
    assert restorer(noisy, prompt="remove shot noise with peak 2").noise_sigma is None


def reading(op: str, level: float, words: str) -> Callable:
    """An ``analyze`` that finds ``op`` at ``level`` alone (and prompts ``words``)."""
    from vlir.degradations import get_op

    return misreading([Finding(op, 0.9, level, get_op(op).strength, True)], words)


def test_the_kind_of_noise_read_gives_way_to_the_kind_measured(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Automatic, white noise read as shot noise goes to the expert as white noise at
    its measured sigma, and shot noise read as white through the Anscombe transform; the
    words' kind stands."""
    from skimage import data

    from vlir.degradations import get_op
    from vlir.pipeline import Restorer

    restorer_path, denoiser_path = with_expert
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    monkeypatch.setattr(restorer.denoiser, "forward", lambda image, sigma: image)
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    white = clean + noise * np.float32(20 / 255)
    with monkeypatch.context() as patch:
        patch.setattr(
            "vlir.pipeline.restorer.analyze",
            reading("shot_noise", 40.0, "remove shot noise with peak 40"),
        )
        retyped = restorer(white)
        named = restorer(white, prompt="remove shot noise")
    assert retyped.noise_retyped and retyped.shot_peak is None
    assert abs(retyped.noise_sigma - 20) < 1 and retyped.noise_sigma_source == "measured"
    assert "white noise, not the shot noise read" in retyped.report()
    assert retyped.to_dict()["denoiser"]["retyped"]
    assert not named.noise_retyped and named.shot_peak is not None  # the words' kind
    op = get_op("shot_noise")
    shot = op.apply(clean, op.params_type(peak=100.0, seed=0))
    with monkeypatch.context() as patch:
        patch.setattr(
            "vlir.pipeline.restorer.analyze", reading("noise", 12.0, "denoise with sigma 12")
        )
        measured = restorer(shot)
    assert measured.noise_retyped and abs(measured.shot_peak - 100) < 10
    assert "shot noise, not the white noise read" in measured.report()


def test_clipped_strong_noise_has_its_level_fitted_after_a_first_pass(
    with_expert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An 8-bit photo of sigma-60 noise, which the PCA measure declines: the expert runs
    at the level read, the sigma is fitted to the clipped noise against its output, and
    the expert runs again at that."""
    from skimage import data

    from vlir.pipeline import Restorer

    restorer_path, denoiser_path = with_expert
    restorer = Restorer.from_pretrained(restorer_path, denoiser=str(denoiser_path))
    clean = data.astronaut()[:192, 160:352].astype(np.float32) / 255.0
    given: list[float] = []

    def perfect(image: torch.Tensor, sigma: float) -> torch.Tensor:
        given.append(sigma)
        return torch.from_numpy(clean).permute(2, 0, 1)[None]

    monkeypatch.setattr(restorer.denoiser, "forward", perfect)
    noise = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    file = np.round(np.clip(clean + noise * np.float32(60 / 255), 0, 1) * 255) / 255
    with monkeypatch.context() as patch:
        patch.setattr(
            "vlir.pipeline.restorer.analyze", reading("noise", 40.0, "denoise with sigma 40")
        )
        result = restorer(file.astype(np.float32))
    assert given[0] == 40.0 and len(given) == 2 and abs(given[1] - 60) < 2
    assert result.noise_sigma == given[1] and result.noise_sigma_source == "fitted"
    assert "fitted to the photo's clipped noise" in result.report()
    given.clear()
    restorer(file.astype(np.float32), prompt="denoise with sigma 55")  # stated: one pass
    assert given == [55.0]


def tiny_recipe(tmp_path: Path, data: Path, steps: int) -> Path:
    """A recipe for a width-8 expert on the tiny photos, validating at its last step."""
    recipe = tmp_path / "denoiser.yaml"
    recipe.write_text(
        f"data: {data}\nsteps: {steps}\nbatch: 2\ncrop: 32\nholdout: 1\n"
        f"validate_every: {steps}\nlog_every: 1\ncheckpoint_minutes: 0\nmodel:\n"
        "  width: 8\n  encoder_blocks: [1]\n  decoder_blocks: [1]\n  bottleneck_blocks: 1\n"
    )
    return recipe


def test_denoiser_training_runs_resumes_and_validates(
    tmp_path: Path, tiny_training_data: tuple[Path, Path]
) -> None:
    from vlir.training.common import load_recipe
    from vlir.training.denoiser import DenoiserRecipe, noise_sigma, train

    recipe = tiny_recipe(tmp_path, tiny_training_data[0], steps=2)
    out = tmp_path / "run"
    train(load_recipe(DenoiserRecipe, recipe, {"out": str(out)}))
    train(load_recipe(DenoiserRecipe, recipe, {"out": str(out), "steps": 3}))
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 3
    assert {"val/psnr_15", "val/psnr_25", "val/psnr_50", "val/psnr"} <= set(lines[-1])
    assert DenoiserModel.from_pretrained(out / "best").config.encoder_blocks == (1,)
    from vlir.degradations import parse_ops

    record = parse_ops("blur sigma=1, noise sigma=20", np.random.default_rng(0))
    assert noise_sigma(record) == 20.0
    assert noise_sigma(parse_ops("rain", np.random.default_rng(0))) == 0.0


def test_psnr_loss_is_minus_the_mean_psnr_and_weighs_light_noise_as_heavy() -> None:
    from vlir.training.denoiser import PSNR_LOSS_FLOOR, psnr_loss

    clean = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    error = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    scale = torch.tensor([10.0, 60.0]).view(2, 1, 1, 1) / 255  # a light and a heavy crop
    output = (clean + error * scale).requires_grad_()
    mse = ((output.detach() - clean) ** 2).mean(dim=(1, 2, 3))
    loss = psnr_loss(output, clean)
    assert torch.isclose(loss, (10 * torch.log10(mse)).mean())
    loss.backward()
    # each crop's gradient is its error over its MSE: the light crop pulls 6x harder per
    # pixel, where L1's pull is the same sign-for-sign for both
    light, heavy = (output.grad[i].abs().mean() for i in range(2))
    assert torch.isclose(light / heavy, torch.tensor(6.0), rtol=0.1)
    # below half a grey level a crop pushes no further
    exact = clean.clone().requires_grad_()
    assert torch.isclose(psnr_loss(exact, clean), 10 * torch.log10(torch.tensor(PSNR_LOSS_FLOOR)))
    psnr_loss(exact, clean).backward()
    assert exact.grad.abs().max() == 0


def test_denoiser_training_takes_the_psnr_loss_and_refuses_an_unknown_one(
    tmp_path: Path, tiny_training_data: tuple[Path, Path]
) -> None:
    from vlir.training.common import load_recipe
    from vlir.training.denoiser import DenoiserRecipe, train

    recipe = tiny_recipe(tmp_path, tiny_training_data[0], steps=1)
    out = tmp_path / "run"
    train(load_recipe(DenoiserRecipe, recipe, {"out": str(out), "loss": "psnr"}))
    logged = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert logged["loss/psnr"] < 0  # minus a PSNR in dB
    with pytest.raises(ValueError, match="loss: 'l2' is not one of l1, psnr"):
        train(load_recipe(DenoiserRecipe, recipe, {"out": str(tmp_path / "b"), "loss": "l2"}))


def test_benchmark_names_say_which_restorer_variant() -> None:
    from vlir.evaluation.models import restorer_variant

    assert restorer_variant("restorer") == ("restorer", False, False)
    assert restorer_variant("restorer+alone") == ("restorer", False, True)
    assert restorer_variant("runs/x/best+alone+x8") == ("runs/x/best", True, True)
    assert restorer_variant("restorer+x8+alone") == ("restorer", True, True)
