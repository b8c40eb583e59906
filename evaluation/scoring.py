"""Benchmark scoring: answer extraction, the two protocols, and the statistics around a score.

Two protocols, computed side by side from the same logged samples:

* ``videorft`` — the paper's evaluation script (Video-R1 / VideoRFT ``eval_bench.py``): exact option-letter match,
  numerical answers exact after rounding to 2 decimals (and with the script's decimal-presence rule),
  VSI-Bench's numerical questions by mean relative accuracy (MRA) computed as the script computes it
  (``mra_videorft``: float32, strict ``<``), and VSI-Bench's overall score ``(mean accuracy of its
  multiple-choice questions + mean MRA of its numerical questions) / 2``. Every other benchmark: the mean over
  its questions.
* ``official`` — each benchmark's own rules, as lmms-eval computes them. VSI-Bench: the unweighted mean of its
  8 task scores, relative direction's easy/medium/hard averaged into one task first, MRA as lmms-eval computes
  it (``mra_official``: float64, ``<=``). MVBench: the mean of its 20 task accuracies, a task's empty
  predictions left out of its denominator. VideoMME, VideoMMMU, MMVU and TempCompass: accuracy over all
  questions (their official overall numbers), categories reported alongside.

Prediction 3 against truth 4 is the textbook difference: relative error 0.25, which meets the threshold
0.75 (1 - 0.75 = 0.25) only under ``<=``: 6 of 10 thresholds (0.6) officially, 5 of 10 (0.5) in the paper.
Each protocol does its references' float arithmetic, so a boundary is decided as the reference decides it.

Extraction (``videorft.answers``, shared with the rewards and the filter): the last ``<answer>..</answer>`` (any
case), else the text after ``</think>``, else the whole output; then an option letter tolerant of case and
punctuation (``<answer>a.</answer>`` is A) or the option's text, or the first number. A sample whose generation
failed is counted and reported, never scored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from videorft.answers import choice_letter, extract_prediction, parse_decimal

PROTOCOLS = ("videorft", "official")
BREAKDOWNS = ("domain", "duration", "track", "dimension", "discipline", "sub_category")
OFFICIAL_MRA_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # lmms-eval's (0.95 - 0.5) / 0.05 + 2 points, floored


# ---- per-sample scores ------------------------------------------------------------------------------------

def mra_official(prediction: float | None, truth: float) -> float:
    """VSI-Bench's MRA as lmms-eval computes it: the mean over theta in ``numpy.linspace(0.5, 0.95, 10)`` of
    ``|p - g| / g <= 1 - theta``, in float64.

    Ground truth 0 (lmms-eval would divide by it): 1 if the prediction is 0, else 0. A negative ground truth is
    divided by its magnitude (lmms-eval's ``/ g`` would credit any prediction); VSI-Bench has neither.
    """
    if prediction is None:
        return 0.0
    if truth == 0:
        return float(prediction == 0)
    error = abs(prediction - truth) / abs(truth)
    return float(np.mean(error <= 1 - OFFICIAL_MRA_THRESHOLDS))


def mra_videorft(prediction: float | None, truth: float) -> float:
    """MRA as VideoRFT's evaluation script computes it: float32 tensors, ``|p - g| / (|g| + 1e-8)``, thresholds
    ``torch.arange(0.5, 0.95 + 0.025, 0.05)`` in float32, strict ``rel < 1 - theta``, the mean in float32.

    Torch itself does the arithmetic, so the float32 rounding at each threshold is the script's: 3 vs 4 scores
    0.5 here and 0.6 officially (``<`` against ``<=`` at 0.25), 4.73 vs 4.3 scores 0.9 here and 0.8 officially
    (float32 and float64 round the error to opposite sides of 0.1).
    """
    import torch

    if prediction is None:
        return 0.0
    p = torch.tensor(prediction, dtype=torch.float32)
    g = torch.tensor(truth, dtype=torch.float32)
    error = torch.abs(p - g) / (torch.abs(g) + 1e-8)
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)
    return float((error < (1 - thresholds)).float().mean().item())


def _decimal_mark(text: str) -> bool:
    return "." in text or "," in text


def sample_score(problem_type: str, prediction: str | None, answer: str, options: Sequence[str] | None,
                 protocol: str) -> float:
    """One sample's score in [0, 1] under ``protocol`` (``prediction`` is the raw model output).

    Numerical answers under ``videorft`` also follow the script's decimal-presence rule (``3`` against ``3.0``,
    or ``1000`` against ``1,000``, scores 0); ``official`` compares values.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    extracted = extract_prediction(prediction)
    truth = extract_prediction(answer)
    if problem_type == "multiple choice":
        got, want = choice_letter(extracted, options), choice_letter(truth, options)
        return float(got is not None and got == want)
    if problem_type == "regression":
        want_number = parse_decimal(truth)
        if want_number is None:
            raise ValueError(f"ground truth {answer!r} of a regression question is not a number")
        got = parse_decimal(extracted)
        mra = mra_videorft if protocol == "videorft" else mra_official
        return mra(None if got is None else float(got), float(want_number))
    if problem_type == "numerical":
        if protocol == "videorft" and _decimal_mark(extracted) != _decimal_mark(truth):
            return 0.0
        p, g = parse_decimal(extracted), parse_decimal(truth)
        return float(p is not None and g is not None and round(p, 2) == round(g, 2))
    return float(" ".join(extracted.lower().split()) == " ".join(truth.lower().split()))


