"""Restoration prompts round-trip exactly; paraphrases are seeded and varied."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vlir.degradations import (
    BLIND,
    OPS,
    DegradationPipeline,
    PromptItem,
    RestorationPrompt,
    get_op,
    paraphrase,
    parse_ops,
)


@st.composite
def prompt_items(draw: st.DrawFn) -> tuple[PromptItem, ...]:
    names = draw(st.lists(st.sampled_from(list(OPS)), unique=True, max_size=4))
    items = []
    for name in names:
        op = get_op(name)
        if draw(st.booleans()):
            values = {
                param: draw(st.floats(op.range_of(param).low, op.range_of(param).high))
                for param in op.prompt_names
            }
            items.append(PromptItem.of(name, values))
        else:
            items.append(PromptItem(name))
    return tuple(items)


free_text = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" ,'"),
    max_size=40,
).map(lambda text: " ".join(text.split()))


@settings(max_examples=300, deadline=None)
@given(items=prompt_items(), blind=st.booleans(), text=free_text)
def test_format_parse_round_trip_is_exact(
    items: tuple[PromptItem, ...], blind: bool, text: str
) -> None:
    prompt = RestorationPrompt(() if blind else items, blind=blind, text=text)
    parsed = RestorationPrompt.parse(prompt.format())
    if text and RestorationPrompt.parse(text).text != text:
        return  # the random text happened to be a canonical clause itself
    assert parsed == prompt
    assert parsed.format() == prompt.format()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_sampled_record_prompt_round_trips(seed: int) -> None:
    record = DegradationPipeline(max_ops=4).sample(np.random.default_rng(seed))
    prompt = record.prompt()
    assert RestorationPrompt.parse(prompt.format()) == prompt


def test_canonical_examples() -> None:
    record = parse_ops("blur sigma=1.5, noise sigma=25", np.random.default_rng(0))
    assert record.prompt().format() == "deblur with sigma 1.5; denoise with sigma 25"
    assert RestorationPrompt.blind_prompt().format() == BLIND == "remove all degradation"
    parsed = RestorationPrompt.parse("Remove all degradation")
    assert parsed.blind and not parsed.items


def test_free_text_is_kept_verbatim() -> None:
    prompt = RestorationPrompt.parse("denoise with sigma 25; it is a portrait of a cat")
    assert prompt.item_for("noise") == PromptItem.of("noise", {"sigma": 25})
    assert prompt.text == "it is a portrait of a cat"
    natural = RestorationPrompt.parse("remove the rain but keep the motion blur")
    assert natural.items == () and natural.text == "remove the rain but keep the motion blur"


def test_numberless_clauses_remove_wholly() -> None:
    prompt = RestorationPrompt.parse("dehaze; remove motion blur")
    assert prompt.removes("haze") and prompt.removes("motion_blur")
    assert not prompt.removes("noise")
    assert prompt.format() == "dehaze; remove motion blur"


def test_negative_numbers_round_trip() -> None:
    item = PromptItem.of("color_cast", {"temperature": -0.4, "tint": 0.1})
    text = RestorationPrompt((item,)).format()
    assert text == "correct the color cast with temperature -0.40 and tint 0.10"
    assert RestorationPrompt.parse(text).items == (item,)


def test_paraphrases_are_seeded_and_varied() -> None:
    record = parse_ops("rain, motion_blur", np.random.default_rng(0))
    prompt = RestorationPrompt.removing(["rain"])
    first = [paraphrase(prompt, np.random.default_rng(s), keep=["motion_blur"]) for s in range(30)]
    again = [paraphrase(prompt, np.random.default_rng(s), keep=["motion_blur"]) for s in range(30)]
    assert first == again
    assert len(set(first)) >= 15
    assert record.names == ("rain", "motion_blur")
    keep_words = ("keep", "leave", "without touching")
    assert all(any(word in text.lower() for word in keep_words) for text in first)


def test_paraphrase_covers_every_op_and_blind() -> None:
    generator = np.random.default_rng(0)
    for name in OPS:
        text = paraphrase(RestorationPrompt.removing([name]), generator)
        assert text and text.strip() == text
    blind = {paraphrase(RestorationPrompt.blind_prompt(), generator) for _ in range(40)}
    assert len(blind) >= 5
