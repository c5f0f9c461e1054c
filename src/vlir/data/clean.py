"""Clean training photos held in memory at the training view, with their captions."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from vlir.errors import VlirError
from vlir.io import READ_SUFFIXES, load_image


def load_captions(tsv: str | Path) -> dict[str, str]:
    """``folder/NAME<TAB>caption`` rows -> {NAME stem: caption}."""
    path = Path(tsv)
    if not path.exists():
        raise VlirError(f"{path}: no captions file")
    captions = {}
    with open(path, newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) >= 2:
                captions[Path(row[0]).stem] = row[1].strip()
    return captions


class CleanImages:
    """Every image of a folder in memory as uint8, with its caption.

    With ``size`` (H, W) each photo is resized to it, landscape (portraits are
    turned, so a batch has one shape; captions describe content, which turning
    does not change): perception's whole-image view. Without it photos keep their
    native pixels, for restorers that train on native-resolution crops.
    """

    def __init__(
        self,
        folder: str | Path,
        size: tuple[int, int] | None = None,
        captions: dict[str, str] | None = None,
    ) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise VlirError(f"{root}: no such image folder")
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in READ_SUFFIXES)
        if not paths:
            raise VlirError(f"{root}: no images")
        pixels = []
        for path in paths:
            rgb = load_image(path).rgb
            if size is not None:
                if rgb.shape[0] > rgb.shape[1]:
                    rgb = np.ascontiguousarray(np.rot90(rgb))
                rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            pixels.append(np.round(rgb * 255).astype(np.uint8))
        self.names = [p.stem for p in paths]
        self.pixels = pixels
        self.captions = [(captions or {}).get(name, "a photo") for name in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def image(self, index: int) -> np.ndarray:
        return self.pixels[index].astype(np.float32) / 255.0
