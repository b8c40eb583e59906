"""Benchmark fixtures from the synthetic world, one question file per benchmark in its own format.

The tiny profile has no benchmark downloads, so each benchmark of the registry gets questions generated from a
held-out synthetic world (its own seed: no video is shared with the training sets): multiple-choice
questions for every benchmark, assigned to that benchmark's categories, plus VSI-Bench-style numerical
questions (counts, times, speeds) as ``regression`` rows scored by MRA. VSI-Bench and VideoMME are written in
their official release formats (``question_type``/``ground_truth``; ``duration``/``domain``/``answer``) so the
registry's official readers run too; the others in the Video-R1-eval format. A registry entry's ``fixture_format``
picks its writer in ``FIXTURE_FORMATS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from upath import UPath

from evaluation.benchmarks import BENCHMARKS, VIDEOMME_DOMAINS, VSI_NUMERICAL, VSI_TASKS, Benchmark
from synthetic.qa import candidate_questions
from synthetic.world import build_scripts, build_world
from videorft.profile import WorldConfig
from videorft.storage import as_path

VSI_MC = tuple(t for t in VSI_TASKS if t not in VSI_NUMERICAL)
# the text-only baseline's world: the fixtures' generator at this far a seed (no seed a profile uses is near)
BASELINE_SEED_OFFSET = 7_919_000
BASELINE_VIDEOS = 1000


def _video_questions(world_root: Path | UPath, seed: int) -> list[dict[str, Any]]:
    out = []
    for script_path in sorted((world_root / "videos").glob("v*.json")):
        script = json.loads(script_path.read_text())
        rng = np.random.default_rng([seed, int(script["id"][1:])])
        for q in candidate_questions(script, rng):
            out.append({**q, "path": f"videos/{script['id']}.mp4", "video_id": script["id"]})
    return out


def _vr1_row(i: int, q: dict[str, Any], category_field: str, category: str, problem_type: str) -> dict[str, Any]:
    return {"problem_id": i, "problem": q["problem"], "data_type": "video", "problem_type": problem_type,
            "options": q["options"], "process": "", "solution": q["solution"], "path": q["path"],
            "data_source": "synthetic", category_field: category}


def _answer(q: dict[str, Any]) -> str:
    return q["solution"].removeprefix("<answer>").removesuffix("</answer>")


def _multiple_choice_order(mc: list[dict[str, Any]], need: int, shares: dict[str, float],
                           rng: np.random.Generator) -> list[dict[str, Any]]:
    """The multiple-choice questions in the order the benchmarks take them: a random order, except that the first
    ``need`` hold ``round(need * share)`` questions of each template in ``shares`` (the world's
    ``template_shares``), spread over the benchmarks."""
    order = [mc[int(j)] for j in rng.permutation(len(mc))]
    if not shares:
        return order  # the fixtures of a world without shares, unchanged since before the knob
    reserved: list[dict[str, Any]] = []
    for name, share in sorted(shares.items()):
        of_template = [q for q in order if q["meta"]["template"] == name]
        want = round(need * share)
        if len(of_template) < want:
            raise ValueError(f"the benchmark world has {len(of_template)} {name} questions; template_shares asks for "
                             f"{want}: raise evaluation.fixtures.world.videos")
        reserved += of_template[:want]
    taken = {id(q) for q in reserved}
    rest = [q for q in order if id(q) not in taken]
    head = reserved + rest[:need - len(reserved)]
    return [head[int(j)] for j in rng.permutation(len(head))] + rest[need - len(reserved):]


def _vsi_rows(picks: list[dict[str, Any]], bench: Benchmark, index: int) -> list[dict[str, Any]]:
    """VSI-Bench's release format (``question_type``, ``ground_truth``); tasks assigned in turn by kind."""
    rows = []
    for i, q in enumerate(picks):
        numerical = q["problem_type"] != "multiple choice"
        tasks = VSI_NUMERICAL if numerical else VSI_MC
        rows.append({"id": i, "dataset": "videos", "scene_name": q["video_id"], "question_type": tasks[i % len(tasks)],
                     "question": q["problem"], "options": [] if numerical else q["options"],
                     "ground_truth": _answer(q)})
    return rows


def _videomme_rows(picks: list[dict[str, Any]], bench: Benchmark, index: int) -> list[dict[str, Any]]:
    """VideoMME's release format (``videoID`` under ``videos/``, ``duration``, ``domain``, ``answer``)."""
    return [{"video_id": f"{i:03d}", "videoID": q["video_id"], "duration": bench.categories[i % 3],
             "domain": VIDEOMME_DOMAINS[i % len(VIDEOMME_DOMAINS)], "sub_category": "synthetic",
             "question_id": f"{q['video_id']}-{i}", "task_type": q["category"], "question": q["problem"],
             "options": q["options"], "answer": _answer(q)} for i, q in enumerate(picks)]


