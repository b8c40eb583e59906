"""The embedded miniature starts from a base that perceives (issue 29): the shipped ``tiny-pretrained`` on the
benchmarks' held-out fixtures at their natural template mix, with its video and on blank frames, against uniform
chance and the text-only baseline (the best fixed answer per template, chosen on another world's questions).
A broken vision path, a frame misaligned with its question or weights that do not load send it back to the
blank-frames score.

What holds is asserted: the issue's criterion (pooled over every multiple-choice template, the base beats the
text-only baseline) by the option it finds likeliest (answer mode "choice", what it perceives). By the reply it
generates the criterion does not hold yet: a strict expected failure with the measurement that says why, so it
turns red the day it holds and the mark must go."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _controls(tmp_path_factory: pytest.TempPathFactory, answer_mode: str) -> Any:
    from pretraining.measure import fixture_controls
    from videorft.profile import load_profile

    tmp = tmp_path_factory.mktemp(f"controls-{answer_mode}")
    profile = load_profile("tiny", env={"VIDEORFT_STORAGE_ROOT": str(tmp / "storage"),
                                         "VIDEORFT_MEDIA_CACHE": str(tmp / "media")})
    assert not profile.evaluation.fixtures.world.template_shares  # the natural mix
    return fixture_controls("tiny-pretrained", profile, tmp / "eval", iterations=1000,
                            answer_mode=answer_mode).set_index("group")


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _controls(tmp_path_factory, "generate")


@pytest.fixture(scope="module")
def choice(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _controls(tmp_path_factory, "choice")


def _shown(table: Any) -> str:
    return table[["questions", "chance", "text_only", "text_only_in_sample", "accuracy", "ci95_low",
                  "minus_text_only_ci95_low", "blank", "blank_minus_text_only_ci95_low"]].to_string()


def test_the_shipped_base_answers_from_its_video_and_falls_on_blank_frames(controls):
    from evaluation.controls import ALL_MC

    pooled, background = controls.loc[ALL_MC], controls.loc["background_colour"]
    assert pooled["questions"] >= 300, _shown(controls)
    assert pooled["blank"] < pooled["ci95_low"], _shown(controls)  # blank frames: below its interval with video
    assert pooled["blank_minus_text_only_ci95_low"] <= 0, _shown(controls)  # and no better than the baseline
    # the skill it learned from the video: far above the text-only baseline with it, back to it without
    assert background["minus_text_only_ci95_low"] > 0, _shown(controls)
    assert background["blank_minus_text_only_ci95_low"] <= 0, _shown(controls)


def test_by_the_option_it_finds_likeliest_the_base_still_needs_its_video(choice):
    from evaluation.controls import ALL_MC

    pooled, background = choice.loc[ALL_MC], choice.loc["background_colour"]
    assert pooled["questions"] >= 300, _shown(choice)
    assert pooled["blank"] < pooled["ci95_low"], _shown(choice)
    assert pooled["blank_minus_text_only_ci95_low"] <= 0, _shown(choice)
    assert background["minus_text_only_ci95_low"] > 0, _shown(choice)


def test_the_shipped_base_beats_the_text_only_baseline_pooled_by_the_option_it_finds_likeliest(choice):
    """Issue 29's criterion, by what the base perceives: measured +10.5 [4.9, 16.5] points over the text-only
    baseline pooled (48.3 vs 37.8), its colour-at-end +24.5 [11.4, 37.3]; on blank frames it falls back to the
    baseline (-3.4 [-9.1, 3.2])."""
    from evaluation.controls import ALL_MC

    assert choice.loc[ALL_MC]["minus_text_only_ci95_low"] > 0, _shown(choice)
    assert choice.loc["color_at_end"]["minus_text_only_ci95_low"] > 0, _shown(choice)  # it sees the final colour


@pytest.mark.xfail(strict=True, reason="issue 29, not met by the generated reply: pooled minus text-only is +4.0 "
                   "[-1.7, 10.3] (card, fixtures): colour-at-end 38.7 vs 30.2 written out, but appears-last 3.6 "
                   "(it names shapes that are not among the options)")
def test_the_shipped_base_beats_the_text_only_baseline_pooled_by_the_reply_it_generates(controls):
    from evaluation.controls import ALL_MC

    assert controls.loc[ALL_MC]["minus_text_only_ci95_low"] > 0, _shown(controls)
