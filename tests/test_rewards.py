"""training.rewards against hand-computed cases (TRL reward-function signature)."""

from __future__ import annotations

import pytest

from training.rewards import accuracy_reward, accuracy_score, describing_span, format_reward


def test_format_reward_is_a_full_match_of_think_then_answer():
    completions = ["<think>look</think><answer>B</answer>", "<think>a\nb</think>\n<answer>3</answer>\n",
                   "Sure! <think>x</think><answer>B</answer>", "<answer>B</answer>",
                   "<think>x</think><answer>B</answer> trailing", [{"role": "assistant",
                                                                      "content": "<think>x</think><answer>C</answer>"}]]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(("kind", "prediction", "truth", "expected"), [
    ("multiple choice", "A.", "A", 1.0),
    ("multiple choice", "a", "A", 1.0),
    ("multiple choice", "(B)", "A", 0.0),
    ("numerical", "3.004", "3", 1.0),
    ("numerical", "3.01", "3", 0.0),
    ("OCR", "hello word", "hello world", 0.5),
    ("OCR", "a b c d e", "x", 0.0),  # WER 5 clipped to 0
    ("free-form", "the cat", "the cat sat", (0.8 + 2 / 3 + 0.8) / 3),
    ("free-form", "the cat sat", "the cat sat", 1.0),
    ("regression", "12", "10", 0.8),
    ("regression", "30", "10", 0.0),
    ("regression", "abc", "10", 0.0),
    ("numerical", "", "3", 0.0),
])
def test_accuracy_by_problem_type(kind, prediction, truth, expected):
    assert accuracy_score(kind, prediction, truth) == pytest.approx(expected, abs=1e-4)


def test_accuracy_reward_scores_a_batch_that_mixes_types_and_gives_zero_without_tags():
    completions = ["<think>t</think><answer>b.</answer>", "<think>t</think><answer>12</answer>",
                   "the answer is B", "<think>t</think><answer></answer>"]
    rewards = accuracy_reward(completions, solution=["<answer>B</answer>", "<answer>10</answer>",
                                                     "<answer>B</answer>", "<answer>B</answer>"],
                              problem_type=["multiple choice", "regression", "multiple choice", "multiple choice"],
                              options=[["A. red", "B. blue"], [], ["A. x", "B. y"], ["A. x", "B. y"]])
    assert rewards == pytest.approx([1.0, 0.8, 0.0, 0.0])


def test_the_describing_span_skips_the_first_sentence_and_a_decimal_point_does_not_end_it():
    text = "<think>The question asks how far it is. The table stands 3.5 m from the wall. So B.</think><answer>B"
    assert describing_span(text) == "The table stands 3.5 m from the wall. So B."
    assert describing_span("<think>It is 3.5 m away</think>") == ""
    assert describing_span("<think>First? Then the red ball rolls!</think>") == "Then the red ball rolls!"
