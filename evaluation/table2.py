"""Table 2 from per-sample logs: every variant's scores with intervals and its paired difference from a reference.

Input: the per-sample logs of ``evaluation.run`` (one list of samples per (variant, benchmark)). Output:

- ``table``: one row per (variant, benchmark), the two reference protocols' scores in percent with 95% intervals
  (bootstrap over videos, ``scoring.bootstrap``), and each variant's difference from the reference variant
  (``full``) on the same questions with its paired-bootstrap interval (``scoring.paired_bootstrap``: both
  variants resampled with the same videos, so the question-to-question variation cancels), and the ``lenient``
  score beside them;
- ``pooled``: the multiple-choice questions of all benchmarks pooled, per variant: accuracy, interval, the
  chance level (the mean of 1 / options) and paired differences from the base model and from the reference.
  This is where a small model's effect shows first: one benchmark's 64 questions give intervals of +-12 points.

``python -m evaluation.table2 LOG.jsonl [...]`` prints both as CSV from logs that carry ``variant`` and
``benchmark`` fields (the scoreboard asset adds them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation.scoring import (
    HEADLINE_PROTOCOLS,
    POOLED_BENCHMARK,
    aggregate,
    bootstrap,
    failed,
    paired_bootstrap,
    score_samples,
)

Samples = Sequence[Mapping[str, Any]]
POOLED = POOLED_BENCHMARK
TABLE_COLUMNS = ["variant", "benchmark", "samples", "failed", "chance", "videorft", "videorft_ci95_low",
                 "videorft_ci95_high", "official", "official_ci95_low", "official_ci95_high", "lenient"]


def _pct(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(100 * value, 2)


def score_with_interval(benchmark: str, samples: Samples, protocol: str, iterations: int, seed: int
                        ) -> dict[str, float | None]:
    scored = score_samples(samples, protocol, None if benchmark == POOLED else benchmark)
    out = bootstrap(benchmark, scored, protocol, iterations, seed)
    return {"score": _pct(aggregate(benchmark, scored, protocol)), "ci95_low": _pct(out["ci95_low"]),
            "ci95_high": _pct(out["ci95_high"])}


def difference(benchmark: str, samples: Samples, reference: Samples, protocol: str, iterations: int, seed: int
               ) -> dict[str, float | None]:
    """``samples`` - ``reference`` on the questions both scored, with its paired-bootstrap interval."""
    try:
        out = paired_bootstrap(benchmark, reference, samples, protocol, iterations, seed)
    except ValueError:  # no question in common (e.g. every generation failed): no difference to report
        return {"delta": None, "ci95_low": None, "ci95_high": None, "p_value": None}
    return {"delta": _pct(out["delta"]), "ci95_low": _pct(out["ci95_low"]), "ci95_high": _pct(out["ci95_high"]),
            "p_value": round(out["p_value"], 4)}


def in_table2_order(variants: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """``variants`` in Table 2's order (``order``: the profile's ``training.variants``, base first), the ones it
    does not name after them by name."""
    rank = {v: i for i, v in enumerate(order)}
    return sorted(set(variants), key=lambda v: (rank.get(v, len(rank)), v))


def build_table(logs: Mapping[tuple[str, str], Samples], reference: str, iterations: int = 1000, seed: int = 0,
                order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (variant, benchmark), variants in ``order`` (``in_table2_order``): scores and intervals under
    both protocols, and the difference from ``reference`` (columns ``delta_<protocol>``,
    ``delta_<protocol>_ci95_low/high``) where it was evaluated."""
    rows = []
    ranked = {v: i for i, v in enumerate(in_table2_order((v for v, _ in logs), order))}
    for (variant, benchmark), samples in sorted(logs.items(), key=lambda kv: (ranked[kv[0][0]], kv[0][1])):
        row: dict[str, Any] = {"variant": variant, "benchmark": benchmark, "samples": len(samples),
                               "failed": sum(failed(s) for s in samples), "chance": benchmark_chance(samples)}
        ref = logs.get((reference, benchmark))
        for protocol in HEADLINE_PROTOCOLS:
            s = score_with_interval(benchmark, samples, protocol, iterations, seed)
            row.update({protocol: s["score"], f"{protocol}_ci95_low": s["ci95_low"],
                        f"{protocol}_ci95_high": s["ci95_high"]})
            d = difference(benchmark, samples, ref, protocol, iterations, seed) if ref is not None else {}
            row.update({f"delta_{protocol}": d.get("delta"), f"delta_{protocol}_ci95_low": d.get("ci95_low"),
                        f"delta_{protocol}_ci95_high": d.get("ci95_high")})
        row["lenient"] = score_with_interval(benchmark, samples, "lenient", 0, seed)["score"]  # ours, beside them
        rows.append(row)
    extra = [f"delta_{p}{suffix}" for p in HEADLINE_PROTOCOLS for suffix in ("", "_ci95_low", "_ci95_high")]
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *extra])


def pooled_multiple_choice(logs: Mapping[tuple[str, str], Samples]) -> dict[str, list[dict[str, Any]]]:
    """Per variant, the multiple-choice samples of every benchmark, with ids made unique across benchmarks. The
    video stays as it is: questions on one video are one cluster of the bootstrap, whichever benchmark asks them."""
    pooled: dict[str, list[dict[str, Any]]] = {}
    for (variant, benchmark), samples in sorted(logs.items()):
        for i, s in enumerate(samples):
            if s.get("problem_type") != "multiple choice":
                continue
            ident = s.get("sample_id", s.get("doc_id", i))
            # each question keeps its benchmark: the official protocol scores it by that benchmark's rule
            pooled.setdefault(variant, []).append({**s, "benchmark": benchmark, "sample_id": f"{benchmark}:{ident}"})
    return pooled


