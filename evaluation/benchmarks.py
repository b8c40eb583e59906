"""The benchmark registry: the one list of benchmark names, what each one is, its categories, and how its
question files are read. The profile's ``evaluation.benchmarks``, the Dagster partitions and the lm-eval task
files (``evaluation.task_files``) all follow it.

Every benchmark is read from the Video-R1-eval style JSON the paper's script uses (a list of rows with
``problem_id, problem, data_type, problem_type, options, solution, path`` and the benchmark's category
field), or, where it differs, from the official release's format (VSI-Bench's ``question_type`` /
``ground_truth`` rows, VideoMME's ``duration`` / ``domain`` / ``answer`` rows, MVBench's per-task
``candidates`` rows). Media paths resolve against a video root, local or ``s3://``. The result is a list of
``Sample``: one shape for the model adapter, the tasks and the scorer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.protocols import (
    OfficialRule,
    mmvu_official,
    multiple_choice_only,
    mvbench_official,
    tempcompass_official,
    videomme_official,
    videommmu_official,
    vsi_bench_official,
)
from videorft.answers import extract_prediction, option_letter
from videorft.profile import Profile, ProfileError
from videorft.schema import normalize_options
from videorft.storage import as_path


@dataclass(frozen=True)
class Sample:
    benchmark: str
    sample_id: str
    video: str  # resolved URI (local path or s3://)
    problem: str
    problem_type: str  # "multiple choice" | "numerical" | "regression" | ...
    options: list[str]
    answer: str  # the ground truth: an option letter or a value
    category: str
    extra: dict[str, Any] = field(default_factory=dict)  # duration, domain, track, dimension, difficulty

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    categories: tuple[str, ...]
    category_fields: tuple[str, ...]  # where the category is in a Video-R1-eval row, first present wins
    paper_7b: float  # VideoRFT-7B's reported score (paper Table 1)
    official: OfficialRule  # one sample's score under lmms-eval's task for it (evaluation.protocols)
    official_reader: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    description: str = ""
    # how per-sample scores make the benchmark's score (a key of evaluation.scoring.AGGREGATES)
    aggregate: str = "mean"
    # how generated fixture questions are written (a key of evaluation.fixtures.FIXTURE_FORMATS)
    fixture_format: str = "video_r1"


VSI_TASKS = ("object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
             "object_rel_distance", "object_rel_direction_easy", "object_rel_direction_medium",
             "object_rel_direction_hard", "route_planning", "obj_appearance_order")
VSI_NUMERICAL = VSI_TASKS[:4]
MVBENCH_TASKS = ("action_sequence", "action_prediction", "action_antonym", "fine_grained_action",
                 "unexpected_action", "object_existence", "object_interaction", "object_shuffle",
                 "moving_direction", "action_localization", "scene_transition", "action_count", "moving_count",
                 "moving_attribute", "state_change", "fine_grained_pose", "character_order", "egocentric_navigation",
                 "episodic_reasoning", "counterfactual_inference")
VIDEOMME_DURATIONS = ("short", "medium", "long")
VIDEOMME_DOMAINS = ("Knowledge", "Film & Television", "Sports Competition", "Artistic Performance", "Life Record",
                    "Multilingual")
VIDEOMMMU_TRACKS = ("Perception", "Comprehension", "Adaptation")
TEMPCOMPASS_DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
MMVU_DISCIPLINES = ("Science", "Healthcare", "Humanities & Social Sciences", "Engineering")


def _vsi_official(row: dict[str, Any]) -> dict[str, Any]:
    numerical = row["question_type"] in VSI_NUMERICAL
    options = normalize_options(list(row.get("options") or []))
    return {"problem_id": row["id"], "problem": row["question"], "path": f"{row['dataset']}/{row['scene_name']}.mp4",
            "problem_type": "regression" if numerical else "multiple choice", "options": [] if numerical else options,
            "solution": str(row["ground_truth"]), "category": row["question_type"]}


def _videomme_official(row: dict[str, Any]) -> dict[str, Any]:
    return {"problem_id": row["question_id"], "problem": row["question"], "path": f"{row['videoID']}.mp4",
            "problem_type": "multiple choice", "options": normalize_options(list(row["options"])),
            "solution": row["answer"], "category": row["duration"],
            "extra": {"domain": row["domain"], "sub_category": row.get("sub_category", ""),
                      "task_type": row.get("task_type", "")}}


def _mvbench_official(row: dict[str, Any]) -> dict[str, Any]:
    options = normalize_options(list(row["candidates"]))
    return {"problem_id": row.get("id", row["video"] + "|" + row["question"]), "problem": row["question"],
            "path": row["video"], "problem_type": "multiple choice", "options": options,
            "solution": option_letter(row["answer"], options) or row["answer"], "category": row["task"]}


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("vsi_bench", "VSI-Bench", VSI_TASKS, ("question_type", "original_question_type", "category"), 36.8,
              vsi_bench_official, _vsi_official,
              "visual-spatial intelligence: 8 tasks, 4 of them numerical (scored by MRA)",
              aggregate="vsi_tasks", fixture_format="vsi_release"),
    Benchmark("videommmu", "VideoMMMU", VIDEOMMMU_TRACKS, ("track", "category"), 51.1, videommmu_official,
              description="knowledge acquisition from lecture videos: perception, comprehension, adaptation"),
    Benchmark("mmvu", "MMVU (multiple-choice)", MMVU_DISCIPLINES, ("discipline", "category"), 68.5, mmvu_official,
              description="expert-level video understanding, the multiple-choice subset of the validation split"),
    Benchmark("mvbench", "MVBench", MVBENCH_TASKS, ("task", "category"), 62.1,
              multiple_choice_only(mvbench_official), _mvbench_official,
              "20 temporal tasks, 200 questions each", aggregate="mvbench_tasks"),
    Benchmark("tempcompass", "TempCompass", TEMPCOMPASS_DIMENSIONS, ("dimension", "category"), 73.7,
              multiple_choice_only(tempcompass_official),
              description="temporal perception: action, speed, direction, order, attribute change"),
    Benchmark("videomme", "VideoMME (no subtitles)", VIDEOMME_DURATIONS, ("duration", "category"), 59.8,
              multiple_choice_only(videomme_official), _videomme_official,
              "general video understanding by duration (short/medium/long) and domain",
              fixture_format="videomme_release"),
)}


class BenchmarkDataError(ValueError):
    pass


BENCHMARK_NAMES: tuple[str, ...] = tuple(BENCHMARKS)


def check_names(names: Iterable[str], where: str = "benchmarks") -> list[str]:
    """``names`` as a list if every one is registered; else an error naming the unknown ones and the known."""
    names = list(names)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise BenchmarkDataError(f"{where}: unknown benchmarks {unknown}; known: {', '.join(BENCHMARKS)}")
    return names


def check_sources(profile: Profile) -> list[str]:
    """The benchmarks ``profile`` evaluates on generated fixtures: those without ``evaluation.benchmarks.<name>``.
    Only a profile with a synthetic world (``world``) may have any; any other profile is refused, naming the
    benchmark and the key, so a real run never scores stand-in data without saying so."""
    check_names(profile.evaluation.benchmarks, f"profile {profile.name}: evaluation.benchmarks")
    missing = [n for n in BENCHMARKS if n not in profile.evaluation.benchmarks]
    if missing and profile.world is None:
        keys = ", ".join(f"evaluation.benchmarks.{n}" for n in missing)
        raise ProfileError(
            f"profile {profile.name}: {keys} missing. Only a profile with a synthetic world may evaluate on "
            f"generated fixtures, and this one has no 'world' section: give each benchmark its data, e.g. "
            f"evaluation.benchmarks.{missing[0]}: {{questions: s3://.../eval_{missing[0]}.json, video_root: "
            "s3://...}")
    return missing


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise BenchmarkDataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def _rows(uri: str) -> list[dict[str, Any]]:
    text = as_path(uri).read_text()
    if uri.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else list(data.get("data") or data.get("questions") or [])


def _is_official(bench: Benchmark, row: dict[str, Any]) -> bool:
    return bench.official_reader is not None and "problem" not in row


def load_samples(name: str, questions: str, video_root: str | None = None, limit: int | None = None) -> list[Sample]:
    """The benchmark's questions from ``questions`` (JSON or JSONL; Video-R1-eval or official format)."""
    bench = benchmark(name)
    try:
        rows = _rows(questions)
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchmarkDataError(f"{name}: cannot read {questions}: {exc}") from exc
    root = video_root if video_root is not None else questions.rsplit("/", 1)[0]
    samples = []
    for n, raw in enumerate(rows[:limit] if limit else rows):
        try:
            row = bench.official_reader(raw) if _is_official(bench, raw) else raw
            category = row.get("category") or next((str(row[f]) for f in bench.category_fields if row.get(f)), "")
            path = str(row["path"])
            video = path if "://" in path or path.startswith("/") else f"{root.rstrip('/')}/{path.removeprefix('./')}"
            samples.append(Sample(
                benchmark=name, sample_id=f"{name}/{row.get('problem_id', n)}", video=video,
                problem=str(row["problem"]), problem_type=str(row["problem_type"]),
                options=list(row.get("options") or []), answer=extract_prediction(str(row["solution"])),
                category=str(category),
                extra={**{k: raw[k] for k in ("duration", "domain", "track", "dimension", "discipline")
                          if k in raw}, **row.get("extra", {})}))
        except KeyError as exc:
            raise BenchmarkDataError(f"{name}: {questions} row {n} has no {exc.args[0]!r} field") from exc
    unknown = sorted({s.category for s in samples} - set(bench.categories))
    if unknown:
        raise BenchmarkDataError(f"{name}: categories {unknown} are not {bench.title}'s "
                                 f"({', '.join(bench.categories)})")
    return samples
