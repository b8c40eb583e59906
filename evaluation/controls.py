"""The controls a learning claim stands beside: uniform chance, a text-only baseline and a no-video run, per
question template and pooled over the multiple-choice questions, with intervals from a bootstrap over the real
videos (one video is one cluster, whichever benchmark its questions sit in).

- **Chance**: the mean of 1 / options (multiple choice only).
- **Text-only baseline**: per template, the best *fixed* answer: for multiple choice the better of a fixed letter
  and a fixed option text (the option with that text where a question offers it, else the best letter), for
  numerical and regression questions the value that scores best. For each video it is chosen on the *other*
  videos' questions (leave one video out), as a text-only model would choose it from questions it has seen.
  Chosen on the scored questions themselves (``text_only_in_sample``, still reported) it is the best of some
  dozens of rules fitted to the answers it is scored on: on the tiny fixtures the rule "answer white where it
  is offered" scores 30.2% in-sample on colour-at-end and 12.3% on the videos it was not chosen on, and the
  pooled baseline falls from 37.8 to 31.2 (``bench/RESULTS.md``, "Pretrained tiny models").
- **No-video run**: the same model on blank frames (``evaluation.run --video-control blank``).

A template is the synthetic world's question kind (``synthetic.qa.template_of``); a question from elsewhere
falls back to its category.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
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


def _rule_scores(samples: Samples) -> tuple[list[list[str]], np.ndarray]:
    """Every constant-answer rule of a group as one prediction per sample, and each prediction's score
    (samples x rules). A multiple-choice group's rules are its letters, then its option texts; a text rule's
    prediction is the letter of the option with that text, or "" (filled in later) where no option has it."""
    kind = str(samples[0]["problem_type"])
    if kind != MULTIPLE_CHOICE:
        rules = [[str(value)] * len(samples) for value in sorted({str(s["answer"]) for s in samples})]
    else:
        letters = sorted({_option_text_letter(o) for s in samples for o in s.get("options") or []})
        texts = sorted({_option_text(o) for s in samples for o in s.get("options") or []})
        rules = [[letter] * len(samples) for letter in letters]
        rules += [[next((_option_text_letter(o) for o in s.get("options") or [] if _option_text(o) == text), "")
                   for s in samples] for text in texts]
    scores = np.array([[sample_score(kind, p, str(s["answer"]), s.get("options"), "official") if p else 0.0
                        for p, s in zip(rule, samples, strict=True)] for rule in rules])
    return rules, scores.T.reshape(len(samples), len(rules))


def _best_rule(rules: list[list[str]], scores: np.ndarray, fit: np.ndarray, letters: int) -> list[str]:
    """The best rule on the ``fit`` rows (first in order on a tie), text rules falling back to the best letter."""
    if not fit.any():  # nothing to choose on: a fixed arbitrary answer
        return rules[0]
    best_letter = int(np.argmax(scores[fit, :letters].sum(axis=0))) if letters else 0
    filled = scores.copy()
    for r in range(letters, len(rules)):
        missing = np.array([p == "" for p in rules[r]])
        filled[missing, r] = scores[missing, best_letter]
    best = int(np.argmax(filled[fit].sum(axis=0)))
    return [p or rules[best_letter][i] for i, p in enumerate(rules[best])]


def _fixed_answer(samples: Samples, held_out: bool) -> list[str]:
    """One group's text-only predictions: the best fixed rule chosen on the other videos' questions
    (``held_out``), or on the group itself."""
    rules, scores = _rule_scores(samples)
    letters = (len({_option_text_letter(o) for s in samples for o in s.get("options") or []})
               if samples[0]["problem_type"] == MULTIPLE_CHOICE else len(rules))
    videos = np.array([str(s.get("video")) for s in samples])
    if not held_out:
        return _best_rule(rules, scores, np.ones(len(samples), dtype=bool), letters)
    out = [""] * len(samples)
    for video in np.unique(videos):
        rows = np.flatnonzero(videos == video)
        chosen = _best_rule(rules, scores, videos != video, letters)
        for i in rows:
            out[i] = chosen[i]
    return out


def _option_text_letter(option: str) -> str:
    return option.split(".", 1)[0].strip()


def text_only(samples: Samples, held_out: bool = True) -> list[dict[str, Any]]:
    """The samples answered by the text-only baseline: per group, the best fixed answer, chosen for each video
    on the other videos' questions (``held_out``, the baseline) or on all of them (the in-sample upper bound)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if not failed(s):
            groups[f"{group_of(s)}|{s['problem_type']}"].append(i)
    out = [dict(s) for s in samples]
    for rows in groups.values():
        members = [samples[i] for i in rows]
        for i, prediction in zip(rows, _fixed_answer(members, held_out), strict=True):
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
    """One row per template (and ``all multiple choice``): questions, videos, chance, the text-only baseline
    (held out, and in-sample as an upper bound), the model's accuracy with its interval, model - text-only
    (paired), and with ``blank`` (the same model on blank frames) the no-video accuracy and blank - text-only."""
    baseline = text_only(model)
    parts, base_parts, upper_parts = _split(model), _split(baseline), _split(text_only(model, held_out=False))
    blank_parts = _split(blank) if blank is not None else {}
    rows = []
    for group in sorted(parts, key=lambda g: (g == ALL_MC, g)):
        samples = parts[group]
        s = score_with_interval(POOLED, samples, "official", iterations, seed)
        t = score_with_interval(POOLED, base_parts[group], "official", 0, seed)
        row: dict[str, Any] = {
            "group": group, "questions": len(samples), "videos": len({x.get("video") for x in samples}),
            "problem_type": samples[0]["problem_type"] if group != ALL_MC else MULTIPLE_CHOICE,
            "chance": chance_level(samples), "text_only": t["score"],
            "text_only_in_sample": score_with_interval(POOLED, upper_parts[group], "official", 0, seed)["score"],
            "accuracy": s["score"],
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
