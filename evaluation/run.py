"""``python -m evaluation.run --model ID_OR_PATH --benchmarks LIST --output DIR``: the benchmarks via lm-eval.

Builds our tasks (``evaluation/tasks``, loaded with ``TaskManager(include_path=...)``) over the benchmark data
(the profile's ``evaluation.benchmarks``, or fixtures generated from a held-out synthetic world when a
benchmark has no source), runs lm-eval's evaluator with our ``videorft`` model class, and writes to DIR:

* ``samples_<benchmark>.jsonl``: one line per question: the rescore fields (``benchmark, category,
  problem_type, prediction, answer, video``) plus the prompt, the extracted answer, both protocols' scores,
  and ``failed``/``error`` for a sample whose generation failed;
* ``scores.json``: per benchmark, both protocols' overall and per-category scores, clustered-bootstrap error
  and interval, sample and failure counts (``evaluation.scoring``), lm-eval's own aggregate metrics, and the
  run's settings;
* generations cached per chunk under ``--cache-dir`` (default: DIR/cache), so re-running the same command
  after an interruption generates only what is missing.

The ``benchmark_scores`` asset runs it (``resolve_job``) in its own process on a local launcher, or launches it
in a GPU pod through Dagster Pipes; either way it streams progress and its scores become the materialization's
metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.benchmarks import BENCHMARKS, BenchmarkDataError, check_names, check_sources
from evaluation.scoring import PROTOCOLS, sample_score, score_benchmark
from evaluation.task_files import ANSWER_MODES, VIDEO_CONTROLS, task_name
from videorft.answers import extract_prediction
from videorft.compat import make_torchvision_importable
from videorft.media import MIN_PIXELS
from videorft.pipes import pipes_session
from videorft.profile import Profile, ProfileError, load_profile, local_state_dir, resolve_frames
from videorft.storage import as_path

make_torchvision_importable()  # before transformers loads (CPU torch with PyPI's torchvision)
TASKS_DIR = Path(__file__).resolve().parent / "tasks"
# what the model sees of each video: "none" (the video), "blank" (a uniform grey of the same frames: the no-video
# control, which leaves only what the question text tells)
LOG = logging.getLogger("videorft.evaluation")


class _DeliberateCallWarnings(logging.Filter):
    """lm-eval warns on every call about two things this module does on purpose: it passes ``max_gen_toks``
    (the profile's ``evaluation.max_new_tokens`` wins over the task YAML), and its tasks load their data through
    ``custom_dataset`` (the benchmark sources travel in the TaskManager's metadata)."""

    KNOWN = ("specified through cli, these settings will update", "Custom kwargs can be passed to `--metadata`")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.KNOWN)


for _name in ("lm_eval.evaluator", "lm_eval.api.task"):
    logging.getLogger(_name).addFilter(_DeliberateCallWarnings())


def benchmark_sources(profile: Profile, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each benchmark's data, with ``data`` saying which: the profile's ``source``, or ``fixtures`` generated under
    the storage root from a held-out synthetic world (a profile without a world is refused: ``check_sources``)."""
    cfg = profile.evaluation
    missing = [n for n in check_sources(profile) if n in names]
    fixtures: dict[str, dict[str, str]] = {}
    if missing:
        from evaluation.fixtures import build_fixtures

        root = f"{profile.resolved_storage_root().rstrip('/')}/evaluation/fixtures"
        fixtures = build_fixtures(root, cfg.fixtures.world, cfg.fixtures.per_benchmark)
    out = {}
    for name in names:
        source = cfg.benchmarks.get(name)
        out[name] = ({**source.model_dump(), "data": "source"} if source is not None
                     else {**fixtures[name], "data": "fixtures"})
    return out


def _sample_log(task_samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in sorted(task_samples, key=lambda e: e["doc_id"]):
        record = dict(entry["videorft"]) if isinstance(entry.get("videorft"), dict) else {}
        doc = entry["doc"]
        prompt = entry["arguments"][0][0] if entry.get("arguments") else ""
        record.update({"prompt": prompt, "problem": doc.get("problem"), "extra": json.loads(doc.get("extra") or "{}")})
        if not record.get("failed"):
            record["extracted"] = extract_prediction(record["prediction"])
            record["scores"] = {p: sample_score(record["problem_type"], record["prediction"], record["answer"],
                                                record.get("options"), p, record["benchmark"]) for p in PROTOCOLS}
        rows.append(record)
    return rows


@contextmanager
def environment_described_once() -> Iterator[None]:
    """lm-eval's ``simple_evaluate`` describes the environment (torch's ``collect_env``: ``pip list`` and more in
    subprocesses, ~0.75 s) every time; it is one environment for every benchmark of a run: describe it once."""
    import lm_eval.evaluator as harness

    original = harness.add_env_info
    described: dict[str, Any] = {}

    def add_env_info(storage: dict[str, Any]) -> None:
        if not described:
            original(described)
        storage.update(described)

    harness.add_env_info = add_env_info
    try:
        yield
    finally:
        harness.add_env_info = original


def run_evaluation(model: str, sources: dict[str, dict[str, Any]], output: str, *, frames: int, max_pixels: int,
                   max_new_tokens: int, min_pixels: int = MIN_PIXELS, batch_size: int = 4, chunk_size: int = 16,
                   backend: str = "hf", dtype: str = "auto", bootstrap: int = 1000, cache_dir: str | None = None,
                   frame_cache_dir: str | None = None, media_cache: str | None = None,
                   model_version: str | None = None, reuse_vision: bool = True, video_control: str = "none",
                   answer_mode: str = "generate",
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``sources`` ({benchmark: {questions, video_root, limit}}); write and return scores.
    One model for all the benchmarks: a video's pixels and vision output are paid once across them.
    ``answer_mode`` "choice" scores the multiple-choice questions only, by the likeliest option text
    (``evaluation.task_files``)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from evaluation.lm import VideoLM

    out = as_path(output)  # local folder or s3://
    out.mkdir(parents=True, exist_ok=True)
    # the generation cache stays local (next to a local output, so re-running the same command resumes);
    # decoded frames go to the shared media cache (keyed by frame spec, reused across checkpoints)
    scratch = Path(output) if "://" not in output else local_state_dir() / "evaluation"
    lm = VideoLM(pretrained=model, frames=frames, max_pixels=max_pixels, min_pixels=min_pixels,
                 max_new_tokens=max_new_tokens, batch_size=batch_size, chunk_size=chunk_size, backend=backend,
                 dtype=dtype, cache_dir=cache_dir or str(scratch / "cache"), frame_cache_dir=frame_cache_dir,
                 media_cache=media_cache, model_version=model_version, reuse_vision=reuse_vision,
                 video_control=video_control)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"benchmarks": sources})
    result: dict[str, Any] = {"model": model, "model_key": lm.model_key, "benchmarks": {},
                              "settings": {"frames": frames, "max_pixels": max_pixels, "min_pixels": min_pixels,
                                           "max_new_tokens": max_new_tokens,
                                           "batch_size": batch_size, "chunk_size": chunk_size, "backend": backend,
                                           "greedy": True, "video_control": video_control,
                                           "answer_mode": answer_mode}}
    with environment_described_once():
        for name in sources:  # one benchmark at a time: its progress and its result are reported as it finishes
            started = time.perf_counter()
            lm.progress = (lambda done, total, n=name: progress(n, done, total)) if progress else None
            hits, misses = lm.cache.hits, lm.cache.misses
            generated = lm.generated
            task = task_name(name, answer_mode)
            generation = {"gen_kwargs": {"max_gen_toks": max_new_tokens}} if answer_mode == "generate" else {}
            evaluated = simple_evaluate(model=lm, tasks=[task], task_manager=manager, log_samples=True,
                                        bootstrap_iters=0, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                        **generation)
            samples = _sample_log(evaluated["samples"][task])
            log_path = out / f"samples_{name}.jsonl"
            log_path.write_text("".join(json.dumps(s, default=str) + "\n" for s in samples))
            scores = score_benchmark(name, samples, iterations=bootstrap)
            harness = {k.split(",")[0]: v for k, v in evaluated["results"][task].items()
                       if k.split(",")[0] in (*PROTOCOLS, "failed") and isinstance(v, int | float)}
            result["benchmarks"][name] = {
                **scores, "lm_eval": harness, "paper_7b": BENCHMARKS[name].paper_7b, "samples_log": str(log_path),
                "seconds": time.perf_counter() - started, "generated": lm.generated - generated,
                "chunks_cached": lm.cache.hits - hits, "chunks_generated": lm.cache.misses - misses,
                "source": sources[name], "data": sources[name].get("data", "source"),
            }
    # media processed and encoded by the vision tower, and how many times each was reused instead
    result["vision_reuse"] = dict(lm.reuse.stats) if lm.reuse is not None else None
    (out / "scores.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.run", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="checkpoint folder, hub id, tiny-pretrained (the shipped base) or tiny-random")
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS),
                        help=f"comma-separated (default: all {len(BENCHMARKS)})")
    parser.add_argument("--output", required=True, help="folder for scores.json and the per-sample logs")
    parser.add_argument("--profile", help="profile name or file (default: $VIDEORFT_PROFILE or tiny)")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=QUESTIONS[@VIDEO_ROOT]",
                        help="a benchmark's question file (and video root), overriding the profile")
    parser.add_argument("--limit", type=int, help="at most N questions per benchmark")
    parser.add_argument("--frames", type=int, help="frames per video (default: the profile's video.eval)")
    parser.add_argument("--max-pixels", type=int, help="pixel budget per frame (default: video.eval)")
    parser.add_argument("--min-pixels", type=int, help="smallest frame in pixels (default: video.eval)")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--backend", choices=["hf", "vllm"])
    parser.add_argument("--cache-dir", help="chunk cache (default: OUTPUT/cache); reuse it to resume")
    parser.add_argument("--model-version", help="identity of the checkpoint for the cache key (default: "
                                                "derived from the folder's files)")
    parser.add_argument("--bootstrap", type=int)
    parser.add_argument("--video-control", choices=VIDEO_CONTROLS, default="none",
                        help="blank: every frame a uniform grey (the no-video control: what the answers owe the video)")
    parser.add_argument("--answer-mode", choices=sorted(ANSWER_MODES), default="generate",
                        help="choice: the multiple-choice questions only, answered by the likeliest option text "
                             "(how a base model is scored on what it perceives, not on whether it writes a letter)")
    return parser


def _sources(profile: Profile, names: list[str], data: list[str], limit: int | None) -> dict[str, dict[str, Any]]:
    given = {}
    for item in data:
        name, _, rest = item.partition("=")
        questions, _, root = rest.partition("@")
        if name not in BENCHMARKS or not questions:
            raise BenchmarkDataError(f"--data {item!r}: expected NAME=QUESTIONS[@VIDEO_ROOT] with NAME one of "
                                     f"{', '.join(BENCHMARKS)}")
        given[name] = {"questions": questions, "video_root": root or None, "limit": None}
    rest = [n for n in names if n not in given]
    sources = {**benchmark_sources(profile, rest), **given} if rest else given
    if limit:
        for source in sources.values():
            source["limit"] = limit
    return {n: sources[n] for n in names}


@dataclass(frozen=True)
class EvaluationJob:
    """One evaluation a command line names, resolved (profile, sources, frames) and ready to run: ``main``
    runs it in a child under Pipes, and the ``benchmark_scores`` asset in its own process on a local launcher."""

    model: str
    sources: dict[str, dict[str, Any]]
    output: str
    options: dict[str, Any]

    def run(self, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        return run_evaluation(self.model, self.sources, self.output, progress=progress, **self.options)


def resolve_job(argv: list[str]) -> EvaluationJob:
    """The job ``argv`` names; raises ``ProfileError`` / ``BenchmarkDataError`` with the reason."""
    args = build_parser().parse_args(argv)
    profile = load_profile(args.profile)
    names = check_names(n.strip() for n in args.benchmarks.split(",") if n.strip())
    sources = _sources(profile, names, args.data, args.limit)
    video = resolve_frames(profile.video.eval, f"profile {profile.name} video.eval", frames=args.frames,
                           max_pixels=args.max_pixels, min_pixels=args.min_pixels)
    cfg = profile.evaluation
    return EvaluationJob(args.model, sources, args.output, {
        "frames": video.frames, "max_pixels": video.max_pixels, "min_pixels": video.min_pixels,
        "media_cache": profile.media_cache_dir(), "max_new_tokens": args.max_new_tokens or cfg.max_new_tokens,
        "batch_size": args.batch_size or cfg.batch_size, "chunk_size": args.chunk_size or cfg.chunk_size,
        "backend": args.backend or cfg.backend, "dtype": cfg.dtype,
        "bootstrap": cfg.bootstrap if args.bootstrap is None else args.bootstrap, "cache_dir": args.cache_dir,
        "model_version": args.model_version, "video_control": args.video_control, "answer_mode": args.answer_mode})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        job = resolve_job(sys.argv[1:] if argv is None else argv)
    except (ProfileError, BenchmarkDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pipes_session() as pipes:
        def progress(name: str, done: int, total: int) -> None:
            message = f"{name}: {done}/{total} generated or cached"
            (pipes.log if pipes is not None else LOG).info(message)

        try:
            result = job.run(progress)
        except BenchmarkDataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if pipes is not None:
            pipes.report_custom_message({"kind": "result", "result": result})
        summary = {name: {p: b[p]["overall"] for p in PROTOCOLS} | {"failed": b["failed"]}
                   for name, b in result["benchmarks"].items()}
        if pipes is None:  # under Dagster the result is the materialization; the terminal stays quiet
            print(json.dumps({"output": str(as_path(job.output)), "scores": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
