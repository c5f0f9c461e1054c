"""Seeded natural wordings of a restoration prompt, for training the text side.

Users do not type "denoise with sigma 25"; they type "get rid of the grain" or
"remove the rain but keep the blur". The text tower must map both to the same
request, so training pairs every canonical prompt with varied paraphrases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlir.degradations.prompt import PromptItem, RestorationPrompt
from vlir.degradations.registry import get_op

# op -> (nouns for "remove the ...", whole-request phrasings)
_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "noise": (
        ("noise", "grain", "graininess", "speckle noise", "sensor noise"),
        ("denoise it", "make it less noisy", "clean up the grain", "smooth out the noise"),
    ),
    "shot_noise": (
        ("shot noise", "photon noise", "grain", "low-light grain"),
        ("clean up the photon noise", "make it less grainy"),
    ),
    "blur": (
        ("blur", "softness", "blurriness"),
        ("sharpen it", "deblur it", "make it sharper", "bring back the detail"),
    ),
    "motion_blur": (
        ("motion blur", "camera shake", "shake blur", "motion smear"),
        ("undo the camera shake", "fix the motion blur", "stabilise the shaky shot"),
    ),
    "defocus": (
        ("defocus blur", "out-of-focus blur", "focus blur"),
        ("refocus it", "fix the focus", "make it look in focus"),
    ),
    "downsample": (
        ("low resolution", "pixelation", "upscaling blur"),
        ("upscale it", "increase the resolution", "super-resolve it", "add back the fine detail"),
    ),
    "jpeg": (
        ("jpeg artifacts", "compression artifacts", "blocking", "blocky artifacts"),
        ("fix the compression", "remove the blockiness", "undo the jpeg damage"),
    ),
    "rain": (
        ("rain", "rain streaks", "raindrops streaks"),
        ("derain it", "take the rain out", "make it look like it is not raining"),
    ),
    "haze": (
        ("haze", "fog", "mist", "smog"),
        ("dehaze it", "clear the fog", "make it less hazy", "cut through the haze"),
    ),
    "low_light": (
        ("darkness", "underexposure", "gloom"),
        ("make it less dark", "brighten it up", "fix the exposure", "lighten the photo"),
    ),
    "color_cast": (
        ("color cast", "colour cast", "tint", "wrong white balance"),
        ("fix the white balance", "correct the colours", "neutralise the colour cast"),
    ),
}
_REMOVE = (
    "remove the {}",
    "get rid of the {}",
    "take out the {}",
    "clean up the {}",
    "reduce the {}",
    "fix the {}",
)
_KEEP = (
    "but keep the {}",
    "but leave the {} alone",
    "without touching the {}",
    "and keep the {} as it is",
)
_BLIND = (
    "remove all degradation",
    "restore this photo",
    "fix everything that is wrong",
    "clean this picture up",
    "make it look clean and sharp",
    "undo all the damage",
    "restore the image to its best quality",
)
_JOIN = (" and ", ", ", "; ", ", then ", " and also ")


def _strength_word(item: PromptItem) -> str:
    """A rough adjective from the stated strength, so numbers survive as words."""
    stated = item.stated
    op = get_op(item.op)
    if op.strength not in stated:
        return ""
    spec = op.range_of(op.strength)
    position = (stated[op.strength] - spec.low) / (spec.high - spec.low)
    if item.op in ("shot_noise", "jpeg", "low_light"):
        position = 1.0 - position  # lower peak / quality / exposure is worse
    if position > 0.66:
        return "heavy "
    if position < 0.33:
        return "slight "
    return ""


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _phrase(item: PromptItem, rng: np.random.Generator) -> str:
    nouns, requests = _WORDS[item.op]
    roll = rng.random()
    if roll < 0.3:
        return _pick(rng, requests)
    if roll < 0.45 and len(item.values) == len(get_op(item.op).prompt_names):
        return item.format()  # sometimes the exact numbers, as a power user writes them
    return _pick(rng, _REMOVE).format(_strength_word(item) + _pick(rng, nouns))


def paraphrase(
    prompt: RestorationPrompt, rng: np.random.Generator, *, keep: Sequence[str] = ()
) -> str:
    """A natural wording of ``prompt``; ``keep`` names ops to mention as kept.

    The same generator state gives the same text, so datasets stay reproducible.
    """
    if prompt.blind:
        text = _pick(rng, _BLIND)
    else:
        items = list(prompt.items)
        if len(items) > 1 and rng.random() < 0.5:
            items = [items[i] for i in rng.permutation(len(items))]
        clauses = [_phrase(item, rng) for item in items]
        text = clauses[0] if clauses else "leave the image as it is"
        for clause in clauses[1:]:
            text += _pick(rng, _JOIN) + clause
        for name in keep:
            text += " " + _pick(rng, _KEEP).format(_pick(rng, _WORDS[name][0]))
    if prompt.text:
        text += ". " + prompt.text
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text