def _video_r1_rows(picks: list[dict[str, Any]], bench: Benchmark, index: int) -> list[dict[str, Any]]:
    """The Video-R1-eval format, categories assigned in turn (offset by the benchmark's place in the registry)."""
    field = bench.category_fields[0]
    return [_vr1_row(i, q, field, bench.categories[(i + index) % len(bench.categories)], "multiple choice")
            for i, q in enumerate(picks)]


@dataclass(frozen=True)
class FixtureFormat:
    """How a benchmark's generated questions are written: its rows, where its paths are rooted (a folder under
    the world, or the world itself), and whether half its questions are numerical."""

    rows: Callable[[list[dict[str, Any]], Benchmark, int], list[dict[str, Any]]]
    video_folder: str = ""
    numerical: bool = False


# a registry entry's ``fixture_format`` names one of these
FIXTURE_FORMATS: dict[str, FixtureFormat] = {
    "video_r1": FixtureFormat(_video_r1_rows),
    "vsi_release": FixtureFormat(_vsi_rows, numerical=True),
    "videomme_release": FixtureFormat(_videomme_rows, video_folder="videos"),
}


def build_fixtures(root: str, world: WorldConfig, per_benchmark: int) -> dict[str, dict[str, str]]:
    """Write ``<root>/<benchmark>.json`` for every benchmark over a world under ``<root>/world``;
    returns ``{benchmark: {"questions": uri, "video_root": uri}}``. Deterministic for a given config."""
    base = as_path(root)
    manifest = build_world(world, str(base / "world"))
    world_root = as_path(manifest.root)  # an s3:// storage root too: the scripts are read where they were written
    questions = _video_questions(world_root, world.seed)
    mc = [q for q in questions if q["problem_type"] == "multiple choice"]
    numeric = [q for q in questions if q["problem_type"] in ("numerical", "regression")]
    if not mc or not numeric:
        raise ValueError("the benchmark world produced no multiple-choice or no numerical questions; add videos")
    rng = np.random.default_rng([world.seed, 99])
    n_num = per_benchmark // 2  # a benchmark with numerical questions (VSI-Bench): half of them
    numerical = sum(FIXTURE_FORMATS[b.fixture_format].numerical for b in BENCHMARKS.values())
    need_mc, n_num_all = per_benchmark * len(BENCHMARKS) - n_num * numerical, n_num * numerical
    if len(mc) < need_mc or len(numeric) < n_num_all:
        raise ValueError(f"the benchmark world has {len(mc)} multiple-choice and {len(numeric)} numerical questions; "
                         f"{per_benchmark} per benchmark, no question in two benchmarks, needs {need_mc} and "
                         f"{n_num_all}: "
                         "raise evaluation.fixtures.world.videos")
    mc_order = _multiple_choice_order(mc, need_mc, world.template_shares, rng)  # each in one benchmark only
    numeric_order = [numeric[int(j)] for j in rng.permutation(len(numeric))]
    sources: dict[str, dict[str, str]] = {}
    for b_index, (name, bench) in enumerate(BENCHMARKS.items()):
        fmt = FIXTURE_FORMATS[bench.fixture_format]
        take = per_benchmark - n_num if fmt.numerical else per_benchmark
        picks, mc_order = mc_order[:take], mc_order[take:]
        if fmt.numerical:
            picks, numeric_order = picks + numeric_order[:n_num], numeric_order[n_num:]
        target = base / f"{name}.json"
        target.write_text(json.dumps(fmt.rows(picks, bench, b_index), indent=1))
        video_root = base / "world" / fmt.video_folder if fmt.video_folder else base / "world"
        sources[name] = {"questions": str(target), "video_root": str(video_root)}
    return sources


def baseline_questions(world: WorldConfig, videos: int = BASELINE_VIDEOS) -> list[dict[str, Any]]:
    """Every question of ``videos`` scenes from the fixtures' generator at another seed, as evaluation samples
    (problem, problem_type, options, answer, video): what the text-only baseline chooses its fixed answers on
    (``evaluation.controls``), as a text-only model would learn them from training questions. Scripts only:
    nothing is rendered (about 1 s per 1,000 scenes)."""
    cfg = world.model_copy(update={"seed": world.seed + BASELINE_SEED_OFFSET, "videos": videos, "images": 0})
    scripts, _ = build_scripts(cfg)
    out = []
    for script in scripts:
        rng = np.random.default_rng([cfg.seed, int(script["id"][1:])])
        out += [{"problem": q["problem"], "problem_type": q["problem_type"], "options": q["options"],
                 "answer": _answer(q), "video": f"baseline/{script['id']}", "category": q["category"]}
                for q in candidate_questions(script, rng)]
    return out
