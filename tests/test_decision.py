"""``vlir.pipeline.decide``: what a call does, planned from a reading alone, no network."""

from __future__ import annotations

import pytest

from vlir.degradations import RestorationPrompt
from vlir.errors import VlirError
from vlir.perception import Analysis
from vlir.perception.analyze import Finding
from vlir.pipeline import Decision, decide


def reading(words: str, *findings: Finding) -> Analysis:
    """An analysis that found ``findings`` (present or not) and would say ``words``."""
    return Analysis(list(findings), RestorationPrompt.parse(words), perception=None)


def planned(analysis: Analysis, prompt: str | None = None, **options: object) -> Decision:
    settings = dict(restoring=True, always_blind=False, max_sigma=75.0, grey=False, refine=False)
    settings.update(options)
    return decide(analysis, prompt, deconvolve=True, **settings)


NOISE = Finding("noise", 0.99, 30.0, "sigma", True)
CAST = Finding("color_cast", 0.9, -0.5, "temperature", True)


def test_noise_found_alone_goes_to_the_expert_at_the_level_read_unless_it_may_not_run() -> None:
    decision = planned(reading("denoise with sigma 30", NOISE))
    assert decision.automatic and decision.prompt == "denoise with sigma 30"
    assert decision.noise.op == "noise" and decision.noise.level == 30.0
    assert decision.noise.source == "read"  # (no pixels to measure)
    assert decision.deconvolution is None and not decision.cast
    stated = planned(reading("denoise with sigma 30", NOISE), "denoise with sigma 12")
    assert not stated.automatic and stated.noise.level == 12.0 and stated.noise.source == "stated"
    assert planned(reading("denoise with sigma 30", NOISE), max_sigma=None).noise is None


def test_a_cast_found_with_the_noise_is_planned_for_the_expert_in_colour_only() -> None:
    words = "correct the color cast; denoise with sigma 30"
    decision = planned(reading(words, NOISE, CAST))
    assert decision.cast and decision.noise.level == 30.0
    assert planned(reading(words, NOISE, CAST), grey=True).noise is None  # (the restorer)
    # kept by the words: the expert denoises through it, nothing to correct
    kept = planned(reading(words, NOISE, CAST), "denoise")
    assert kept.noise is not None and not kept.cast


def test_nothing_found_is_dehazed_or_deblurred_and_a_diffusion_restorer_plans_nothing() -> None:
    faint = Finding("haze", 0.6, 0.4, "beta", False)
    hazy = planned(reading("", faint))
    assert hazy.hazy == pytest.approx(0.6) and hazy.prompt == "dehaze"
    grey = planned(reading("", faint), grey=True)  # (a grey photo reads hazier)
    assert grey.hazy is None and grey.unseen and grey.deconvolution is not None
    sampled = planned(reading("", faint), restoring=False)
    assert sampled.hazy is None and sampled.deconvolution is None and not sampled.unseen
    blind = planned(reading("denoise with sigma 30", NOISE), always_blind=True)
    assert blind.prompt == RestorationPrompt.blind_prompt().format()


def test_a_guess_is_refused_where_the_reading_says_it_is_not_worth_acting_on() -> None:
    analysis = reading("denoise with sigma 30", NOISE)
    analysis.note = "too small to read"
    with pytest.raises(VlirError, match="too small to read"):
        planned(analysis)
    assert planned(analysis, "denoise").noise is None  # (words: the restorer, no guesses)
