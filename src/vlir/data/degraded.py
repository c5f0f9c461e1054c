"""Batches of on-the-fly degraded images with their exact records and captions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlir.data.clean import CleanImages
from vlir.degradations import DegradationPipeline, DegradationRecord


@dataclass
class DegradedBatch:
    degraded: torch.Tensor
    """[B, 3, H, W] float, unclipped where the op is (AWGN)."""
    clean: torch.Tensor
    """[B, 3, H, W] in [0, 1]."""
    records: list[DegradationRecord]
    captions: list[str]
    indices: list[int]


LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""ITU-R BT.601 weights: grey = R*0.299 + G*0.587 + B*0.114."""


class DegradedSampler:
    """Draws clean images (random flips) and degrades each with a fresh random record.

    ``p_clean`` of the samples stay clean, so models learn to say "nothing wrong".
    """

    def __init__(
        self,
        images: CleanImages,
        pipeline: DegradationPipeline,
        *,
        p_clean: float = 0.1,
        p_grey: float = 0.0,
        subset: Sequence[int] | None = None,
        crop: tuple[int, int] | None = None,
        crop_context: int = 0,
        p_8bit: float = 0.0,
    ) -> None:
        self.p_grey = p_grey
        """Share of photos turned grey before degrading: users bring black-and-white
        photos, and a model that never saw one reads their missing colour as haze. The
        engine degrades them as one plane (grey noise, a one-channel JPEG), as their files
        are; before 2026-12-04 their noise was drawn per channel, which no grey file has."""
        self.crop = crop
        """Random (H, W) crops of each image before degrading; None uses it whole."""
        self.crop_context = crop_context
        """Degrade a region up to this many pixels taller and wider than the crop and keep
        its top-left (H, W): photos are rarely a multiple of the down-sampling factor, so
        an upsampled photo's interpolation phase drifts slightly across it, which a crop
        of an exact multiple never shows. The JPEG grid still starts at the crop's corner."""
        self.p_8bit = p_8bit
        """Share of degraded images clipped to [0, 1] and rounded to 1/255, as a saved
        file holds them: AWGN is kept in float by the denoising protocol, but a user's
        noisy photo is clipped at black and white, where its noise then shrinks the way
        shot noise does."""
        self.images = images
        self.pipeline = pipeline
        self.p_clean = p_clean
        self.subset = list(subset) if subset is not None else list(range(len(images)))

    def sample(self, rng: np.random.Generator, batch: int) -> DegradedBatch:
        degraded, clean, records, captions, indices = [], [], [], [], []
        for _ in range(batch):
            index = self.subset[int(rng.integers(len(self.subset)))]
            image = self.images.image(index)
            keep = None
            if self.crop is not None:
                keep = self.crop
                extra = rng.integers(self.crop_context + 1, size=2) if self.crop_context else (0, 0)
                height = min(image.shape[0], keep[0] + int(extra[0]))
                width = min(image.shape[1], keep[1] + int(extra[1]))
                y = int(rng.integers(0, image.shape[0] - height + 1))
                x = int(rng.integers(0, image.shape[1] - width + 1))
                image = image[y : y + height, x : x + width]
            if rng.random() < 0.5:
                image = image[:, ::-1]
            if rng.random() < 0.2:
                image = image[::-1]
            if self.p_grey > 0 and rng.random() < self.p_grey:
                image = image @ LUMA[:, None] * np.ones(3, np.float32)  # [H, W, 3], R = G = B
            image = np.ascontiguousarray(image)
            record = (
                DegradationRecord() if rng.random() < self.p_clean else self.pipeline.sample(rng)
            )
            degraded_image = record.apply(image)
            if keep is not None:
                image, degraded_image = (a[: keep[0], : keep[1]] for a in (image, degraded_image))
            if self.p_8bit > 0 and rng.random() < self.p_8bit:
                degraded_image = np.round(np.clip(degraded_image, 0.0, 1.0) * 255) / 255
            degraded.append(np.ascontiguousarray(degraded_image))
            clean.append(np.ascontiguousarray(image))
            records.append(record)
            captions.append(self.images.captions[index])
            indices.append(index)
        return DegradedBatch(
            degraded=torch.from_numpy(np.stack(degraded)).permute(0, 3, 1, 2).contiguous(),
            clean=torch.from_numpy(np.stack(clean)).permute(0, 3, 1, 2).contiguous(),
            records=records,
            captions=captions,
            indices=indices,
        )
