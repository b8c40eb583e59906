"""What a finished training run must show, computed from its logged steps (``metrics.jsonl``).

SFT minimises a cross-entropy, so its loss must fall. GRPO's loss is a policy-gradient surrogate around 0 whose
trend says nothing; GRPO is for raising the reward, within a KL budget, with every reward component alive. Each
function takes the logged records and returns ``(passed, metadata)``; ``run_checks`` names and grades them
(``ERROR`` where a failure means a broken run, ``WARN`` where it may be noise or too short a run to judge).
"""

from __future__ import annotations

import math
from typing import Any

METRICS_FILE = "metrics.jsonl"  # a run's logged steps, one JSON object per line, in its output folder
Records = list[dict[str, Any]]
Check = dict[str, Any]  # {"passed": bool, "severity": "ERROR"|"WARN", **metadata}


def _series(records: Records, key: str) -> list[float]:
    return [float(r[key]) for r in records if key in r and math.isfinite(float(r[key]))]


def _ends(values: list[float], fraction: float) -> tuple[float, float]:
    n = max(1, int(len(values) * fraction))
    return sum(values[:n]) / n, sum(values[-n:]) / n


def fell(records: Records, key: str = "loss", fraction: float = 0.25) -> tuple[bool, dict[str, float]]:
    """mean(key over the last ``fraction`` of logged steps) < mean(over the first ``fraction``)."""
    values = _series(records, key)
    if len(values) < 2:
        return False, {"logged_steps": float(len(values))}
    first, last = _ends(values, fraction)
    return last < first, {"first": first, "last": last, "logged_steps": float(len(values))}


def rose(records: Records, key: str, fraction: float = 0.1) -> tuple[bool, dict[str, float]]:
    """mean(key over the last ``fraction`` of logged steps) > mean(over the first ``fraction``)."""
    values = _series(records, key)
    if len(values) < 2:
        return False, {"logged_steps": float(len(values))}
    first, last = _ends(values, fraction)
    return last > first, {"first": first, "last": last, "logged_steps": float(len(values))}


def kl_within(records: Records, bound: float, key: str = "kl") -> tuple[bool, dict[str, float]]:
    """max over logged steps of KL(policy || reference) <= ``bound`` (no KL logged: beta = 0, nothing to bound)."""
    values = _series(records, key)
    if not values:
        return True, {"max_kl": 0.0, "bound": bound, "logged_steps": 0.0}
    return max(values) <= bound, {"max_kl": max(values), "mean_kl": sum(values) / len(values), "bound": bound,
                                  "logged_steps": float(len(values))}


def dead_rewards(records: Records, prefix: str = "rewards/", suffix: str = "/mean") -> tuple[bool, dict[str, Any]]:
    """Every logged reward component took more than one value over the run (a constant one is a wiring bug:
    a gate that never opens, a column that never arrives, a model that scores everything alike)."""
    keys = sorted({k for r in records for k in r if k.startswith(prefix) and k.endswith(suffix)})
    constant = {}
    for key in keys:
        values = _series(records, key)
        if values and max(values) == min(values):
            constant[key[len(prefix):-len(suffix)]] = values[0]
    return not constant and bool(keys), {"components": [k[len(prefix):-len(suffix)] for k in keys],
                                          "constant": constant}


def metric_name(key: str) -> str:
    """A logged key's short name: ``rewards/accuracy_reward/mean`` -> ``accuracy_reward``; others unchanged."""
    return key.split("/")[1] if key.startswith("rewards/") and key.endswith("/mean") else key.replace("/", "_")


def curve_summary(records: Records, keys: tuple[str, ...] | list[str], fraction: float = 0.1) -> dict[str, float]:
    """Per metric: ``final_<name>`` = mean over the last ``fraction`` of its logged steps and ``change_<name>`` =
    that minus the mean over the first ``fraction`` (the same windows the checks judge); metrics never logged
    are left out."""
    out: dict[str, float] = {}
    for key in keys:
        values = _series(records, key)
        if not values:
            continue
        first, last = _ends(values, fraction)
        out[f"final_{metric_name(key)}"] = last
        out[f"change_{metric_name(key)}"] = last - first
    return out


def run_checks(method: str, records: Records, *, max_kl: float, window: float, min_steps: int) -> dict[str, Check]:
    """The method's checks. GRPO's are judged only on runs of at least ``min_steps`` logged steps; a shorter run
    fails them as warnings saying so (two steps cannot show a trend or a dead reward)."""
    if method == "sft":
        passed, meta = fell(records)
        return {"training_loss_fell": {"passed": passed, "severity": "ERROR", **meta}}
    steps = len([r for r in records if "reward" in r])
    checks: dict[str, Check] = {}
    for name, (passed, meta), severity in (
        ("reward_rose", rose(records, "reward", window), "WARN"),
        ("accuracy_reward_rose", rose(records, "rewards/accuracy_reward/mean", window), "WARN"),
        ("no_dead_reward", dead_rewards(records), "ERROR"),
        ("kl_within_bound", kl_within(records, max_kl), "ERROR"),
    ):
        if steps < min_steps and name != "kl_within_bound":
            checks[name] = {"passed": False, "severity": "WARN", "reason": f"{steps} logged steps; at least "
                            f"{min_steps} are needed to judge (checks.min_steps)", **meta}
        elif name == "no_dead_reward" and not passed and _nothing_scored(meta):
            # every component 0 at every step: the policy never wrote a scorable answer (a base model that cannot
            # follow the format), a run without signal rather than a wiring bug
            checks[name] = {"passed": False, "severity": "WARN", "reason": "every reward was 0 at every step: the "
                            "policy never produced a scorable answer; start GRPO from an SFT checkpoint or sample "
                            "more", **meta}
        else:
            checks[name] = {"passed": passed, "severity": severity, **meta}
    return checks


def _nothing_scored(meta: dict[str, Any]) -> bool:
    """The policy never wrote a well-formed answer: ``format_reward`` 0 at every step (what depends on the format
    is then 0 too; a free-form answer's partial credit on an unformatted completion does not make the run
    one with signal), or, without a format reward, every component 0 throughout."""
    constant = meta.get("constant", {})
    if "format_reward" in meta.get("components", []):
        return constant.get("format_reward", 1.0) == 0.0
    return bool(constant) and set(constant) == set(meta.get("components", [])) and not any(constant.values())


CHECK_DESCRIPTIONS = {
    "sft": {"training_loss_fell": "mean loss over the last quarter of logged steps < over the first quarter"},
    "grpo": {
        "reward_rose": "mean total reward over the last tenth of logged steps > over the first tenth",
        "accuracy_reward_rose": "mean accuracy reward over the last tenth of logged steps > over the first tenth",
        "no_dead_reward": "every reward component took more than one value over the run (an error; a warning when "
                          "the format reward was 0 throughout: the policy never produced a scorable answer)",
        "kl_within_bound": "KL to the reference model stayed <= the recipe's checks.max_kl at every logged step",
        "probe_accuracy_rose": "accuracy on the held-out probe set (training.probe), answered greedily: last probe "
                               "minus first on the same questions, 95% interval over videos above 0 (a warning; "
                               "passed as not applicable when the run has no probe)",
    },
}
