"""Blur (camera shake, defocus, Gaussian): the Wiener inverse, blind kernel estimation, and
when the pipeline uses them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlir.deconvolution import (
    IMPLAUSIBLE_SPREAD,
    SHARP_SPREAD,
    WIENER_BALANCE_BY_BLUR,
    blur_spread,
    estimate_blur_kernel,
    gaussian_psf,
    gaussian_width,
    kernel_size_for,
    kernel_spread,
    narrowest_gaussian,
    wiener_deconvolve,
)
from vlir.degradations import RestorationPrompt, get_op
from vlir.evaluation import psnr


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    """A 192x192 crop of the astronaut: enough edges in every direction to fit a kernel."""
    from skimage import data

    return (data.astronaut()[60:252, 140:332].astype(np.float32) / 255.0).copy()


def inner_psnr(image: np.ndarray, target: np.ndarray) -> float:
    """PSNR away from the borders, where what lay outside the frame is a guess (mirrored)."""
    return psnr(image[20:-20, 20:-20], target[20:-20, 20:-20])


def shake(image: np.ndarray, length: int, angle: int) -> tuple[np.ndarray, np.ndarray]:
    op = get_op("motion_blur")
    params = op.params_type(length=length, angle=angle, seed=3)
    return op.apply(image, params), op.kernel(params)


def test_wiener_with_the_true_kernel_undoes_the_blur(sharp: np.ndarray) -> None:
    blurred, kernel = shake(sharp, 15, 120)
    restored = np.clip(wiener_deconvolve(blurred, kernel), 0, 1)
    assert restored.shape == sharp.shape and restored.dtype == np.float32
    assert inner_psnr(restored, sharp) > inner_psnr(blurred, sharp) + 4  # measured 22.7 -> 28.5
    assert psnr(restored, sharp) > psnr(blurred, sharp) + 1  # with the borders: 22.6 -> 24.0
    grey = wiener_deconvolve(blurred[..., 0], kernel)
    assert np.allclose(grey, wiener_deconvolve(blurred, kernel)[..., 0], atol=1e-5)


def test_wiener_aligns_on_the_kernels_centre_of_mass(sharp: np.ndarray) -> None:
    """A kernel is known only up to a shift: the same path one pixel off gives the same
    photo, and a point keeps the photo (its tone exactly)."""
    blurred, kernel = shake(sharp, 11, 40)
    moved = np.zeros_like(kernel)
    moved[1:, :-1] = kernel[:-1, 1:]
    assert (
        np.abs(wiener_deconvolve(blurred, moved) - wiener_deconvolve(blurred, kernel)).max() < 1e-4
    )
    point = np.zeros((5, 5), np.float32)
    point[2, 2] = 1.0
    kept = wiener_deconvolve(sharp, point)
    assert psnr(np.clip(kept, 0, 1), sharp) > 45
    assert abs(float(kept.mean()) - float(sharp.mean())) < 1e-4


@pytest.mark.parametrize(("length", "angle"), [(9, 30), (15, 120)])
def test_a_kernel_estimated_from_the_blurred_photo_alone_deblurs_it(
    sharp: np.ndarray, length: int, angle: int
) -> None:
    blurred, kernel = shake(sharp, length, angle)
    estimate = estimate_blur_kernel(blurred)
    assert estimate.shape == (35, 35) and estimate.min() >= 0
    assert abs(float(estimate.sum()) - 1) < 1e-5
    rows, cols = np.mgrid[:35, :35]
    assert abs(float((estimate * rows).sum()) - 17) <= 0.5
    assert abs(float((estimate * cols).sum()) - 17) <= 0.5
    restored = np.clip(wiener_deconvolve(blurred, estimate), 0, 1)
    true = np.clip(wiener_deconvolve(blurred, kernel), 0, 1)
    # measured away from the borders: 24.8 -> 30.7 (the true kernel's 31.8), 22.7 -> 27.9 (28.5)
    assert inner_psnr(restored, sharp) > inner_psnr(blurred, sharp) + 4
    assert inner_psnr(restored, sharp) > inner_psnr(true, sharp) - 1.5
    assert psnr(restored, sharp) > psnr(blurred, sharp) + 2
    with pytest.raises(ValueError, match="odd"):
        estimate_blur_kernel(blurred, 34)
    assert estimate_blur_kernel(blurred, 3).shape == (3, 3)  # one scale only


@pytest.mark.parametrize(
    ("name", "params"), [("defocus", {"radius": 3.0}), ("blur", {"sigma": 1.5})]
)
def test_defocus_and_gaussian_blur_are_estimated_too(
    sharp: np.ndarray, name: str, params: dict[str, float]
) -> None:
    """Nothing in the fit assumes a path: a disk and a Gaussian come out as blobs of about
    their spread, and their inverse comes within a dB of the true kernel's."""
    op = get_op(name)
    blurred, kernel = op.apply(sharp, op.params_type(**params)), op.kernel(op.params_type(**params))
    estimate = estimate_blur_kernel(blurred)
    # measured: disk 2.24 (true 2.17), Gaussian 1.89 (2.12; its faint tail is dropped)
    assert abs(kernel_spread(estimate) - kernel_spread(kernel)) < 0.4
    balance = WIENER_BALANCE_BY_BLUR[name]
    restored = np.clip(wiener_deconvolve(blurred, estimate, balance), 0, 1)
    true = np.clip(wiener_deconvolve(blurred, kernel, balance), 0, 1)
    # measured away from the borders: disk 25.8 -> 31.0 (true 31.5), Gaussian 26.8 -> 30.9 (31.7)
    assert inner_psnr(restored, sharp) > inner_psnr(blurred, sharp) + 3.5
    assert inner_psnr(restored, sharp) > inner_psnr(true, sharp) - 1.5


