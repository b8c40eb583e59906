"""The checks a finished training run reports (training.checks), on logged steps built by hand."""

from __future__ import annotations

import pytest

from training.checks import dead_rewards, kl_within, rose, run_checks


def _steps(n: int, reward: float = 1.0, slope: float = 0.0, accuracy_slope: float = 0.001, kl: float = 0.01,
           semantic: float | None = 0.3) -> list[dict]:
    out = []
    for i in range(n):
        row = {"step": i + 1, "loss": 0.0, "reward": reward + slope * i, "kl": kl * (i + 1) / n,
               "rewards/format_reward/mean": 0.5 + 0.01 * (i % 3),
               "rewards/accuracy_reward/mean": 0.2 + accuracy_slope * i}
        if semantic is not None:
            row["rewards/semantic_consistency_reward/mean"] = semantic + 0.01 * (i % 2)
        out.append(row)
    return out


def test_rose_compares_the_first_and_last_tenth():
    assert rose(_steps(30, slope=0.02), "reward")[0]
    passed, meta = rose(_steps(30, slope=-0.02), "reward")
    assert not passed and meta["first"] > meta["last"] and meta["logged_steps"] == 30


def test_a_constant_reward_component_is_reported_dead():
    steps = _steps(20, semantic=0.0)
    for row in steps:
        row["rewards/semantic_consistency_reward/mean"] = 0.0
    passed, meta = dead_rewards(steps)
    assert not passed and meta["constant"] == {"semantic_consistency_reward": 0.0}
    assert dead_rewards(_steps(20))[0]


def test_one_dead_component_is_an_error_and_a_run_that_scored_nothing_a_warning():
    steps = _steps(20)
    for row in steps:
        row["rewards/semantic_consistency_reward/mean"] = 0.0  # a gate that never opens: wiring
    assert run_checks("grpo", steps, max_kl=0.5, window=0.1, min_steps=10)["no_dead_reward"]["severity"] == "ERROR"
    for row in steps:  # nothing scored at all: the policy never wrote an answer (GRPO from a random base model)
        row.update({"rewards/format_reward/mean": 0.0, "rewards/accuracy_reward/mean": 0.0, "reward": 0.0})
    check = run_checks("grpo", steps, max_kl=0.5, window=0.1, min_steps=10)["no_dead_reward"]
    assert not check["passed"] and check["severity"] == "WARN" and "never produced a scorable answer" in check["reason"]
    steps[3]["rewards/accuracy_reward/mean"] = 0.004  # a free-form crumb of credit for an unformatted completion
    check = run_checks("grpo", steps, max_kl=0.5, window=0.1, min_steps=10)["no_dead_reward"]
    assert not check["passed"] and check["severity"] == "WARN", check


def test_kl_is_bounded_at_every_step():
    assert kl_within(_steps(10, kl=0.2), 0.5)[0]
    passed, meta = kl_within(_steps(10, kl=0.8), 0.5)
    assert not passed and meta["max_kl"] == pytest.approx(0.8)


def test_grpo_checks_grade_a_learning_run_as_passed():
    checks = run_checks("grpo", _steps(30, slope=0.02, accuracy_slope=0.01), max_kl=0.5, window=0.1, min_steps=10)
    assert {k: v["passed"] for k, v in checks.items()} == {
        "reward_rose": True, "accuracy_reward_rose": True, "no_dead_reward": True, "kl_within_bound": True}
    assert checks["no_dead_reward"]["severity"] == "ERROR" and checks["reward_rose"]["severity"] == "WARN"


def test_a_run_too_short_to_judge_fails_its_trend_checks_as_warnings():
    checks = run_checks("grpo", _steps(2, slope=0.1), max_kl=0.5, window=0.1, min_steps=10)
    for name in ("reward_rose", "accuracy_reward_rose", "no_dead_reward"):
        assert not checks[name]["passed"] and checks[name]["severity"] == "WARN"
        assert "at least 10" in checks[name]["reason"]
    assert checks["kl_within_bound"]["passed"]  # a bound holds or not at any length


def test_sft_is_checked_on_its_loss():
    steps = [{"step": i, "loss": 2.0 - 0.1 * i} for i in range(8)]
    assert run_checks("sft", steps, max_kl=0.5, window=0.1, min_steps=10)["training_loss_fell"]["passed"]
