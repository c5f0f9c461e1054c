"""Where a JPEG's 8x8 block grid starts in a photo.

A JPEG codes 8x8 blocks from its file's top-left corner. The restorer learned JPEG on
crops compressed after cropping, so it has only seen grids that start at the corner,
and it depends on it. On the first 12 LIVE1 photos as grey JPEGs of quality 10 cropped
by 1-7 rows and columns, it took the input's 26.71 dB to 25.82 with the grid where the
crop left it, and to 27.28 with the grid moved back to the corner (31.31 / 30.07 /
31.80 at quality 40; ``benchmarks/jpeg_grid.py``). A cropped JPEG, or a screenshot or
re-save of one, has its grid elsewhere; where JPEG is removed, the pipeline mirrors rows
and columns onto the photo so the grid starts at the corner again (``vlir.pipeline``).

Blocks show as larger steps between neighbouring pixels across their boundaries than
inside them. Along each axis, the boundary phase (of 8) with the largest mean step is
where blocks end, if that step clearly exceeds the steps inside blocks, the step at the
corner's own boundary (an uncropped JPEG stays as it is: of 40 BSD400 photos at quality
10-90, none was moved) and the step half a block on (an enlarged photo's steps repeat every 2
or 4 pixels, a JPEG's every 8).
"""

from __future__ import annotations

import numpy as np

from vlir.io import luma

GRID = 8
"""A JPEG's block side in pixels (the luma's; 4:2:0 chroma blocks cover 16)."""
CLEAR_STEP = 1.1
"""How much larger than each of its rivals the largest mean step must be to count as a
grid. Set on 40 BSD400 training photos, grey JPEGs cropped by 1-7 rows and columns
(``benchmarks/jpeg_grid.py --dataset BSD400 --stride 10``): at 1.05 / 1.1 / 1.15 / 1.2
the grid is found on 40 / 40 / 40 / 40 of 40 at quality 10, 39 / 39 / 36 / 36 at 40,
30 / 20 / 9 / 5 at 75, and read in 13 / 5 / 2 / 0 of the clean photos. A grid read where
there is none costs a few mirrored rows and columns, restored and cut off again (the
clean LIVE1 photos where it is read restore to within 51 dB of as framed); one missed
costs most of the restorer's JPEG gain."""


def jpeg_grid_start(rgb: np.ndarray) -> tuple[int, int]:
    """The row and column (0-7) where the 8x8 blocks of ``rgb`` [H, W, 3] start; 0 along
    an axis with no clear grid, or too short to tell (under four blocks: the pipeline reads
    no photo under 32 pixels a side)."""
    grey = luma(np.asarray(rgb, np.float32))[..., 0].astype(np.float64)  # [H, W]
    starts = []
    for axis in (0, 1):
        steps = np.abs(np.diff(grey, axis=axis)).mean(axis=1 - axis)  # [L-1]: i|i+1
        usable = len(steps) // GRID * GRID
        if usable < 4 * GRID:
            starts.append(0)
            continue
        profile = steps[:usable].reshape(-1, GRID).mean(0)  # [8]: k|k+1, mod 8
        end = int(profile.argmax())
        rivals = (
            np.median(np.delete(profile, end)),  # the steps inside blocks
            profile[GRID - 1],  # the corner's boundary: a grid moves only if clearly elsewhere
            profile[(end + GRID // 2) % GRID],  # half a block on: an enlargement's period
        )
        clear = profile[end] > CLEAR_STEP * max(rivals)
        starts.append((end + 1) % GRID if clear else 0)
    return starts[0], starts[1]


QUANTISED_PEAK = 1.25
"""``quantisation_peak`` at or over this: the photo's blocks were quantised (a JPEG).
On 10 BSD400 training photos under white noise of sigma 2-50, then saved at quality
30-95 or not at all (in colour and grey): with the JPEG it read 1.36-25, without it
1.02-1.15 at sigma 5-50 (up to 1.87 at sigma 2, where a flat photo's own rounding lines
up on any offset)."""
QUANTISATION_SIDE = 512
"""``quantisation_peak`` reads the middle 512x512 of a larger photo (4096 blocks)."""
_HIGH_FREQUENCIES = np.add.outer(np.arange(GRID), np.arange(GRID)) >= 6


def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II, as JPEG codes a block's rows and columns."""
    k = np.arange(GRID)
    matrix = np.sqrt(2 / GRID) * np.cos((2 * k[None] + 1) * k[:, None] * np.pi / (2 * GRID))
    matrix[0] /= np.sqrt(2)
    return matrix


def quantisation_peak(rgb: np.ndarray) -> float:
    """How much more often the high-frequency DCT coefficients of the photo's 8x8 luma
    blocks are near zero (under 1 on the 0-255 scale) at the best of the 64 grid offsets
    than at the median one: about 1 where no JPEG quantised them, several times where one
    did, wherever its grid starts. A JPEG's steps between blocks drown under strong noise
    (``jpeg_grid_start`` finds no grid at sigma 50, even at quality 30), its quantised
    coefficients do not: the noise was there before the JPEG and was quantised with the
    rest. 1.0 for a photo under 16 pixels a side."""
    grey = luma(np.asarray(rgb, np.float32))[..., 0].astype(np.float64) * 255.0
    height, width = grey.shape
    top, left = max(0, (height - QUANTISATION_SIDE) // 2), max(0, (width - QUANTISATION_SIDE) // 2)
    grey = grey[top : top + QUANTISATION_SIDE, left : left + QUANTISATION_SIDE]
    if min(grey.shape) < 2 * GRID:
        return 1.0
    dct = _dct_matrix()
    shares = []
    for row in range(GRID):
        for column in range(GRID):
            part = grey[row:, column:]
            rows, columns = part.shape[0] // GRID, part.shape[1] // GRID
            blocks = part[: rows * GRID, : columns * GRID].reshape(rows, GRID, columns, GRID)
            coefficients = dct @ blocks.transpose(0, 2, 1, 3) @ dct.T  # [rows, columns, 8, 8]
            shares.append(float((np.abs(coefficients[..., _HIGH_FREQUENCIES]) < 1.0).mean()))
    median = float(np.median(shares))
    return max(shares) / median if median > 0 else (1.0 if max(shares) == 0 else np.inf)
