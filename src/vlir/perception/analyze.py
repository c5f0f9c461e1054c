"""``analyze``: what is wrong with a photo, how strongly, and the prompt to fix it.

Degradation evidence is read at the image's own resolution (tiles of the
training size), because resizing would wash out noise and JPEG blocks; the
tiles' probabilities are averaged, or a model with an image head
(``vlir.perception.image_head``) decides from them and the whole photo's
statistics. Content is read from the whole image resized to the training view.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from vlir.degradations import RestorationPrompt, get_op
from vlir.perception.image_head import image_evidence
from vlir.perception.labels import grey_reading, prompt_from_prediction, strength_value
from vlir.perception.model import Perception, PerceptionModel

JPEG_GRID = 16
MIN_SIDE = 32
"""The tower halves a map four times and takes its spread: 32 pixels leave it 2x2."""


@dataclass
class Finding:
    op: str
    probability: float
    strength: float
    """On the op's own scale (noise sigma, JPEG quality, ...)."""
    parameter: str
    present: bool
    """Probability at or above the op's calibrated threshold."""


SHOWN_PROBABILITY = 0.2
"""Ops read below this and not found are left out of reports (``Analysis.shown``)."""


@dataclass
class Analysis:
    findings: list[Finding]
    prompt: RestorationPrompt
    perception: Perception = field(repr=False)
    """Embeddings and tokens (batch of one) for conditioning the restorer."""
    note: str = ""
    """Why the findings may not be worth acting on (a photo too small to read), or ""."""

    @property
    def found(self) -> list[Finding]:
        return [f for f in self.findings if f.present]

    @property
    def shown(self) -> list[Finding]:
        """What a report lists: the found ops and any read at ``SHOWN_PROBABILITY`` or
        more (a list of every op at 0.01 hides the two that matter)."""
        return [f for f in self.findings if f.present or f.probability >= SHOWN_PROBABILITY]

    def without(self, op: str) -> Analysis:
        """This analysis with ``op`` not found and out of the prompt: a finding the photo
        itself disproves (its probability stays, for the report)."""
        findings = [replace(f, present=False) if f.op == op else f for f in self.findings]
        prompt = RestorationPrompt(tuple(item for item in self.prompt.items if item.op != op))
        return replace(self, findings=findings, prompt=prompt)

    def to_dict(self) -> dict:
        return {
            "degradations": [
                {"op": f.op, "probability": round(f.probability, 4), f.parameter: f.strength}
                for f in self.found
            ],
            "all": {f.op: round(f.probability, 4) for f in self.findings},
            "prompt": self.prompt.format(),
            **({"note": self.note} if self.note else {}),
        }


def _mirror_to(image: torch.Tensor, side: int) -> torch.Tensor:
    """A smaller image mirrored onto itself until each side is at least ``side``: a
    thumbnail or icon still gets read, with no seam the tower could take for an edge."""
    while image.shape[-2] < side:
        image = torch.cat([image, image.flip(-2)], dim=-2)
    while image.shape[-1] < side:
        image = torch.cat([image, image.flip(-1)], dim=-1)
    return image


def _tiles(image: torch.Tensor, size: tuple[int, int], limit: int) -> torch.Tensor:
    """Up to ``limit`` non-overlapping tiles [N, 3, h, w] spread over the image."""
    _, _, height, width = image.shape
    th, tw = min(size[0], height), min(size[1], width)
    if height < th * 1.5 and width < tw * 1.5:
        return image
    # Tiles start on the 16-pixel JPEG grid (its 8x8 blocks, 16x16 with chroma halved)
    # counted from the photo's corner, where a compressed photo's grid lies: training
    # crops are compressed after cropping, so their grid starts at their own corner.
    ys = np.linspace(0, height - th, max(1, height // th)).astype(int) // JPEG_GRID * JPEG_GRID
    xs = np.linspace(0, width - tw, max(1, width // tw)).astype(int) // JPEG_GRID * JPEG_GRID
    boxes = [(y, x) for y in ys for x in xs]
    if len(boxes) > limit:
        boxes = [boxes[i] for i in np.linspace(0, len(boxes) - 1, limit).round().astype(int)]
    return torch.cat([image[..., y : y + th, x : x + tw] for y, x in boxes], dim=0)


def read_tiles(
    model: PerceptionModel, image: torch.Tensor, max_tiles: int = 12
) -> tuple[Perception, torch.Tensor]:
    """What the model says on each tile of ``image`` [1, 3, H, W] (a batch of tiles), and
    the view they were cut from (a small image mirrored up to ``MIN_SIDE``)."""
    view = _mirror_to(image, MIN_SIDE)
    return model(_tiles(view, model.config.train_size, max_tiles)), view


@torch.no_grad()
def analyze(
    model: PerceptionModel, image: torch.Tensor, *, max_tiles: int = 12, calibrated: bool = True
) -> Analysis:
    """``image`` [1, 3, H, W] in [0, 1] -> findings, prompt and conditioning tensors.

    ``calibrated``: decide with the model's per-op thresholds (a grey photo with its own,
    where the model has them; else 0.5 for all, as the calibration itself needs)."""
    config = model.config
    local, view = read_tiles(model, image, max_tiles)
    grey = one_plane(image)
    probability = torch.sigmoid(local.presence_logits).mean(0).cpu().numpy()
    head = model.image_head
    if grey and model.grey_image_head is not None:
        head = model.grey_image_head
    if head is not None:
        evidence = image_evidence(local.presence_logits, view, config.signal_features)
        probability = torch.sigmoid(head(evidence))[0].cpu().numpy()
    strength = local.strength.mean(0).cpu().numpy()  # [N] the tower's reading, normalised
    stated = strength
    if config.grey_strength and grey:
        stated = grey_reading(config.grey_strength, config.ops, strength)
    whole = F.interpolate(image, size=config.train_size, mode="area")
    overall = model(whole)
    presence = torch.from_numpy(probability).clamp(1e-6, 1 - 1e-6)
    perception = Perception(
        deg_embedding=F.normalize(local.deg_embedding.mean(0, keepdim=True), dim=-1),
        content_embedding=overall.content_embedding,
        deg_tokens=local.deg_tokens.mean(0, keepdim=True),
        content_tokens=overall.content_tokens,
        presence_logits=torch.logit(presence)[None].to(image.device),
        strength=torch.from_numpy(strength)[None].to(image.device),
    )
    thresholds = model.decision_thresholds(grey) if calibrated else np.full(len(config.ops), 0.5)
    findings = [
        Finding(
            name,
            float(probability[i]),
            strength_value(name, stated[i]),
            get_op(name).strength,
            bool(probability[i] >= thresholds[i]),
        )
        for i, name in enumerate(config.ops)
    ]
    findings.sort(key=lambda f: -f.probability)
    prompt = prompt_from_prediction(config.ops, probability, stated, thresholds)
    return Analysis(findings, prompt, perception, too_small(image))


def one_plane(image: torch.Tensor) -> bool:
    """Whether ``image`` [1, 3, H, W] holds one plane three times (a grey file as read)."""
    return bool(torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2]))


def too_small(image: torch.Tensor) -> str:
    """Why an image [..., H, W] is too small to be read, or "". Under ``MIN_SIDE`` the tower
    reads mirrored copies of it, not a photo: on 8-32 px crops of clean held-out photos
    27-52% of readings found something (17% at 96 px)."""
    height, width = image.shape[-2:]
    if min(height, width) >= MIN_SIDE:
        return ""
    return f"{width}x{height} is under {MIN_SIDE} px a side, too small to tell what is wrong"
