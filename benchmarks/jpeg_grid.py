"""Cropped JPEGs: is the grid found, and what moving it to the corner is worth.

A JPEG's 8x8 grid starts at its file's corner; crop the decoded photo and it starts
elsewhere, where the restorer never saw one in training (``vlir.perception.jpeg_grid``).
Each photo is compressed (grey, as in the ``jpeg-y`` task, or in colour with ``--colour``),
decoded, and cropped by 1-7 rows and 1-7 columns drawn per photo (seed 0). The script
prints how often ``jpeg_grid_start`` finds the grid where the crop left it, how often it
finds one in the clean photo, and, with ``--restore``, PSNR (grey, or Y for colour) of
the input, of the pipeline restoring the crop as framed (``align_grid=False``) and of
the pipeline moving the grid to the corner first (the default); for clean photos where a
grid is read, how far (PSNR on Y) moving it takes their restoration from the framed one.
``CLEAR_STEP`` was set on BSD400 training photos; LIVE1 measures.

    python benchmarks/jpeg_grid.py --dataset BSD400 --stride 10        # detection only
    python benchmarks/jpeg_grid.py --dataset LIVE1 --limit 12 --restore
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vlir.degradations import imresize
from vlir.evaluation.metrics import psnr, rgb_to_y, to_255
from vlir.evaluation.tasks import dataset_images
from vlir.io import load_image
from vlir.perception.jpeg_grid import GRID, jpeg_grid_start
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ENLARGEMENTS = (2, 4)


def compressed(clean: np.ndarray, quality: int, colour: bool) -> tuple[np.ndarray, np.ndarray]:
    """(decoded JPEG, its ground truth), both [H, W, 3] in [0, 1]."""
    if colour:
        target = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)
    else:
        target = np.repeat(np.round(rgb_to_y(to_255(clean))).astype(np.uint8)[..., None], 3, 2)
    buffer = io.BytesIO()
    Image.fromarray(target if colour else target[..., 0]).save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)
    return decoded / 255.0, target.astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="LIVE1")
    parser.add_argument("--qualities", default="10,20,30,40,75,90")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--colour", action="store_true")
    parser.add_argument("--restore", action="store_true")
    args = parser.parse_args()
    split = "train" if args.dataset == "BSD400" else "eval"
    paths = dataset_images(DATA / split / args.dataset)[:: args.stride][: args.limit]
    qualities = [int(q) for q in args.qualities.split(",")]
    restorer = Restorer.from_pretrained() if args.restore else None
    torch.set_grad_enabled(False)
    channel = "y" if args.colour else "grey"
    found = {q: 0 for q in qualities}
    uncropped_moved = {q: 0 for q in qualities}
    enlarged_grids = {scale: 0 for scale in ENLARGEMENTS}
    scores: dict[int, list[tuple[float, float, float]]] = {q: [] for q in qualities}
    clean_grids, clean_moves = 0, []
    for index, path in enumerate(paths):
        clean = load_image(path).rgb
        if jpeg_grid_start(clean) != (0, 0):
            clean_grids += 1
            if restorer is not None:  # a grid read where there is none: what it changes
                framed = restorer(clean, align_grid=False).image
                clean_moves.append(psnr(restorer(clean).image, framed, channel="y"))
        for scale in ENLARGEMENTS:  # an enlargement's steps repeat every 2 or 4 pixels
            enlarged = np.clip(imresize(imresize(clean, 1 / scale), scale), 0, 1)
            enlarged_grids[scale] += jpeg_grid_start(enlarged) != (0, 0)
        rows, cols = np.random.default_rng([0, index]).integers(1, GRID, size=2)
        for quality in qualities:
            decoded, target = compressed(clean, quality, args.colour)
            uncropped_moved[quality] += jpeg_grid_start(decoded) != (0, 0)
            crop, truth = decoded[rows:, cols:], target[rows:, cols:]
            found[quality] += jpeg_grid_start(crop) == ((-rows) % GRID, (-cols) % GRID)
            if restorer is not None:
                framed = restorer(crop, align_grid=False).image
                moved = restorer(crop).image
                scores[quality].append(
                    tuple(psnr(x, truth, channel=channel) for x in (crop, framed, moved))
                )
    kind = "colour (PSNR on Y)" if args.colour else "grey"
    print(f"{args.dataset}, {len(paths)} photos, {kind} JPEGs cropped by 1-7 rows and columns")
    print(f"clean photos with a grid read: {clean_grids} of {len(paths)}", end="")
    if clean_moves:
        print(f" (restored, {np.mean(clean_moves):.1f} dB from restoring them as framed)", end="")
    print()
    for scale, count in enlarged_grids.items():
        print(f"enlarged x{scale} (bicubic down and up): a grid read in {count}")
    for quality in qualities:
        line = f"quality {quality}: grid found where it is on {found[quality]} of {len(paths)}"
        line += f" (uncropped: read off the corner in {uncropped_moved[quality]})"
        if scores[quality]:
            means = np.mean(scores[quality], axis=0)
            line += " | input / as framed / grid moved: " + " / ".join(f"{m:.2f}" for m in means)
        print(line, flush=True)


if __name__ == "__main__":
    main()
