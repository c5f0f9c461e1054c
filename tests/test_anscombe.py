"""Shot noise made white for the noise expert (vlir.restoration.anscombe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlir.degradations import get_op
from vlir.perception.noise_level import white_noise_sigma
from vlir.restoration.anscombe import (
    anscombe,
    inverse_anscombe,
    measured_peak,
    stabilised_sigma,
    transformed_range,
)


def shot(image: np.ndarray, peak: float, seed: int = 0) -> np.ndarray:
    op = get_op("shot_noise")
    return op.apply(image, op.params_type(peak=peak, seed=seed))


@pytest.mark.parametrize("brightness", [0.1, 0.4, 0.9])
def test_the_transform_gives_one_variance_at_every_brightness(brightness: float) -> None:
    peak = 100.0
    flat = np.full((200, 200, 3), brightness, np.float32)
    noisy = torch.from_numpy(shot(flat, peak))
    # the raw noise grows with brightness; transformed, it is one unit of the range
    spread = anscombe(noisy, peak).std().item() * transformed_range(peak)
    assert spread == pytest.approx(1.0, abs=0.04)
    assert noisy.std().item() == pytest.approx(np.sqrt(brightness / peak), rel=0.05)


def test_the_inverse_is_unbiased_where_the_algebraic_one_is_not() -> None:
    peak, brightness = 10.0, 0.3  # three photons on average: the root's bias is large
    flat = np.full((300, 300, 3), brightness, np.float32)
    mean_transform = anscombe(torch.from_numpy(shot(flat, peak)), peak).mean()
    assert inverse_anscombe(mean_transform, peak).item() == pytest.approx(brightness, rel=0.02)
    d = mean_transform.item() * transformed_range(peak) + 2 * np.sqrt(3 / 8)
    algebraic = ((d / 2) ** 2 - 3 / 8) / peak
    assert abs(algebraic - brightness) > 0.06 * brightness  # (8% low here)
    assert inverse_anscombe(torch.zeros(1), peak).item() == 0.0  # no photons: black


def test_one_measure_corrects_a_wrong_peak() -> None:
    from skimage import data

    clean = data.astronaut()[:256, 128:384].astype(np.float32) / 255.0
    noisy = torch.from_numpy(shot(clean, 40.0)).permute(2, 0, 1)
    for guess in (25.0, 40.0, 70.0):
        sigma = white_noise_sigma(anscombe(noisy, guess))
        assert measured_peak(guess, sigma) == pytest.approx(40.0, rel=0.06)
    assert stabilised_sigma(5.0) == pytest.approx(74.7, abs=0.1)  # the expert's limit, 75
