"""What the model cards report and ``bench/pretrained_models.py`` re-measures: the base on the benchmarks'
held-out fixtures at their natural template mix, with and without its video, against chance and the text-only
baseline (``evaluation.controls``), through the real evaluation (``evaluation.run``: lm-eval, both protocols),
in both answer modes: the reply it generates, and the option it finds likeliest (``choice``: what it perceives,
whether or not it would write that option)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.benchmarks import BENCHMARKS
from evaluation.controls import ALL_MC, control_table
from evaluation.run import benchmark_sources, run_evaluation
from videorft.profile import Profile


def read_samples(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.glob("samples_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate_fixtures(model: str, profile: Profile, work: Path, video_control: str = "none",
                      answer_mode: str = "generate") -> list[dict[str, Any]]:
    """Every benchmark's fixture questions answered by ``model`` as the graph's ``benchmark_scores`` would (in
    ``answer_mode`` "choice": the multiple-choice ones, by the likeliest option)."""
    video, cfg = profile.video.eval, profile.evaluation
    out = work / answer_mode / video_control
    run_evaluation(model, benchmark_sources(profile, list(BENCHMARKS)), str(out), frames=video.frames,
                   max_pixels=video.max_pixels, min_pixels=video.min_pixels, max_new_tokens=cfg.max_new_tokens,
                   batch_size=cfg.batch_size, chunk_size=cfg.chunk_size, media_cache=profile.media_cache_dir(),
                   bootstrap=0, video_control=video_control, answer_mode=answer_mode)
    return read_samples(out)


def fixture_controls(model: str, profile: Profile, work: Path, iterations: int = 1000,
                     answer_mode: str = "generate") -> pd.DataFrame:
    """The control table (``evaluation.controls.control_table``) of ``model`` on the fixtures, blank frames too;
    the text-only baseline chosen on another world of the fixtures' generator (``baseline_questions``)."""
    from evaluation.fixtures import baseline_questions

    return control_table(evaluate_fixtures(model, profile, work, "none", answer_mode),
                         evaluate_fixtures(model, profile, work, "blank", answer_mode), iterations,
                         fit=baseline_questions(profile.evaluation.fixtures.world))


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """The card's view of a control table: the pooled multiple-choice row and every template's accuracy."""
    pooled = table.set_index("group").loc[ALL_MC].to_dict()
    return {"pooled_multiple_choice": {k: v for k, v in pooled.items() if not pd.isna(v)},
            "per_template": {row["group"]: {k: row[k] for k in ("questions", "chance", "text_only",
                                                                "text_only_in_sample", "accuracy", "blank")
                                            if k in row and not pd.isna(row[k])}
                             for row in table.to_dict("records") if row["group"] != ALL_MC}}
