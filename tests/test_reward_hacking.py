"""The GRPO reward against completions a policy could learn to game, each a named case, and its properties
over generated completions (hypothesis). GRPO optimises whatever the reward pays for: a hole here is a
behaviour the policy learns."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.rewards import accuracy_reward, format_reward
from videorft.answers import FORMAT_RE

OPTIONS = ["A. red", "B. blue", "C. green", "D. yellow"]


def _acc(answer_block: str, truth: str = "A", problem_type: str = "multiple choice",
         options: list[str] | None = None) -> float:
    completion = f"<think>I looked at the video.</think>{answer_block}"
    return accuracy_reward([completion], solution=[f"<answer>{truth}</answer>"], problem_type=[problem_type],
                           options=[OPTIONS if options is None and problem_type == "multiple choice" else options])[0]


# ---- named cases ------------------------------------------------------------------------------------------

HACKS = {
    # multiple choice: listing letters must not pay
    "comma_list": ("<answer>A, B</answer>", "A", "multiple choice"),
    "slash_list": ("<answer>A/B</answer>", "A", "multiple choice"),
    "or_hedge": ("<answer>A or B</answer>", "A", "multiple choice"),
    "every_letter": ("<answer>A B C D</answer>", "A", "multiple choice"),
    "lowercase_pair": ("<answer>a b</answer>", "A", "multiple choice"),
    "label_then_other_letter": ("<answer>A) or B</answer>", "A", "multiple choice"),
    "letter_with_wrong_text": ("<answer>A. blue</answer>", "A", "multiple choice"),
    "two_answer_blocks": ("<answer>B</answer><answer>A</answer>", "A", "multiple choice"),
    "two_answer_blocks_same": ("<answer>A</answer><answer>A</answer>", "A", "multiple choice"),
    # a missing or unclosed answer must not fall back to the whole completion
    "unclosed_answer_free_form": ("<answer>the red ball rolls to the left", "the red ball rolls to the left",
                                  "free-form"),
    "unclosed_answer_letter": ("<answer>A", "A", "multiple choice"),
    "no_answer_tag": ("the answer is A", "A", "multiple choice"),
    # numbers: prose and number words are not numbers
    "number_in_prose": ("<answer>about 3</answer>", "3", "numerical"),
    "number_word": ("<answer>three</answer>", "3", "numerical"),
    "regression_range": ("<answer>3-5</answer>", "4", "regression"),
    "empty_answer": ("<answer></answer>", "A", "multiple choice"),
    "whitespace_answer": ("<answer>   </answer>", "hello", "OCR"),
}


@pytest.mark.parametrize("name", sorted(HACKS))
def test_a_gaming_completion_earns_no_accuracy(name):
    block, truth, problem_type = HACKS[name]
    assert _acc(block, truth, problem_type) == 0.0, name


HONEST = {
    "letter": ("<answer>A</answer>", "A", "multiple choice", 1.0),
    "letter_with_its_text": ("<answer>A. red</answer>", "A", "multiple choice", 1.0),
    "parenthesised_lowercase": ("<answer>(a)</answer>", "A", "multiple choice", 1.0),
    "option_text": ("<answer>red</answer>", "A", "multiple choice", 1.0),
    "ocr_over_lines": ("<answer>Exit\n12\nNorth</answer>", "Exit 12 North", "OCR", 1.0),
    "ocr_tab_and_double_space": ("<answer>Exit\t12  North</answer>", "Exit 12 North", "OCR", 1.0),
    "numerical_trailing_zero": ("<answer>3.0</answer>", "3", "numerical", 1.0),
    "numerical_thousands_separator": ("<answer>1,000</answer>", "1000", "numerical", 1.0),
    "regression_exact_zero": ("<answer>0</answer>", "0", "regression", 1.0),
}


@pytest.mark.parametrize("name", sorted(HONEST))
def test_an_honest_answer_keeps_its_credit(name):
    block, truth, problem_type, expected = HONEST[name]
    assert _acc(block, truth, problem_type) == pytest.approx(expected), name


# ---- properties over generated completions ----------------------------------------------------------------

TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
pieces = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "A", "B", " or ", ", ", "3", "3.0",
                          "\n", "  ", "Exit", "12", "-", "0", "."])
completion = st.lists(st.one_of(text, pieces), max_size=12).map("".join)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(completions=st.lists(completion, min_size=1, max_size=6), problem_type=st.sampled_from(TYPES),
       truth=st.sampled_from(["A", "3", "4.5", "Exit 12 North", "a red ball", "0"]))
def test_every_reward_stays_in_range_and_never_raises(completions, problem_type, truth):
    fmt = format_reward(completions)
    acc = accuracy_reward(completions, solution=[f"<answer>{truth}</answer>"] * len(completions),
                          problem_type=[problem_type] * len(completions), options=[OPTIONS] * len(completions))
    assert all(v in (0.0, 1.0) for v in fmt)
    assert all(0.0 <= v <= 1.0 for v in acc)


letters = st.sampled_from("ABCD")
separators = st.sampled_from([", ", "/", " or ", " ", " and ", ";", " | "])


@FAST
@given(picked=st.lists(letters, min_size=2, max_size=4, unique=True), sep=separators, lower=st.booleans())
def test_multiple_choice_pays_only_for_exactly_one_committed_letter(picked, sep, lower):
    answer = sep.join(x.lower() if lower else x for x in picked)
    assert _acc(f"<answer>{answer}</answer>", truth=picked[0]) == 0.0
    single = picked[0].lower() if lower else picked[0]
    assert _acc(f"<answer>{single}</answer>", truth=picked[0]) == 1.0


words = st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789", min_size=1, max_size=6),
                 min_size=1, max_size=6)
layouts = st.lists(st.sampled_from([" ", "  ", "\t", "\n", " \n "]), min_size=5, max_size=5)


@FAST
@given(truth_words=words, prediction_words=words, layout=layouts)
def test_ocr_credit_is_invariant_to_white_space_layout(truth_words, prediction_words, layout):
    truth = " ".join(truth_words)
    spaced = "".join(w + layout[i % len(layout)] for i, w in enumerate(prediction_words)).strip()
    assert _acc(f"<answer>{spaced}</answer>", truth, "OCR") == pytest.approx(
        _acc(f"<answer>{' '.join(prediction_words)}</answer>", truth, "OCR"))


@FAST
@given(c=completion)
def test_format_reward_is_one_exactly_when_the_format_regex_fully_matches(c):
    # the documented variant of the reference's re.fullmatch: white space around the whole is allowed
    assert format_reward([c]) == [1.0 if FORMAT_RE.fullmatch(c) else 0.0]
    assert format_reward([c]) == [1.0 if FORMAT_RE.fullmatch(c.strip()) else 0.0]


@FAST
@given(rows=st.lists(st.tuples(completion, st.sampled_from(TYPES), st.sampled_from(["A", "3", "Exit 12", "0"])),
                     min_size=1, max_size=8))
def test_rewards_on_a_mixed_batch_equal_the_rewards_row_by_row(rows):
    completions = [r[0] for r in rows]
    solutions = [f"<answer>{r[2]}</answer>" for r in rows]
    types = [r[1] for r in rows]
    options = [OPTIONS if t == "multiple choice" else None for t in types]
    batch = accuracy_reward(completions, solution=solutions, problem_type=types, options=options)
    single = [accuracy_reward([c], solution=[s], problem_type=[t], options=[o])[0]
              for c, s, t, o in zip(completions, solutions, types, options, strict=True)]
    assert batch == single
    assert format_reward(completions) == [format_reward([c])[0] for c in completions]
