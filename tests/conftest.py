"""Shared fixtures: small natural images made here, and the optional shared data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or a clean skip when this checkout has none."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared benchmark data)")
    return path


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x128 crop of scikit-image's bundled astronaut, float32 [H, W, 3] in [0, 1]."""
    from skimage import data

    return (data.astronaut()[100:196, 150:278].astype(np.float32) / 255.0).copy()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tiny_training_data(tmp_path: Path) -> tuple[Path, Path]:
    """Three small captioned photos laid out like BSD400 + captions/train.tsv."""
    from skimage import data

    folder = tmp_path / "train"
    folder.mkdir()
    rows = []
    for index, image in enumerate((data.astronaut(), data.chelsea(), data.coffee())):
        PILImage.fromarray(image[:200, :300]).save(folder / f"im{index}.png")
        rows.append(f"train/im{index}.png\t{['an astronaut', 'a cat', 'a cup of coffee'][index]}")
    captions = tmp_path / "captions.tsv"
    captions.write_text("\n".join(rows) + "\n")
    return folder, captions
