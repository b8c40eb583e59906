"""The controls a learning claim stands beside: uniform chance, a text-only baseline and a no-video run, per
question template and pooled over the multiple-choice questions, with intervals from a bootstrap over the real
videos (one video is one cluster, whichever benchmark its questions sit in).

- **Chance**: the mean of 1 / options (multiple choice only).
- **Text-only baseline**: per template, the best *fixed* answer: for multiple choice the better of a fixed letter
  and a fixed option text (the option with that text where a question offers it, else the best letter), for
  numerical and regression questions the value that scores best. It is chosen on questions no model is scored
  on (``fit``: for the synthetic fixtures, ``evaluation.fixtures.baseline_questions``, the same generator at
  another seed), as a text-only model would learn it from training questions, so it is never fitted to the
  answers it is scored on. Chosen on the scored questions themselves it is an upper bound
  (``text_only_in_sample``, always reported; the baseline where no ``fit`` is given). On the tiny fixtures the two
  agree on every template (the generator's priors are real: "white" is the commonest final colour); leaving one
  video out instead does not: with a near-tie the rule flips whenever the left-out video holds its answers, and
  the estimate falls below chance (colour-at-end 12.3%, chance 25%; ``bench/RESULTS.md``).
- **No-video run**: the same model on blank frames (``evaluation.run --video-control blank``).

A template is the synthetic world's question kind (``synthetic.qa.template_of``); a question from elsewhere
falls back to its category.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation.scoring import failed, paired_bootstrap, sample_score
from evaluation.table2 import POOLED, chance_level, score_with_interval

Samples = Sequence[Mapping[str, Any]]
# The controls ask what a model perceives, not what a leaderboard would print: a base model answers with an
# option's text, which the reference protocols do not read (evaluation.scoring).
PROTOCOL = "lenient"
MULTIPLE_CHOICE = "multiple choice"
ALL_MC = "all multiple choice"


def group_of(sample: Mapping[str, Any]) -> str:
    """A sample's question template (the synthetic world's), else its category."""
    from synthetic.qa import template_of

    return template_of(str(sample.get("problem") or "")) or str(sample.get("category") or "other")


def _option_text(option: str) -> str:
    return option.split(".", 1)[1].strip() if "." in option else option.strip()


Rule = tuple[str, str]  # ("letter", "B"), ("text", "white") or ("value", "3")


def _rules(fit: Samples) -> list[Rule]:
    """Every constant-answer rule of a group, in a fixed order (letters, then option texts; or values)."""
    if str(fit[0]["problem_type"]) != MULTIPLE_CHOICE:
        return [("value", v) for v in sorted({str(s["answer"]) for s in fit})]
    return ([("letter", v) for v in sorted({_option_text_letter(o) for s in fit for o in s.get("options") or []})]
            + [("text", v) for v in sorted({_option_text(o) for s in fit for o in s.get("options") or []})])


def _predict(rule: Rule, sample: Mapping[str, Any], fallback: str) -> str:
    """A rule's answer to one question: a text rule takes the option with its text, else ``fallback``."""
    kind, value = rule
    if kind != "text":
        return value
    return next((_option_text_letter(o) for o in sample.get("options") or [] if _option_text(o) == value), fallback)


def _mean_score(rule: Rule, samples: Samples, fallback: str) -> float:
    scores = [sample_score(str(s["problem_type"]), _predict(rule, s, fallback), str(s["answer"]), s.get("options"),
                           PROTOCOL) for s in samples]
    return sum(scores) / len(scores)


def best_fixed_answer(fit: Samples) -> tuple[Rule, str]:
    """The rule that scores best on ``fit`` (first in order on a tie) and the best letter, which a text rule
    answers where a question does not offer its text."""
    rules = _rules(fit)
    letters = [r for r in rules if r[0] == "letter"]
    fallback = max(letters, key=lambda r: _mean_score(r, fit, ""))[1] if letters else ""
    return max(rules, key=lambda r: _mean_score(r, fit, fallback)), fallback


