"""The embedded miniature starts from a base that perceives (issue 29): the shipped ``tiny-pretrained`` on the
benchmarks' held-out fixtures at their natural template mix, with its video and on blank frames, against uniform
chance and the text-only baseline (the best fixed answer per template, chosen on another world's questions).
A broken vision path, a frame misaligned with its question or weights that do not load send it back to the
blank-frames score.

What holds is asserted; the issue's criterion that does not hold yet (pooled over every multiple-choice template,
the base beats the text-only baseline), in either answer mode (the reply it generates; the option it finds
likeliest), is a strict expected failure with the measurement that says why, so it turns red the day it holds
and the mark must go."""

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


@pytest.mark.xfail(strict=True, reason="issue 29, not met: by the likeliest option, pooled minus text-only is +1.4 "
                   "[-3.9, 7.0] (card, fixtures_choice): the background is perceived (100% vs 34%), colour-at-end, "
                   "appearance order and direction are at or below the generator's text priors (25 vs 30, 29 vs 50, "
                   "22 vs 34)")
def test_the_shipped_base_beats_the_text_only_baseline_pooled_by_the_option_it_finds_likeliest(choice):
    from evaluation.controls import ALL_MC

    assert choice.loc[ALL_MC]["minus_text_only_ci95_low"] > 0, _shown(choice)


@pytest.mark.xfail(strict=True, reason="issue 29, not met: by the generated reply, pooled minus text-only is -3.4 "
                   "[-8.5, 1.9] (card, fixtures). It names colours and shapes outside the options (color_at_end "
                   "answers in the options 60%, appears_last 21%)")
def test_the_shipped_base_beats_the_text_only_baseline_pooled_by_the_reply_it_generates(controls):
    from evaluation.controls import ALL_MC

    assert controls.loc[ALL_MC]["minus_text_only_ci95_low"] > 0, _shown(controls)