def test_a_sharp_photo_gives_a_point(sharp: np.ndarray) -> None:
    """A photo's own softness is not a blur to undo: the estimate of a sharp photo is a
    point, and deconvolving with it keeps the photo. So is a photo too small to fit one."""
    estimate = estimate_blur_kernel(sharp)
    assert kernel_spread(estimate) == 0.0 and estimate[17, 17] == 1.0
    assert psnr(np.clip(wiener_deconvolve(sharp, estimate), 0, 1), sharp) > 40
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 3), (3, 500, 3), (34, 80)]:  # narrower than the kernel: no fit
        tiny = estimate_blur_kernel(rng.random(shape, np.float32))
        assert tiny.shape == (35, 35) and kernel_spread(tiny) == 0.0
    disk = get_op("defocus").kernel(get_op("defocus").params_type(radius=2.0))
    assert 1.2 < kernel_spread(disk) < 1.6  # radius 2: weight at ~2/sqrt(2) on average
    assert kernel_spread(disk) == pytest.approx(kernel_spread(np.pad(disk, 3)))


def test_a_large_photo_is_read_through_its_busiest_window(sharp: np.ndarray) -> None:
    """Only a 512-px window of a large photo enters the fit: the one with the most edges."""
    blurred, _ = shake(sharp, 9, 30)
    canvas = np.full((700, 760, 3), 0.5, np.float32)  # flat, apart from the photo
    canvas[480:672, 540:732] = blurred
    estimate = estimate_blur_kernel(canvas)  # a flat window would give a point
    restored = np.clip(wiener_deconvolve(blurred, estimate), 0, 1)
    # measured 24.8 -> 27.7 dB (30.7 read from the photo alone: the window is half flat)
    assert inner_psnr(restored, sharp) > inner_psnr(blurred, sharp) + 2
    flat = estimate_blur_kernel(np.full((64, 64, 3), 0.5, np.float32), 9)
    assert flat[4, 4] == 1.0 and flat.sum() == 1.0


def test_kernel_size_follows_the_stated_or_perceived_length() -> None:
    assert kernel_size_for(None) == 35 and kernel_size_for(5) == 35
    assert kernel_size_for(40) == 55 and kernel_size_for(41) % 2 == 1