# ---- benchmark scores -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scored:
    """A logged sample with its score under one protocol."""

    sample: Mapping[str, Any]
    score: float

    @property
    def category(self) -> str:
        return str(self.sample.get("category") or "all")


def failed(sample: Mapping[str, Any]) -> bool:
    """A sample whose generation failed: reported, never scored."""
    return bool(sample.get("failed")) or sample.get("prediction") is None


def score_samples(samples: Iterable[Mapping[str, Any]], protocol: str) -> list[Scored]:
    return [Scored(s, sample_score(str(s["problem_type"]), s.get("prediction"), str(s["answer"]),
                                   s.get("options"), protocol))
            for s in samples if not failed(s)]


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else math.nan


def _by(scored: Iterable[Scored], key: Callable[[Scored], str]) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in scored:
        groups[key(s)].append(s.score)
    return dict(sorted(groups.items()))


def vsi_task(category: str) -> str:
    """VSI-Bench's official task of a category: relative direction's three difficulties are one task."""
    return "object_rel_direction" if category.startswith("object_rel_direction") else category


def aggregate(benchmark: str, scored: Sequence[Scored], protocol: str) -> float:
    """The benchmark's overall score from per-sample scores under ``protocol`` (see the module docstring)."""
    if not scored:
        return math.nan
    if benchmark == "vsi_bench":
        if protocol == "videorft":
            mc = [s.score for s in scored if s.sample["problem_type"] == "multiple choice"]
            num = [s.score for s in scored if s.sample["problem_type"] != "multiple choice"]
            parts = [p for p in (_mean(mc), _mean(num)) if not math.isnan(p)]
            return sum(parts) / 2 if len(parts) == 2 else parts[0]
        tasks = _by(scored, lambda s: vsi_task(s.category))
        direction = _by([s for s in scored if vsi_task(s.category) == "object_rel_direction"], lambda s: s.category)
        if direction:  # average the difficulties first, then the direction task counts once
            tasks["object_rel_direction"] = [_mean(_mean(v) for v in direction.values())]
        return _mean(_mean(v) for v in tasks.values())
    if benchmark == "mvbench" and protocol == "official":
        # lmms-eval leaves a task's empty predictions out of its denominator (a task with no answer scores 0)
        tasks = _by([s for s in scored if s.sample.get("prediction") != ""], lambda s: s.category)
        every = {s.category for s in scored}
        return _mean(_mean(tasks[c]) if c in tasks else 0.0 for c in sorted(every))
    return _mean(s.score for s in scored)


