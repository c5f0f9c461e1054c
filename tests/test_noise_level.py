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


def test_a_clean_photo_measures_little_and_grey_clipped_or_tiny_ones_none(
    clean: torch.Tensor,
) -> None:
    assert white_noise_sigma(clean) < 2.0  # the 8-bit photo's own quantisation and grain
    grey = noisy(clean[:1], 25).expand(3, -1, -1)  # one plane, its noise in all three
    assert white_noise_sigma(grey) is None
    own = white_noise_sigma(clean)
    file = (noisy(clean, 15).clamp(0, 1) * 255).round() / 255  # clipped patches left out
    assert abs(white_noise_sigma(file) - np.hypot(15, own)) < 0.5
    clipped = noisy(clean, 50).clamp(0, 1)  # strong noise: most patches touch 0 or 1
    assert white_noise_sigma(clipped) is None
    assert white_noise_sigma(noisy(clean[:, :20, :20], 25)) is None
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        white_noise_sigma(clean[None])


def test_bands_and_strides_cover_the_positions_a_whole_unfold_does(
    clean: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = noisy(clean[:, :61, :47], 10)
    monkeypatch.setattr(noise_level, "BAND_ROWS", 3)
    monkeypatch.setattr(noise_level, "MAX_PATCHES", 400)  # stride 3 on 57x43 positions
    patches = F.unfold(image.double()[None], 5, stride=3)[0]  # [75, positions]
    expected = torch.cov(patches, correction=0)
    covariance, count, sampled = patch_covariance(image)
    assert count == sampled == patches.shape[1] == 19 * 15
    assert torch.allclose(covariance, expected, atol=1e-12)


def test_the_noise_eigenvalues_are_the_tail_whose_mean_is_its_median() -> None:
    noise = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    assert noise_eigenvalue(np.concatenate([noise, [40.0, 9.0, 3.0]])) == pytest.approx(1.0)
    assert noise_eigenvalue(noise[::-1]) == pytest.approx(1.0)