def test_which_requests_deconvolve() -> None:
    """Where blur is all the request removes, or it is blind and the analyzer found only
    blur (or nothing: then only if the photo reads blurred); never in mixtures (the
    restorer does those) or where the words keep it."""
    from vlir.perception.analyze import Analysis, Finding
    from vlir.pipeline import (
        ENLARGED_HINT,
        UNSEEN_BLUR_SPREAD,
        Deconvolution,
        deconvolution_request,
    )

    def analysis(*found: tuple[str, float]) -> Analysis:
        findings = [Finding(op, 0.9, strength, "length", True) for op, strength in found]
        return Analysis(findings, RestorationPrompt(), None)  # type: ignore[arg-type]

    def plan(prompt: RestorationPrompt | str, *found: tuple[str, float]) -> Deconvolution | None:
        request = RestorationPrompt.parse(prompt) if isinstance(prompt, str) else prompt
        return deconvolution_request(request, analysis(*found))

    shake = WIENER_BALANCE_BY_BLUR["motion_blur"]
    # the blur's size, stated or read, bounds how far a trusted estimate may spread
    assert plan("remove motion blur with length 40 and angle 10") == Deconvolution(
        kernel_size_for(40), shake, sized=blur_spread("motion_blur", 40)
    )
    assert plan("remove motion blur") == Deconvolution(35, shake)
    assert plan("remove motion blur", ("motion_blur", 44)) == Deconvolution(
        kernel_size_for(44), shake, sized=blur_spread("motion_blur", 44)
    )
    blind = RestorationPrompt.blind_prompt()
    assert plan(blind, ("motion_blur", 30)) == Deconvolution(
        kernel_size_for(30), shake, sized=blur_spread("motion_blur", 30)
    )
    disk = WIENER_BALANCE_BY_BLUR["defocus"]
    assert plan("remove defocus blur with radius 4") == Deconvolution(
        35, disk, sized=blur_spread("defocus", 4)
    )
    gauss = WIENER_BALANCE_BY_BLUR["blur"]
    # a Gaussian alone: its width as stated (nothing to check it against), else as read
    read = Deconvolution(35, gauss, read_sigma=2.0, sized=blur_spread("blur", 2.0))
    assert plan("deblur", ("blur", 2.0)) == read
    assert plan(blind, ("blur", 2.0)) == read
    assert plan("deblur with sigma 1.5", ("blur", 2.0)) == Deconvolution(
        35, gauss, stated_sigma=1.5, sized=blur_spread("blur", 1.5)
    )
    assert plan("deblur") == Deconvolution(35, gauss)  # stated without a width, nothing read
    # the automatic prompt carries the analyzer's numbers: readings, to be checked
    automatic = deconvolution_request(
        RestorationPrompt.parse("deblur with sigma 2.5"), analysis(("blur", 2.5)), automatic=True
    )
    assert automatic == Deconvolution(35, gauss, read_sigma=2.5, sized=blur_spread("blur", 2.5))
    assert plan("deblur", ("defocus", 3.0)) == Deconvolution(35, gauss)  # read as a disk
    assert plan(blind, ("defocus", 3.0), ("blur", 1.0)) == Deconvolution(
        35,
        disk,
        sized=blur_spread("defocus", 3.0),  # the wider of the two
    )
    assert plan("remove motion blur; remove defocus blur") == Deconvolution(35, min(shake, disk))
    assert plan("remove motion blur; denoise") is None
    assert plan(blind, ("motion_blur", 30), ("noise", 25)) is None
    assert plan(blind, ("rain", 0.5)) is None
    # nothing found: deconvolve if the photo reads blurred after all (else the restorer)
    assert plan(blind) == Deconvolution(35, WIENER_BALANCE_BY_BLUR["blur"], UNSEEN_BLUR_SPREAD)
    # ... unless it reads enlarged (downsampling under its threshold, over the hint)
    for downsample, expected in ((ENLARGED_HINT, None), (0.002, plan(blind))):
        reading = Finding("downsample", downsample, 2.0, "scale", False)
        assert deconvolution_request(blind, Analysis([reading], blind, None)) == expected  # type: ignore[arg-type]
    assert plan("keep the image as it is") is None
    assert plan("remove the rain but keep the motion blur", ("motion_blur", 12)) is None
    # a light JPEG rides along (left as it is, and only a real blur is deconvolved)
    light = Deconvolution(35, WIENER_BALANCE_BY_BLUR["blur"], SHARP_SPREAD, ("jpeg",))
    assert plan("deblur; remove jpeg artifacts with quality 90") == light
    assert plan(blind, ("blur", 2.0), ("jpeg", 88)) == dataclasses.replace(
        light, read_sigma=2.0, sized=blur_spread("blur", 2.0)
    )
    assert plan("deblur; remove jpeg artifacts with quality 40") is None
    assert plan("deblur; remove jpeg artifacts") is None  # no quality: the restorer's
    assert plan(blind, ("blur", 2.0), ("jpeg", 60)) is None
    assert plan("remove jpeg artifacts with quality 90") is None  # no blur
    assert plan(blind, ("jpeg", 90), ("noise", 10)) is None


