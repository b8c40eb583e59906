"""The controls beside every learning claim: chance, the text-only baseline (best fixed answer per template),
the no-video run, and intervals clustered by the real video."""

from __future__ import annotations

import numpy as np
import pytest

BACKGROUND = "What colour is the background of the video?"
COUNT = "How many different shapes appear in the video in total?"


def _mc(i: int, options: list[str], answer: str, prediction: str, video: str) -> dict:
    return {"sample_id": f"b/{i}", "problem": BACKGROUND, "problem_type": "multiple choice", "options": options,
            "answer": answer, "prediction": prediction, "video": video, "category": "general"}


def _samples() -> list[dict]:
    """Four background questions: "navy" is the answer three times at three letters, "A" is right twice."""
    return [
        _mc(0, ["A. navy", "B. black", "C. olive", "D. maroon"], "A", "A", "v0"),
        _mc(1, ["A. black", "B. navy", "C. olive", "D. maroon"], "B", "B", "v1"),
        _mc(2, ["A. olive", "B. black", "C. navy", "D. maroon"], "C", "A", "v2"),
        _mc(3, ["A. black", "B. olive", "C. navy", "D. maroon"], "A", "A", "v3"),
        {"sample_id": "c/0", "problem": COUNT, "problem_type": "numerical", "options": [], "answer": "3",
         "prediction": "3", "video": "v0", "category": "mathematics"},
        {"sample_id": "c/1", "problem": COUNT, "problem_type": "numerical", "options": [], "answer": "3",
         "prediction": "2", "video": "v1", "category": "mathematics"},
        {"sample_id": "c/2", "problem": COUNT, "problem_type": "numerical", "options": [], "answer": "4",
         "prediction": "4", "video": "v2", "category": "mathematics"},
    ]


def _fit() -> list[dict]:
    """Questions no model is scored on: there the answer is "olive" (at B, C, A) or "maroon" (once, at D)."""
    return [_mc(10, ["A. navy", "B. olive", "C. black", "D. maroon"], "B", "", "f0"),
            _mc(11, ["A. black", "B. navy", "C. olive", "D. maroon"], "C", "", "f1"),
            _mc(12, ["A. olive", "B. black", "C. navy", "D. maroon"], "A", "", "f2"),
            _mc(13, ["A. olive", "B. black", "C. navy", "D. maroon"], "D", "", "f3")]


def test_the_text_only_baseline_is_the_best_fixed_answer_chosen_on_questions_no_model_is_scored_on():
    from evaluation.controls import text_only

    # chosen in-sample, "always navy" (3 of 4) wins; chosen on the fit questions, "always olive"
    assert [b["prediction"] for b in text_only(_samples())[:4]] == ["A", "B", "C", "C"]
    assert [b["prediction"] for b in text_only(_samples(), fit=_fit())[:4]] == ["C", "C", "A", "B"]
    assert [b["prediction"] for b in text_only(_samples())[4:]] == ["3", "3", "3"]  # the most frequent count
    # a group the fit questions lack falls back to in-sample
    assert [b["prediction"] for b in text_only(_samples(), fit=_fit())[4:]] == ["3", "3", "3"]


def test_a_scored_questions_own_answer_never_chooses_its_text_only_rule():
    from evaluation.controls import text_only

    changed = _samples()
    changed[0]["answer"] = "B"  # video 0's answer moves from navy to black
    # in-sample, the changed answer changes the rule it is scored by ("always black" now ties "always navy")
    assert text_only(changed)[0]["prediction"] == "B"
    assert text_only(_samples())[0]["prediction"] == "A"
    # chosen on other questions, it is answered by the same rule whatever its own answer
    assert text_only(changed, fit=_fit())[0]["prediction"] == text_only(_samples(), fit=_fit())[0]["prediction"]


def test_the_control_table_reports_chance_text_only_the_model_and_the_blank_run_per_template():
    from evaluation.controls import ALL_MC, control_table

    model = _samples()
    blank = [{**s, "prediction": "A" if s["problem_type"] == "multiple choice" else "3"} for s in model]
    table = control_table(model, blank, iterations=200, fit=_fit()).set_index("group")
    background = table.loc["background_colour"]
    assert background["questions"] == 4 and background["videos"] == 4
    assert background["chance"] == 25.0
    assert background["text_only"] == 0.0  # "always olive", chosen on the fit questions: never right here
    assert background["text_only_in_sample"] == 75.0  # always "navy"
    assert background["accuracy"] == 75.0  # right on 0, 1, 3
    assert background["minus_text_only"] == 75.0
    assert background["blank"] == 50.0  # always "A"
    assert background["blank_minus_text_only"] == 50.0
    count = table.loc["count_total"]
    assert count["text_only"] == pytest.approx(200 / 3, abs=0.01) and count["accuracy"] == pytest.approx(200 / 3,
                                                                                                       abs=0.01)
    assert np.isnan(count["chance"]) or count["chance"] is None
    assert table.loc[ALL_MC, "questions"] == 4


def test_the_blank_video_control_hands_the_model_grey_frames_of_the_same_shape(tmp_path):
    from evaluation.lm import BLANK_LEVEL, VideoLM

    frames = np.random.default_rng(0).integers(0, 255, (4, 28, 28, 3), dtype=np.uint8)
    plain = VideoLM(pretrained="tiny-random", frames=4, max_pixels=12544, cache_dir=str(tmp_path / "c"))
    blank = VideoLM(pretrained="tiny-random", frames=4, max_pixels=12544, cache_dir=str(tmp_path / "c"),
                    video_control="blank")
    for lm in (plain, blank):
        lm.frames.get = lambda uri, sha=None: frames  # type: ignore[method-assign]
    assert (plain._frames("v.mp4") == frames).all()
    grey = blank._frames("v.mp4")
    assert grey.shape == frames.shape and grey.dtype == frames.dtype and (grey == BLANK_LEVEL).all()
    assert plain.model_key != blank.model_key  # their cached generations never mix
    with pytest.raises(ValueError, match="video_control"):
        VideoLM(pretrained="tiny-random", video_control="black")
