"""The controls a learning claim stands beside: uniform chance, a text-only baseline and a no-video run, per
question template and pooled over the multiple-choice questions, with intervals from a bootstrap over the real
videos (one video is one cluster, whichever benchmark its questions sit in).

- **Chance**: the mean of 1 / options (multiple choice only).
- **Text-only baseline**: per template, the best *fixed* answer: for multiple choice the better of a fixed letter
  and a fixed option text (the option with that text where a question offers it, else the best letter), for
  numerical and regression questions the value that scores best. It is chosen on the evaluated questions
  themselves: an upper bound on every constant-answer rule, so beating it is a conservative claim.
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
MULTIPLE_CHOICE = "multiple choice"
ALL_MC = "all multiple choice"


def group_of(sample: Mapping[str, Any]) -> str:
    """A sample's question template (the synthetic world's), else its category."""
    from synthetic.qa import template_of

    return template_of(str(sample.get("problem") or "")) or str(sample.get("category") or "other")


def _option_text(option: str) -> str:
    return option.split(".", 1)[1].strip() if "." in option else option.strip()


def _mean_score(samples: Samples, predictions: Sequence[str]) -> float:
    scores = [sample_score(str(s["problem_type"]), p, str(s["answer"]), s.get("options"), "official")
              for s, p in zip(samples, predictions, strict=True)]
    return sum(scores) / len(scores) if scores else 0.0


def _fixed_rules(samples: Samples) -> list[list[str]]:
    """Every constant-answer rule of a group, as one prediction per sample."""
    kind = str(samples[0]["problem_type"])
    if kind != MULTIPLE_CHOICE:
        return [[str(value)] * len(samples) for value in sorted({str(s["answer"]) for s in samples})]
    letters = sorted({_option_text_letter(o) for s in samples for o in s.get("options") or []})
    rules = [[letter] * len(samples) for letter in letters]
    best_letter = max(rules, key=lambda r: _mean_score(samples, r))[0] if rules else "A"
    texts = sorted({_option_text(o) for s in samples for o in s.get("options") or []})
    for text in texts:
        rule = []
        for s in samples:
            offered = [_option_text_letter(o) for o in s.get("options") or [] if _option_text(o) == text]
            rule.append(offered[0] if offered else best_letter)
        rules.append(rule)
    return rules


def _option_text_letter(option: str) -> str:
    return option.split(".", 1)[0].strip()


def text_only(samples: Samples) -> list[dict[str, Any]]:
    """The samples answered by the text-only baseline: per group, the best fixed answer (see the module)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if not failed(s):
            groups[f"{group_of(s)}|{s['problem_type']}"].append(i)
    out = [dict(s) for s in samples]
    for rows in groups.values():
        members = [samples[i] for i in rows]
        best = max(_fixed_rules(members), key=lambda r: _mean_score(members, r))
        for i, prediction in zip(rows, best, strict=True):
            out[i].update({"prediction": prediction, "failed": False})
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
        d = paired_bootstrap(POOLED, a, b, "official", iterations, seed)
    except ValueError:
        return {"delta": None, "ci95_low": None, "ci95_high": None}
    return {k: round(100 * d[k], 2) for k in ("delta", "ci95_low", "ci95_high")}


def control_table(model: Samples, blank: Samples | None = None, iterations: int = 1000, seed: int = 0
                  ) -> pd.DataFrame:
    """One row per template (and ``all multiple choice``): questions, videos, chance, the text-only baseline,
    the model's accuracy with its interval, model - text-only (paired), and with ``blank`` (the same model on
    blank frames) the no-video accuracy and blank - text-only."""
    baseline = text_only(model)
    parts, base_parts = _split(model), _split(baseline)
    blank_parts = _split(blank) if blank is not None else {}
    rows = []
    for group in sorted(parts, key=lambda g: (g == ALL_MC, g)):
        samples = parts[group]
        s = score_with_interval(POOLED, samples, "official", iterations, seed)
        t = score_with_interval(POOLED, base_parts[group], "official", 0, seed)
        row: dict[str, Any] = {
            "group": group, "questions": len(samples), "videos": len({x.get("video") for x in samples}),
            "problem_type": samples[0]["problem_type"] if group != ALL_MC else MULTIPLE_CHOICE,
            "chance": chance_level(samples), "text_only": t["score"], "accuracy": s["score"],
            "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"]}
        d = _difference(base_parts[group], samples, iterations, seed)
        row.update({"minus_text_only": d["delta"], "minus_text_only_ci95_low": d["ci95_low"],
                    "minus_text_only_ci95_high": d["ci95_high"]})
        if group in blank_parts:
            row["blank"] = score_with_interval(POOLED, blank_parts[group], "official", 0, seed)["score"]
            d = _difference(base_parts[group], blank_parts[group], iterations, seed)
            row.update({"blank_minus_text_only": d["delta"], "blank_minus_text_only_ci95_low": d["ci95_low"],
                        "blank_minus_text_only_ci95_high": d["ci95_high"]})
        rows.append(row)
    return pd.DataFrame(rows)