def test_a_gaussians_width_is_fitted_back_from_its_kernel() -> None:
    """The least-squares width of the engine's own Gaussians, laid in an estimate's 35x35
    frame, is their sigma; a point fits the narrowest width, which makes a point again."""
    for sigma in (0.6, 1.3, 2.5, 4.0):
        kernel = gaussian_psf(sigma)
        frame = np.zeros((35, 35), np.float32)
        offset = (35 - kernel.shape[0]) // 2
        frame[offset : offset + kernel.shape[0], offset : offset + kernel.shape[0]] = kernel
        assert gaussian_width(frame) == pytest.approx(sigma, abs=0.02)
    point = np.zeros((35, 35), np.float32)
    point[17, 17] = 1.0
    assert gaussian_width(point) < 0.2
    assert gaussian_psf(narrowest_gaussian(3.0, point)).shape == (1, 1)
    assert kernel_spread(gaussian_psf(0.05)) == 0.0
    with pytest.raises(ValueError, match="summing above 0"):
        gaussian_width(np.zeros((5, 5), np.float32))


def test_a_gaussian_blur_is_divided_out_by_the_narrower_reading(sharp: np.ndarray) -> None:
    """Read right, the Gaussian's inverse beats the free-form estimate's (the point of
    reading it); read far too wide, the estimate's fitted width is taken instead, and its
    inverse still does. Stated, the width is used as it is."""
    from vlir.pipeline import Deconvolution

    op = get_op("blur")
    blurred = op.apply(sharp, op.params_type(sigma=2.0))
    balance = WIENER_BALANCE_BY_BLUR["blur"]
    estimate = estimate_blur_kernel(blurred)
    free_form = inner_psnr(np.clip(wiener_deconvolve(blurred, estimate, balance), 0, 1), sharp)

    def restored(plan: Deconvolution) -> tuple[float, float | None]:
        found = plan.kernel(blurred)
        assert found is not None
        kernel, sigma = found
        image = np.clip(wiener_deconvolve(blurred, kernel, balance), 0, 1)
        return inner_psnr(image, sharp), sigma

    right, sigma = restored(Deconvolution(35, balance, read_sigma=2.0))
    assert sigma is not None and 1.7 < sigma <= 2.0
    assert right > free_form + 0.5
    wide, sigma = restored(Deconvolution(35, balance, read_sigma=4.0))
    assert sigma is not None and 1.8 < sigma < 2.3  # the estimate's width, not the reading's
    assert wide > free_form  # measured: 28.27 free-form, 29.07 read right, 29.05 read 4.0
    stated = Deconvolution(35, balance, stated_sigma=1.0, read_sigma=2.0).kernel(blurred)
    assert stated is not None and stated[1] == 1.0
    assert np.array_equal(stated[0], gaussian_psf(1.0))


def test_an_estimate_far_wider_than_the_blurs_size_is_not_divided_out(sharp: np.ndarray) -> None:
    """A brick wall's stripes read as a long camera shake; the analyzer read defocus of
    radius 1.8. Divided out, that estimate wrecks the photo, so the restorer runs instead.
    A real disk of that radius is still deconvolved."""
    from skimage import data

    from vlir.pipeline import Deconvolution

    bricks = np.repeat(data.brick()[..., None], 3, axis=2).astype(np.float32) / 255.0
    sized = blur_spread("defocus", 1.8)
    plan = Deconvolution(35, WIENER_BALANCE_BY_BLUR["defocus"], sized=sized)
    estimate = estimate_blur_kernel(bricks, 35)
    assert kernel_spread(estimate) > IMPLAUSIBLE_SPREAD * sized
    assert plan.kernel(bricks) is None
    assert dataclasses.replace(plan, sized=None).kernel(bricks) is not None  # (no size: trusted)
    disk = get_op("defocus")
    blurred = disk.apply(sharp, disk.params_type(radius=1.8))
    kernel = plan.kernel(blurred)
    assert kernel is not None and kernel_spread(kernel[0]) <= IMPLAUSIBLE_SPREAD * sized


def test_blur_spread_is_the_engines_kernels_spread() -> None:
    for name, strength in (("blur", 1.5), ("defocus", 4.0)):
        op = get_op(name)
        kernel = op.kernel(op.params_type(strength))
        assert abs(kernel_spread(kernel) - blur_spread(name, strength)) < 0.05 * strength
    shake = get_op("motion_blur")  # a curled path spreads less than a straight one
    for seed in range(5):
        path = shake.kernel(shake.params_type(length=21, angle=30, seed=seed))
        assert kernel_spread(path) <= blur_spread("motion_blur", 21) * 1.02
    with pytest.raises(ValueError):
        blur_spread("noise", 25)
