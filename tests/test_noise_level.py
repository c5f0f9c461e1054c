"""White-noise level by PCA of patches (vlir.perception.noise_level)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlir.perception import noise_level
from vlir.perception.noise_level import noise_eigenvalue, patch_covariance, white_noise_sigma


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    """scikit-image's astronaut, 256x256 of it, [3, H, W] in [0, 1]."""
    from skimage import data

    crop = data.astronaut()[:256, 128:384].astype(np.float32) / 255.0
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()


def noisy(image: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return image + torch.randn(image.shape, generator=generator) * sigma / 255


@pytest.mark.parametrize("sigma", [3.0, 15.0, 25.0, 50.0, 75.0])
def test_the_measure_finds_the_level_of_white_noise(clean: torch.Tensor, sigma: float) -> None:
    # the photo has grain of its own (about 1.6), and independent variances add
    own = white_noise_sigma(clean)
    expected = float(np.hypot(sigma, own))
    assert abs(white_noise_sigma(noisy(clean, sigma)) - expected) < 0.03 * expected


def test_a_clean_photo_measures_little_and_clipped_or_tiny_ones_none(
    clean: torch.Tensor,
) -> None:
    assert white_noise_sigma(clean) < 2.0  # the 8-bit photo's own quantisation and grain
    own = white_noise_sigma(clean)
    file = (noisy(clean, 15).clamp(0, 1) * 255).round() / 255  # clipped patches left out
    assert abs(white_noise_sigma(file) - np.hypot(15, own)) < 0.5
    clipped = noisy(clean, 50).clamp(0, 1)  # strong noise: most patches touch 0 or 1
    assert white_noise_sigma(clipped) is None
    assert white_noise_sigma(noisy(clean[:, :20, :20], 25)) is None
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        white_noise_sigma(clean[None])


@pytest.mark.parametrize("sigma", [3.0, 5.0, 15.0, 25.0, 50.0])
def test_a_grey_photo_is_measured_on_its_weakly_textured_patches(
    clean: torch.Tensor, sigma: float
) -> None:
    """One plane's patches of every texture read high where the noise is faint (the
    photo's texture fills their smallest directions); the weakly textured ones do not."""
    from vlir.perception.noise_level import GREY_PATCH, grey_noise_sigma

    plane = (clean * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(dim=0)
    expected = float(np.hypot(sigma, grey_noise_sigma(plane)))  # its own grain (1.3) too
    grey = noisy(plane[None], sigma).expand(3, -1, -1)  # one plane, its noise in all three
    measured = white_noise_sigma(grey)
    assert abs(measured - expected) < 0.02 * expected + 0.05
    every = patch_covariance(grey[:1], GREY_PATCH).covariance
    unselected = np.sqrt(noise_eigenvalue(torch.linalg.eigvalsh(every).numpy())) * 255
    if sigma <= 5:
        assert unselected > expected + 1.5  # (5.98 and 7.23 for 3.26 and 5.16)
    clipped = noisy(plane[None], 75).clamp(0, 1).expand(3, -1, -1)
    assert white_noise_sigma(clipped) is None


def test_bands_and_strides_cover_the_positions_a_whole_unfold_does(
    clean: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = noisy(clean[:, :61, :47], 10)
    monkeypatch.setattr(noise_level, "BAND_ROWS", 3)
    monkeypatch.setattr(noise_level, "MAX_PATCHES", 400)  # stride 3 on 57x43 positions
    patches = F.unfold(image.double()[None], 5, stride=3)[0]  # [75, positions]
    expected = torch.cov(patches, correction=0)
    covariance, count, sampled, brightness = patch_covariance(image)
    assert count == sampled == patches.shape[1] == 19 * 15
    assert torch.allclose(covariance, expected, atol=1e-12)
    assert brightness == pytest.approx(float(patches.mean()))
    means = patches.mean(dim=0)
    darker = patch_covariance(image, brightness=(0.0, float(means.median())))
    assert darker.count == int((means < means.median()).sum())
    assert darker.brightness == pytest.approx(float(patches[:, means < means.median()].mean()))


def test_the_noise_eigenvalues_are_the_tail_whose_mean_is_its_median() -> None:
    noise = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    assert noise_eigenvalue(np.concatenate([noise, [40.0, 9.0, 3.0]])) == pytest.approx(1.0)
    assert noise_eigenvalue(noise[::-1]) == pytest.approx(1.0)


def test_noise_kind_tells_shot_noise_by_its_growth_with_brightness(clean: torch.Tensor) -> None:
    """White noise's variance is the same in the darker and brighter halves of the
    patches; shot noise's grows in proportion to their brightness."""
    from vlir.degradations import parse_ops
    from vlir.perception.noise_level import noise_kind

    photo = clean.permute(1, 2, 0).numpy()

    def degraded(ops: str) -> torch.Tensor:
        out = parse_ops(ops, np.random.default_rng(0)).apply(photo)
        return torch.from_numpy(out).permute(2, 0, 1)

    assert noise_kind(degraded("noise sigma=20")) == "noise"
    assert noise_kind(degraded("shot_noise peak=100")) == "shot_noise"
    assert noise_kind(degraded("shot_noise peak=200")) == "shot_noise"
    # at peak 30 most dark patches hold a zero count: too few left to tell, never "white"
    assert noise_kind(degraded("shot_noise peak=30")) in ("shot_noise", None)
    flat = noisy(torch.full_like(clean, 0.5), 20)  # one brightness: the two are one noise
    assert noise_kind(flat) == "noise"
    assert noise_kind(noisy(clean[:1], 20).expand(3, -1, -1)) is None  # grey


def test_censored_sigma_reads_noise_clipped_at_0_and_1(clean: torch.Tensor) -> None:
    """Strong noise cut short by an 8-bit file: the PCA measure declines, the censored
    fit against the noise-free photo finds the sigma; unclipped, it finds it as well."""
    from vlir.perception.noise_level import censored_sigma, clipped_share

    file = (noisy(clean, 60).clamp(0, 1) * 255).round() / 255
    assert clipped_share(file) > clipped_share(clean) + 0.05  # (the suit is white as it is)
    assert white_noise_sigma(file) is None
    assert abs(censored_sigma(file, clean) - 60) < 2
    assert abs(censored_sigma(noisy(clean, 20), clean) - 20) < 1
