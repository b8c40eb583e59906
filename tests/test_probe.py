"""The GRPO probe (training.probe): scoring of greedy answers on a fixed held-out set, its curve and the paired
change that the rl_checkpoint check judges."""

from __future__ import annotations

import json

from training.probe import PROBE_FILE, Probe, paired_change, probe_checks, score_rows, step_means

ROWS = [{"sample_id": "q1", "path": "v1.mp4", "template": "background_colour", "problem_type": "multiple choice",
         "options": ["A. red", "B. blue"], "solution": "<answer>A</answer>"},
        {"sample_id": "q2", "path": "v1.mp4", "template": "count_total", "problem_type": "numerical",
         "options": [], "solution": "<answer>3</answer>"},
        {"sample_id": "q3", "path": "v2.mp4", "template": "background_colour", "problem_type": "multiple choice",
         "options": ["A. red", "B. blue"], "solution": "<answer>B</answer>"}]


def _records(step: int, right: list[float]) -> list[dict]:
    return [{"step": step, "sample_id": r["sample_id"], "path": r["path"], "accuracy_reward": a,
             "format_reward": 1.0} for r, a in zip(ROWS, right, strict=True)]


def test_probe_answers_are_scored_with_the_runs_own_format_and_accuracy_rewards():
    completions = ["<think>It is red.</think><answer>A</answer>", "<answer>3</answer>", "B"]
    records = score_rows(ROWS, completions, step=10)
    assert [r["accuracy_reward"] for r in records] == [1.0, 1.0, 0.0]  # no answer block: 0
    assert [r["format_reward"] for r in records] == [1.0, 0.0, 0.0]
    means = step_means(records)[10]
    assert means["probe/accuracy_reward"] == 2 / 3 and means["probe/format_reward"] == 1 / 3


def test_the_paired_change_is_last_minus_first_on_the_same_questions_resampled_by_video():
    change = paired_change([*_records(0, [0, 0, 0]), *_records(5, [1, 0, 0]), *_records(10, [1, 1, 0])])
    # last minus first per question: +1, +1 (both on v1), 0 (v2); a resample draws v1 (2 questions, +2) or v2
    # (1 question, 0): both v1: +1, both v2: 0, one each: 2/3
    assert change["change"] == 2 / 3 and (change["first_step"], change["last_step"]) == (0, 10)
    assert change["ci95_low"] == 0.0 and change["ci95_high"] == 1.0
    assert change["questions"] == 3


def test_the_probe_check_passes_only_when_the_paired_interval_is_above_zero(tmp_path):
    (tmp_path / PROBE_FILE).write_text("".join(json.dumps(r) + "\n" for r in [*_records(0, [0, 0, 0]),
                                                                             *_records(10, [1, 1, 1])]))
    assert probe_checks(tmp_path, "grpo")["probe_accuracy_rose"]["passed"]
    (tmp_path / PROBE_FILE).write_text("".join(json.dumps(r) + "\n" for r in [*_records(0, [0, 0, 0]),
                                                                             *_records(10, [1, 1, 0])]))
    assert not probe_checks(tmp_path, "grpo")["probe_accuracy_rose"]["passed"]  # v2 alone: a change of 0
    assert probe_checks(tmp_path / "none", "grpo")["probe_accuracy_rose"]["passed"]  # no probe: not applicable
    assert probe_checks(tmp_path, "sft") == {}


def test_a_resumed_probe_forgets_the_steps_after_its_checkpoint_and_asks_each_step_once(tmp_path):
    asked: list[int] = []

    def answer(model: object, rows: list[dict]) -> list[str]:
        asked.append(len(rows))
        return ["<answer>A</answer>"] * len(rows)

    probe = Probe(ROWS, tmp_path, every=5, answer=answer, log=lambda m: None)
    for step in range(0, 13):
        if probe.due(step, last_step=12):
            probe.run(None, step)
    assert sorted(probe.done) == [0, 5, 10, 12]
    again = Probe(ROWS, tmp_path, every=5, answer=answer, log=lambda m: None)
    again.forget_after(10)  # resumed from checkpoint-10: step 12 is trained again
    assert not again.due(10, 12) and again.due(12, 12)
    assert {json.loads(line)["step"] for line in (tmp_path / PROBE_FILE).read_text().splitlines()} == {0, 5, 10}
