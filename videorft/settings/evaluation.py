"""Profile section: Evaluation: the benchmarks' data, the tiny fixtures, decoding, intervals and the re-evaluation
schedule."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from videorft.settings import Strict as _Strict
from videorft.settings.world import WorldConfig


class BenchmarkSource(_Strict):
    """Where one benchmark's questions and videos are (local or s3://)."""

    questions: str  # Video-R1-eval JSON or the official release's JSON/JSONL
    video_root: str | None = None  # None: the questions file's folder
    limit: Annotated[int, Field(gt=0)] | None = None


class FixturesConfig(_Strict):
    """Benchmark fixtures generated from a held-out synthetic world (used for benchmarks without a source)."""

    world: WorldConfig = WorldConfig(seed=1001, videos=12, images=0, questions=0)
    per_benchmark: Annotated[int, Field(gt=0)] = 8


class EvaluationConfig(_Strict):
    """The benchmarks (paper 4.1; the registry is ``evaluation.benchmarks``): data, decoding, intervals and the
    re-evaluation schedule."""

    # missing ones: fixtures. The names are checked against the evaluation library's registry where the
    # library is loaded (evaluation.benchmarks.check_names), since the core imports no stage library.
    benchmarks: dict[str, BenchmarkSource] = Field(default_factory=dict)
    fixtures: FixturesConfig = FixturesConfig()
    max_new_tokens: Annotated[int, Field(gt=0)] = 1024
    batch_size: Annotated[int, Field(gt=0)] = 4
    chunk_size: Annotated[int, Field(gt=0)] = 16  # generations cached per chunk: the most an interruption loses
    backend: Literal["hf", "vllm"] = "hf"
    dtype: str = "auto"
    bootstrap: Annotated[int, Field(ge=0)] = 1000  # clustered-bootstrap iterations for errors and intervals
    # the scoreboard's check: every Table 2 interval rests on at least this many scored questions
    min_questions: Annotated[int, Field(ge=1)] = 30
    # benchmark_scores' failure_rate check warns above this share of samples whose generation failed
    max_failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    schedule: str = "0 4 * * 1"  # weekly re-evaluation (cron)
    schedule_timezone: str = "UTC"
    # the scoreboard's pooled multiple-choice table also reports these subsets and the rest: name -> a phrase
    # of the question (case-insensitive), e.g. {background: "colour is the background"}
    pooled_subsets: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> EvaluationConfig:
        fields = self.schedule.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
            raise ValueError(f"schedule {self.schedule!r} is not a five-field cron expression")
        return self