def _clusters(scored: Sequence[Scored]) -> list[list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(scored):
        groups[str(s.sample.get("video") or s.sample.get("sample_id") or i)].append(i)
    return list(groups.values())


def bootstrap(benchmark: str, scored: Sequence[Scored], protocol: str, iterations: int = 1000,
              seed: int = 0) -> dict[str, float]:
    """Standard error and 95% interval of the overall score, resampling whole videos (questions on one
    video are not independent, so resampling questions would understate the error)."""
    clusters = _clusters(scored)
    if len(clusters) < 2 or iterations < 2:
        return {"stderr": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(iterations):
        picks = rng.integers(0, len(clusters), len(clusters))
        values.append(aggregate(benchmark, [scored[i] for c in picks for i in clusters[c]], protocol))
    arr = np.array([v for v in values if not math.isnan(v)])
    return {"stderr": float(arr.std(ddof=1)), "ci95_low": float(np.percentile(arr, 2.5)),
            "ci95_high": float(np.percentile(arr, 97.5))}


def paired_bootstrap(benchmark: str, a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]],
                     protocol: str, iterations: int = 1000, seed: int = 0) -> dict[str, float]:
    """B - A on the questions both answered, resampling videos jointly; two-sided bootstrap p-value."""
    key = _sample_key
    b_by_key = {key(s): s for s in b if not failed(s)}
    pairs = [(s, b_by_key[key(s)]) for s in a if not failed(s) and key(s) in b_by_key]
    if not pairs:
        raise ValueError("the two evaluations share no scored sample")
    sa = score_samples([p[0] for p in pairs], protocol)
    sb = score_samples([p[1] for p in pairs], protocol)
    delta = aggregate(benchmark, sb, protocol) - aggregate(benchmark, sa, protocol)
    clusters = _clusters(sa)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(iterations):
        idx = [i for c in rng.integers(0, len(clusters), len(clusters)) for i in clusters[c]]
        diffs.append(aggregate(benchmark, [sb[i] for i in idx], protocol)
                     - aggregate(benchmark, [sa[i] for i in idx], protocol))
    arr = np.array(diffs)
    p = 2 * min((arr <= 0).mean(), (arr >= 0).mean()) if delta != 0 else 1.0
    return {"delta": float(delta), "ci95_low": float(np.percentile(arr, 2.5)),
            "ci95_high": float(np.percentile(arr, 97.5)), "p_value": float(min(1.0, p)), "paired": len(pairs)}


def _sample_key(sample: Mapping[str, Any]) -> str:
    if sample.get("sample_id") is not None:
        return str(sample["sample_id"])
    return f"{sample.get('video')}|{sample.get('prompt') or sample.get('problem') or ''}|{sample.get('answer')}"


def score_benchmark(benchmark: str, samples: Sequence[Mapping[str, Any]], iterations: int = 1000,
                    seed: int = 0) -> dict[str, Any]:
    """Both protocols' overall and per-category scores, with clustered-bootstrap errors and failures."""
    out: dict[str, Any] = {"samples": len(samples), "failed": sum(failed(s) for s in samples)}
    for protocol in PROTOCOLS:
        scored = score_samples(samples, protocol)
        categories = _by(scored, lambda s: s.category)
        out[protocol] = {
            "overall": aggregate(benchmark, scored, protocol),
            **bootstrap(benchmark, scored, protocol, iterations, seed),
            "categories": {c: _mean(v) for c, v in categories.items()},
            "category_counts": {c: len(v) for c, v in categories.items()},
        }
        # second axes some benchmarks report besides their category (VideoMME's domains, ...)
        extra_axes = sorted({k for s in scored for k in (s.sample.get("extra") or {}) if k in BREAKDOWNS})
        if extra_axes:
            out[protocol]["breakdowns"] = {
                axis: {v: _mean(scores) for v, scores in _by(
                    [s for s in scored if axis in (s.sample.get("extra") or {})],
                    lambda s, a=axis: str(s.sample["extra"][a])).items()}
                for axis in extra_axes}
    out["scored"] = out["samples"] - out["failed"]
    return _finite(out)


def _finite(value: Any) -> Any:
    """NaN (a score with nothing to score) as None, so the result is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def score_log(samples: Iterable[Mapping[str, Any]], iterations: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``{benchmark: score_benchmark(...)}`` for a log that may mix benchmarks."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for s in samples:
        groups[str(s["benchmark"])].append(s)
    return {b: score_benchmark(b, rows, iterations, seed) for b, rows in sorted(groups.items())}
