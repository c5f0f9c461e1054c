"""What a user might ask for a degraded sample, and the target that request implies.

A restorer is trained on (degraded image, request, target). Requests are drawn
from the kinds users make: blind ("remove all degradation"), exact SPIRE-style
prompts with numbers, natural paraphrases, *partial* requests whose target is
the partial target (remove the noise, keep the blur), *strength* requests (a
stated sigma below the true one leaves the rest), and, independently, a
semantic prompt (the clean image's caption).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vlir.data.degraded import DegradedBatch
from vlir.degradations import (
    DegradationRecord,
    PromptItem,
    RestorationPrompt,
    get_op,
    paraphrase,
)

_ADJECTIVES = {
    "noise": "noisy",
    "shot_noise": "grainy",
    "blur": "blurry",
    "motion_blur": "shaky",
    "defocus": "out-of-focus",
    "downsample": "low-resolution",
    "jpeg": "compressed",
    "rain": "rainy",
    "haze": "hazy",
    "low_light": "dark",
    "color_cast": "discoloured",
}
"""How a low-quality caption names each degradation."""

KINDS = ("blind", "exact", "paraphrase", "partial", "strength")
DEFAULT_MIX = (0.35, 0.25, 0.15, 0.15, 0.10)


@dataclass(frozen=True)
class Request:
    kind: str
    text: str
    """The restoration prompt as the text tower reads it."""
    target: RestorationPrompt
    """What the text means, for building the target from the record."""
    semantic: str | None = None


def low_quality_caption(caption: str, names: tuple[str, ...], rng: np.random.Generator) -> str:
    """What a captioner (or a user) says of the degraded photo: its flaws, then its content.
    VLMIR aligns these with the clean caption; semantic prompts are often written so."""
    if not names:
        return caption
    words = [_ADJECTIVES[name] for name in names]
    order = rng.permutation(len(words))
    flaws = ", ".join(words[i] for i in order)
    template = ("a {} photo of {}", "{} picture: {}", "a {} image showing {}")[int(rng.integers(3))]
    return template.format(flaws, caption)


def _exact_items(record: DegradationRecord, names: set[str]) -> tuple[PromptItem, ...]:
    full = record.prompt()
    return tuple(item for item in full.items if item.op in names)


def sample_request(
    record: DegradationRecord,
    caption: str,
    rng: np.random.Generator,
    *,
    mix: tuple[float, ...] = DEFAULT_MIX,
    p_semantic: float = 0.3,
    p_lq_caption: float = 0.0,
) -> Request:
    """``mix``: weights of ``KINDS``; ``p_lq_caption``: share of semantic prompts written
    as a low-quality caption ("a noisy, blurry photo of ...") instead of the clean one."""
    names = list(record.names)
    semantic = caption if rng.random() < p_semantic else None
    if semantic is not None and p_lq_caption > 0 and rng.random() < p_lq_caption:
        semantic = low_quality_caption(caption, record.names, rng)
    kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(mix) / np.sum(mix)))]
    if not names or kind == "blind":
        blind = RestorationPrompt.blind_prompt()
        text = blind.format() if rng.random() < 0.7 else paraphrase(blind, rng)
        return Request("blind", text, blind, semantic)
    if kind == "partial" and len(names) >= 2:
        count = int(rng.integers(1, len(names)))
        removed = set(rng.choice(names, count, replace=False).tolist())
        target = RestorationPrompt(_exact_items(record, removed))
        kept = [n for n in names if n not in removed]
        if rng.random() < 0.5:
            text = target.format()
        else:
            text = paraphrase(RestorationPrompt.removing(sorted(removed)), rng, keep=kept)
        return Request("partial", text, RestorationPrompt.removing(sorted(removed)), semantic)
    if kind == "strength":
        adjustable = [n for n in names if n in ("noise", "blur")]
        if adjustable:
            name = adjustable[int(rng.integers(len(adjustable)))]
            items = list(record.prompt().items)
            for index, item in enumerate(items):
                if item.op == name:
                    true_value = item.stated["sigma"]
                    stated = (
                        get_op(name).range_of("sigma").quantise(true_value * rng.uniform(0.3, 0.9))
                    )
                    items[index] = PromptItem.of(name, {"sigma": stated})
            prompt = RestorationPrompt(tuple(items))
            return Request("strength", prompt.format(), prompt, semantic)
    if kind == "paraphrase":
        target = RestorationPrompt.removing(names)
        return Request("paraphrase", paraphrase(target, rng), target, semantic)
    exact = record.prompt()
    return Request("exact", exact.format(), replace(exact, text=""), semantic)


def requests_for(
    batch: DegradedBatch,
    rng: np.random.Generator,
    *,
    p_semantic: float = 0.3,
    p_lq_caption: float = 0.0,
    mix: tuple[float, ...] = DEFAULT_MIX,
) -> tuple[list[Request], np.ndarray]:
    """A request per sample of ``batch`` and the targets they imply, [B, H, W, 3] float32
    (the partial target of each record: what remains when the request is carried out)."""
    requests = [
        sample_request(
            record, caption, rng, mix=mix, p_semantic=p_semantic, p_lq_caption=p_lq_caption
        )
        for record, caption in zip(batch.records, batch.captions, strict=True)
    ]
    clean = batch.clean.permute(0, 2, 3, 1).numpy()
    targets = np.stack(
        [
            record.partial_target(image, request.target)
            for record, image, request in zip(batch.records, clean, requests, strict=True)
        ]
    )
    return requests, targets
