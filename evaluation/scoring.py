"""Benchmark scoring: the protocols, and the statistics around a score.

Three protocols, computed side by side from the same logged samples; the first two are the headline:

* ``videorft`` — the paper's evaluation script, VideoRFT's ``eval_bench.py``, sample by sample
  (:func:`evaluation.protocols.videorft_score`: first closed ``<answer>``, else the whole reply, exact strings).
  Overall: VSI-Bench ``(mean accuracy of its multiple-choice questions + mean MRA of its numerical questions) / 2``;
  every other benchmark the mean over its questions.
* ``official`` — lmms-eval v0.7.2, each benchmark by its own task's rule (the registry's
  ``Benchmark.official``, :mod:`evaluation.protocols`), fed :func:`videorft.answers.extract_prediction`'s answer
  text. Overall: VSI-Bench the unweighted mean of its 8 task scores, relative direction's easy/medium/hard
  averaged into one task first; MVBench the mean of its 20 task accuracies, a task's empty answers left out of its
  denominator; VideoMME, VideoMMMU, MMVU and TempCompass accuracy over all questions, categories alongside.
* ``lenient`` — ours, not a reference's: the tolerant reading the rewards and the CoT filter use (any case of
  tag, an option letter in prose, "(B)", "b.", the option's text; the first number of a reply), with the
  ``official`` overall. It answers "what does the model know", not "what would the leaderboard say": the
  controls and the pretraining measurement use it, because a base model answers with an option's text.

A sample whose generation failed is counted and reported, never scored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.benchmarks import BENCHMARKS
from evaluation.benchmarks import benchmark as registered_benchmark
from evaluation.protocols import mra_official, videorft_score
from videorft.answers import choice_letter, extract_prediction, parse_decimal

PROTOCOLS = ("videorft", "official", "lenient")
HEADLINE_PROTOCOLS = ("videorft", "official")  # the references' protocols: the scoreboard's headline columns
POOLED_BENCHMARK = "multiple_choice_pooled"  # questions of every benchmark: each scored by its own rule
BREAKDOWNS = ("domain", "duration", "track", "dimension", "discipline", "sub_category")


# ---- per-sample scores ------------------------------------------------------------------------------------

def lenient_score(problem_type: str, prediction: str, answer: str, options: Sequence[str] | None) -> float:
    """Our tolerant reading: the extracted answer's option letter (case, punctuation, prose naming one letter,
    the option's text), the first number (official MRA, or equality at 2 decimals), else equal text ignoring
    case and spacing."""
    extracted = extract_prediction(prediction)
    if problem_type == "multiple choice":
        got, want = choice_letter(extracted, options), choice_letter(answer, options)
        return float(got is not None and got == want)
    if problem_type in ("regression", "numerical"):
        p, g = parse_decimal(extracted), parse_decimal(answer)
        if g is None:
            raise ValueError(f"ground truth {answer!r} of a {problem_type} question is not a number")
        if problem_type == "regression":
            return mra_official(None if p is None else float(p), float(g))
        return float(p is not None and round(p, 2) == round(g, 2))
    return float(" ".join(extracted.lower().split()) == " ".join(answer.lower().split()))


def sample_score(problem_type: str, prediction: str | None, answer: str, options: Sequence[str] | None,
                 protocol: str, benchmark: str | None = None) -> float:
    """One sample's score in [0, 1] under ``protocol`` (``prediction`` is the raw model output, ``answer`` the
    ground truth's text). ``official`` is per benchmark, so it needs ``benchmark``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    reply, truth = prediction or "", extract_prediction(answer)
    if protocol == "videorft":
        return videorft_score(problem_type, reply, truth)
    if protocol == "lenient":
        return lenient_score(problem_type, reply, truth, options)
    if benchmark is None:
        raise ValueError("the official protocol is per benchmark: pass benchmark=")
    sample = {"problem_type": problem_type, "answer": truth, "options": list(options or [])}
    return registered_benchmark(benchmark).official(sample, extract_prediction(reply))


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


def score_samples(samples: Iterable[Mapping[str, Any]], protocol: str, benchmark: str | None = None
                  ) -> list[Scored]:
    """Every scored sample's score; a sample's own ``benchmark`` field, else ``benchmark``, picks its rule."""
    return [Scored(s, sample_score(str(s["problem_type"]), s.get("prediction"), str(s["answer"]),
                                   s.get("options"), protocol, s.get("benchmark") or benchmark))
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


def _vsi_tasks(scored: Sequence[Scored], protocol: str) -> float:
    """VSI-Bench. videorft: the mean of the multiple-choice mean and the numerical mean (eval_bench.py);
    otherwise the mean over tasks, relative direction's three difficulties averaged first into one task."""
    if protocol == "videorft":
        mc = [s.score for s in scored if s.sample["problem_type"] == "multiple choice"]
        num = [s.score for s in scored if s.sample["problem_type"] != "multiple choice"]
        parts = [p for p in (_mean(mc), _mean(num)) if not math.isnan(p)]
        return sum(parts) / 2 if len(parts) == 2 else parts[0]
    tasks = _by(scored, lambda s: vsi_task(s.category))
    direction = _by([s for s in scored if vsi_task(s.category) == "object_rel_direction"], lambda s: s.category)
    if direction:
        tasks["object_rel_direction"] = [_mean(_mean(v) for v in direction.values())]
    return _mean(_mean(v) for v in tasks.values())


def _mvbench_tasks(scored: Sequence[Scored], protocol: str) -> float:
    """MVBench. videorft: the mean over questions; otherwise the mean over tasks, each task's empty answers left
    out of its denominator as lmms-eval does (a task with no answer scores 0)."""
    if protocol == "videorft":
        return _mean(s.score for s in scored)
    tasks = _by([s for s in scored if extract_prediction(s.sample.get("prediction")) != ""], lambda s: s.category)
    every = {s.category for s in scored}
    return _mean(_mean(tasks[c]) if c in tasks else 0.0 for c in sorted(every))


# a registry entry's ``aggregate`` names one of these; a benchmark not in the registry (the pooled questions) means
AGGREGATES: dict[str, Callable[[Sequence[Scored], str], float]] = {
    "mean": lambda scored, protocol: _mean(s.score for s in scored),
    "vsi_tasks": _vsi_tasks,
    "mvbench_tasks": _mvbench_tasks,
}


def aggregate(benchmark: str, scored: Sequence[Scored], protocol: str) -> float:
    """The benchmark's overall score from per-sample scores under ``protocol``: its registry entry's aggregate."""
    if not scored:
        return math.nan
    entry = BENCHMARKS.get(benchmark)
    return AGGREGATES[entry.aggregate if entry is not None else "mean"](scored, protocol)


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
    rule = None if benchmark == POOLED_BENCHMARK else benchmark
    sa = score_samples([p[0] for p in pairs], protocol, rule)
    sb = score_samples([p[1] for p in pairs], protocol, rule)
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
        scored = score_samples(samples, protocol, benchmark)
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