def _option_text_letter(option: str) -> str:
    return option.split(".", 1)[0].strip()


def _groups(samples: Samples) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if not failed(s):
            out[f"{group_of(s)}|{s['problem_type']}"].append(i)
    return out


def text_only(samples: Samples, fit: Samples | None = None) -> list[dict[str, Any]]:
    """The samples answered by the text-only baseline: per group, the best fixed answer chosen on ``fit``'s
    questions of that group (questions no model is scored on), or on ``samples`` themselves where ``fit`` is None
    or has none of the group (the in-sample upper bound)."""
    fit_groups = _groups(fit) if fit is not None else {}
    out = [dict(s) for s in samples]
    for key, rows in _groups(samples).items():
        chosen_on = [fit[i] for i in fit_groups[key]] if fit is not None and key in fit_groups else \
            [samples[i] for i in rows]
        rule, fallback = best_fixed_answer(chosen_on)
        for i in rows:
            out[i].update({"prediction": _predict(rule, samples[i], fallback), "failed": False})
    return out


def _split(samples: Samples) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for s in samples:
        out[group_of(s)].append(s)
        if s.get("problem_type") == MULTIPLE_CHOICE:
            out[ALL_MC].append(s)
    return dict(out)


def _difference(a: Samples, b: Samples, iterations: int, seed: int) -> dict[str, float | None]:
    """``b - a`` in percent on the questions both scored, paired bootstrap over videos."""
    try:
        d = paired_bootstrap(POOLED, a, b, PROTOCOL, iterations, seed)
    except ValueError:
        return {"delta": None, "ci95_low": None, "ci95_high": None}
    return {k: round(100 * d[k], 2) for k in ("delta", "ci95_low", "ci95_high")}


def control_table(model: Samples, blank: Samples | None = None, iterations: int = 1000, seed: int = 0,
                  fit: Samples | None = None) -> pd.DataFrame:
    """One row per template (and ``all multiple choice``): questions, videos, chance, the text-only baseline
    (chosen on ``fit``, and in-sample as an upper bound), the model's accuracy with its interval, model - text-only
    (paired), and with ``blank`` (the same model on blank frames) the no-video accuracy and blank - text-only."""
    baseline = text_only(model, fit)
    parts, base_parts, upper_parts = _split(model), _split(baseline), _split(text_only(model))
    blank_parts = _split(blank) if blank is not None else {}
    rows = []
    for group in sorted(parts, key=lambda g: (g == ALL_MC, g)):
        samples = parts[group]
        s = score_with_interval(POOLED, samples, PROTOCOL, iterations, seed)
        t = score_with_interval(POOLED, base_parts[group], PROTOCOL, 0, seed)
        row: dict[str, Any] = {
            "group": group, "questions": len(samples), "videos": len({x.get("video") for x in samples}),
            "problem_type": samples[0]["problem_type"] if group != ALL_MC else MULTIPLE_CHOICE,
            "chance": chance_level(samples), "text_only": t["score"],
            "text_only_in_sample": score_with_interval(POOLED, upper_parts[group], PROTOCOL, 0, seed)["score"],
            "accuracy": s["score"],
            "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"]}
        d = _difference(base_parts[group], samples, iterations, seed)
        row.update({"minus_text_only": d["delta"], "minus_text_only_ci95_low": d["ci95_low"],
                    "minus_text_only_ci95_high": d["ci95_high"]})
        if group in blank_parts:
            row["blank"] = score_with_interval(POOLED, blank_parts[group], PROTOCOL, 0, seed)["score"]
            d = _difference(base_parts[group], blank_parts[group], iterations, seed)
            row.update({"blank_minus_text_only": d["delta"], "blank_minus_text_only_ci95_low": d["ci95_low"],
                        "blank_minus_text_only_ci95_high": d["ci95_high"]})
        rows.append(row)
    return pd.DataFrame(rows)
