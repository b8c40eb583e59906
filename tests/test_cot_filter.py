"""The CoT filter's room for RL: templates kept out of the CoT sets (curation.filter.rl_only_templates)."""

from __future__ import annotations

import pandas as pd
import pytest

from curation.cot import check_rl_only_templates, held_for_rl


def test_questions_of_a_template_held_for_rl_are_marked_and_others_are_not():
    problems = pd.Series(["What colour is the background of the video?",
                          "How many different shapes appear in the video in total?",
                          "A question from outside the synthetic world?"])
    assert held_for_rl(problems, ["background_colour"]).tolist() == ["background_colour", "", ""]
    assert held_for_rl(problems, []).tolist() == ["", "", ""]


def test_an_unknown_template_held_for_rl_is_an_error_naming_the_key():
    check_rl_only_templates(["background_colour", "count_total"])
    with pytest.raises(ValueError, match=r"curation\.filter\.rl_only_templates: unknown templates \['backgrund'\]"):
        check_rl_only_templates(["backgrund"])