def chance_level(samples: Samples) -> float | None:
    """Expected accuracy of a uniform guess among each question's options."""
    sizes = [len(s.get("options") or []) for s in samples]
    sizes = [n for n in sizes if n > 0]
    return _pct(sum(1 / n for n in sizes) / len(sizes)) if sizes else None


def benchmark_chance(samples: Samples) -> float | None:
    """A benchmark's uniform-chance score in percent: 1 / options on a multiple-choice question, 0 on an open one
    (no guess of a number or a text is uniform), averaged over the questions. The chance line of the figure."""
    if not samples:
        return None
    return _pct(sum(1 / len(s["options"]) for s in samples if s.get("options")) / len(samples))


def split_subsets(samples: Samples, subsets: Mapping[str, str]) -> dict[str, list[Mapping[str, Any]]]:
    """``all``, then for each ``name -> phrase`` the samples whose question contains the phrase
    (case-insensitive) and, as ``not_<name>``, the others."""
    out: dict[str, list[Mapping[str, Any]]] = {"all": list(samples)}
    for name, phrase in subsets.items():
        asks = [phrase.lower() in str(s.get("problem") or "").lower() for s in samples]
        out[name] = [s for s, a in zip(samples, asks, strict=True) if a]
        out[f"not_{name}"] = [s for s, a in zip(samples, asks, strict=True) if not a]
    return out


def build_pooled(logs: Mapping[tuple[str, str], Samples], reference: str, baseline: str = "base",
                 iterations: int = 1000, seed: int = 0, protocol: str = "official",
                 subsets: Mapping[str, str] | None = None, order: Sequence[str] = ()) -> pd.DataFrame:
    """Pooled multiple-choice accuracy per variant (and per ``subsets``, see ``split_subsets``), its interval,
    chance, and paired differences from ``baseline`` and ``reference`` (bootstrap clusters are the real videos,
    one video in two benchmarks is one cluster)."""
    pooled = pooled_multiple_choice(logs)
    split = {variant: split_subsets(samples, subsets or {}) for variant, samples in pooled.items()}
    rows = []
    for variant in in_table2_order(split, order):
        parts = split[variant]
        for subset, samples in parts.items():
            if not samples:
                continue
            s = score_with_interval(POOLED, samples, protocol, iterations, seed)
            row: dict[str, Any] = {"variant": variant, "subset": subset, "questions": len(samples),
                                   "accuracy": s["score"], "ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"],
                                   "chance": chance_level(samples)}
            if protocol != "lenient":  # ours beside the reference's: what the model knows, read tolerantly
                row["lenient"] = score_with_interval(POOLED, samples, "lenient", 0, seed)["score"]
            for name, other in (("base", baseline), ("reference", reference)):
                theirs = split.get(other, {}).get(subset)
                d = difference(POOLED, samples, theirs, protocol, iterations, seed) if theirs else {}
                row.update({f"delta_vs_{name}": d.get("delta"), f"delta_vs_{name}_ci95_low": d.get("ci95_low"),
                            f"delta_vs_{name}_ci95_high": d.get("ci95_high")})
            rows.append(row)
    return pd.DataFrame(rows)


def variant_lines(table: pd.DataFrame, order: Sequence[str] = (), protocol: str = "official") -> dict[str, str]:
    """Table 2 as short text, one line per variant in ``order`` and one of uniform chance, e.g. ``"full":
    "mvbench 59.4 · videomme 48.4"``: what a page can show inline where a table needs a click."""
    if table.empty:
        return {}
    benchmarks = list(dict.fromkeys(table["benchmark"]))
    by = table.set_index(["variant", "benchmark"])
    variants = [v for v in order if v in set(table["variant"])] or list(dict.fromkeys(table["variant"]))

    def cell(variant: str, benchmark: str, column: str) -> str:
        value = by[column].get((variant, benchmark)) if (variant, benchmark) in by.index else None
        return f"{benchmark} " + ("-" if value is None or pd.isna(value) else f"{float(value):.1f}")

    chance_of = table.groupby("benchmark")["chance"].first()
    lines = {v: " · ".join(cell(v, b, protocol) for b in benchmarks) for v in variants}
    lines["chance"] = " · ".join(f"{b} " + ("-" if pd.isna(chance_of.get(b)) else f"{float(chance_of[b]):.1f}")
                                 for b in benchmarks)
    return lines


def scoreboard_metrics(table: pd.DataFrame, pooled: pd.DataFrame) -> dict[str, float]:
    """One number per cell for a tracking server: ``<variant>/<benchmark>/<protocol>`` (and ``/chance``) from
    the table, ``<variant>/pooled_<subset>/accuracy`` (and ``/chance``) from the pooled table; missing cells left
    out."""
    cells: dict[str, Any] = {}
    for row in table.to_dict("records"):
        for column in ("official", "videorft", "lenient", "chance"):
            cells[f"{row['variant']}/{row['benchmark']}/{column}"] = row.get(column)
    for row in pooled.to_dict("records"):
        for column in ("accuracy", "chance"):
            cells[f"{row['variant']}/pooled_{row['subset']}/{column}"] = row.get(column)
    return {k: float(v) for k, v in cells.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.table2", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="JSONL prediction logs whose rows carry variant and benchmark")
    parser.add_argument("--reference", default="full")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in args.logs:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    logs.setdefault((str(row["variant"]), str(row["benchmark"])), []).append(row)
    print(build_table(logs, args.reference, args.bootstrap, args.seed).to_csv(index=False))
    print(build_pooled(logs, args.reference, iterations=args.bootstrap, seed=args.seed).to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
