"""lm-eval hooks for the six videorft tasks (referenced from the YAML files beside this one).

``custom_dataset`` reads the benchmark through our registry from the paths the run passes as task metadata
(``benchmarks: {name: {questions, video_root, limit}}``); ``doc_to_text`` builds the prompt exactly as the
VideoRFT evaluation does (question, options, reasoning instruction, the problem type's answer format);
``doc_to_image`` hands the video URI to the model class, which decodes it lazily; ``process_results`` keeps
each sample's record so the two aggregations apply the benchmark's protocol rules to the whole set.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from evaluation.benchmarks import load_samples
from evaluation.lm import FAILED_PREFIX, is_failure
from evaluation.scoring import aggregate, score_samples
from training.prompts import question_text


def _dataset(name: str, **metadata: Any) -> Any:
    import datasets

    source = (metadata.get("benchmarks") or {}).get(name)
    if not source:
        raise ValueError(f"videorft_{name}: no data given; pass metadata benchmarks.{name}.questions "
                         "(python -m evaluation.run does)")
    samples = load_samples(name, source["questions"], source.get("video_root"), source.get("limit"))
    rows = [{**s.to_dict(), "extra": json.dumps(s.extra, sort_keys=True)} for s in samples]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


# one loader per task file (``custom_dataset: !function utils.<benchmark>``)
vsi_bench = partial(_dataset, "vsi_bench")
videommmu = partial(_dataset, "videommmu")
mmvu = partial(_dataset, "mmvu")
mvbench = partial(_dataset, "mvbench")
tempcompass = partial(_dataset, "tempcompass")
videomme = partial(_dataset, "videomme")


def doc_to_text(doc: dict[str, Any]) -> str:
    return question_text(doc["problem"], doc["problem_type"], doc["options"])


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [doc["video"]]


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["answer"]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    output = results[0] if results else None
    record = {k: doc[k] for k in ("benchmark", "sample_id", "video", "problem_type", "options", "answer", "category")}
    if is_failure(output):
        record.update(prediction=None, failed=True,
                      error=(output or "").removeprefix(FAILED_PREFIX) or "no output")
    else:
        record.update(prediction=output, failed=False)
    return {"videorft": record, "official": record, "failed": float(record["failed"])}


def _aggregate(records: list[dict[str, Any]], protocol: str) -> float:
    scored = score_samples(records, protocol)
    return aggregate(records[0]["benchmark"], scored, protocol) if scored else float("nan")


def aggregate_videorft(records: list[dict[str, Any]]) -> float:
    return _aggregate(records, "videorft")


def aggregate_official(records: list[dict[str, Any]]) -> float:
    return _aggregate(records, "official")
