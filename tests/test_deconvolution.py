"""Camera shake: the Wiener inverse, blind kernel estimation, and when the pipeline uses them."""

from __future__ import annotations

import numpy as np
import pytest

from vlir.deconvolution import estimate_motion_kernel, kernel_size_for, wiener_deconvolve
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
    estimate = estimate_motion_kernel(blurred)
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
        estimate_motion_kernel(blurred, 34)
    assert estimate_motion_kernel(blurred, 3).shape == (3, 3)  # one scale only


def test_a_large_photo_is_read_through_its_busiest_window(sharp: np.ndarray) -> None:
    """Only a 512-px window of a large photo enters the fit: the one with the most edges."""
    blurred, _ = shake(sharp, 9, 30)
    canvas = np.full((700, 760, 3), 0.5, np.float32)  # flat, apart from the photo
    canvas[480:672, 540:732] = blurred
    estimate = estimate_motion_kernel(canvas)  # a flat window would give a point
    restored = np.clip(wiener_deconvolve(blurred, estimate), 0, 1)
    # measured 24.8 -> 27.7 dB (30.7 read from the photo alone: the window is half flat)
    assert inner_psnr(restored, sharp) > inner_psnr(blurred, sharp) + 2
    flat = estimate_motion_kernel(np.full((64, 64, 3), 0.5, np.float32), 9)
    assert flat[4, 4] == 1.0 and flat.sum() == 1.0


def test_kernel_size_follows_the_stated_or_perceived_length() -> None:
    assert kernel_size_for(None) == 35 and kernel_size_for(5) == 35
    assert kernel_size_for(40) == 55 and kernel_size_for(41) % 2 == 1


def test_which_requests_deconvolve() -> None:
    """Where motion blur is all the request removes, or it is blind and the analyzer found
    only that; never in mixtures (the restorer does those) or where the words keep it."""
    from vlir.perception.analyze import Analysis, Finding
    from vlir.pipeline import motion_blur_request

    def analysis(*found: tuple[str, float]) -> Analysis:
        findings = [Finding(op, 0.9, strength, "length", True) for op, strength in found]
        return Analysis(findings, RestorationPrompt(), None)  # type: ignore[arg-type]

    def side(prompt: RestorationPrompt | str, *found: tuple[str, float]) -> int | None:
        request = RestorationPrompt.parse(prompt) if isinstance(prompt, str) else prompt
        return motion_blur_request(request, analysis(*found))

    assert side("remove motion blur with length 40 and angle 10") == kernel_size_for(40)
    assert side("remove motion blur") == 35
    assert side("remove motion blur", ("motion_blur", 44)) == kernel_size_for(44)
    assert side(RestorationPrompt.blind_prompt(), ("motion_blur", 30)) == kernel_size_for(30)
    assert side("remove motion blur; denoise") is None
    assert side(RestorationPrompt.blind_prompt(), ("motion_blur", 30), ("noise", 25)) is None
    assert side(RestorationPrompt.blind_prompt(), ("rain", 0.5)) is None
    assert side("remove the rain but keep the motion blur", ("motion_blur", 12)) is None
