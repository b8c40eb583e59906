"""Evaluation: lm-eval end to end on the fixtures with the tiny model, resume after an interruption, failed
samples, the official-format readers, and the schedule and sensor (Dagster's test helpers)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from evaluation.benchmarks import BENCHMARKS, BenchmarkDataError, load_samples
from evaluation.fixtures import build_fixtures
from evaluation.rescore import read_log
from evaluation.run import run_evaluation
from evaluation.scoring import score_log
from videorft.profile import WorldConfig, load_profile

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "small-profile.yaml"
SETTINGS = {"frames": 4, "max_pixels": 12544, "max_new_tokens": 8, "batch_size": 2, "chunk_size": 2, "bootstrap": 20}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("bench")
    return build_fixtures(str(root), WorldConfig(seed=1007, videos=6, images=0, questions=0), per_benchmark=4)


def test_fixtures_cover_every_benchmark_in_its_format_with_vsi_numerical_questions(fixtures):
    assert set(fixtures) == set(BENCHMARKS)
    for name, source in fixtures.items():
        samples = load_samples(name, source["questions"], source["video_root"])
        assert len(samples) == 4 and all(Path(s.video).exists() for s in samples), name
        assert {s.category for s in samples} <= set(BENCHMARKS[name].categories)
    vsi = json.loads(Path(fixtures["vsi_bench"]["questions"]).read_text())
    assert "ground_truth" in vsi[0] and "question_type" in vsi[0]  # VSI-Bench's official format
    assert {s.problem_type for s in load_samples("vsi_bench", fixtures["vsi_bench"]["questions"],
                                                 fixtures["vsi_bench"]["video_root"])} == {"multiple choice",
                                                                                           "regression"}
    assert "duration" in json.loads(Path(fixtures["videomme"]["questions"]).read_text())[0]
    # no question sits in two benchmarks: pooling them counts each once
    seen = [(s.video, s.problem, s.answer) for name, src in fixtures.items()
            for s in load_samples(name, src["questions"], src["video_root"])]
    assert len(seen) == len(set(seen))


def test_fixtures_refuse_a_world_too_small_for_disjoint_benchmarks(tmp_path):
    with pytest.raises(ValueError, match=r"raise evaluation\.fixtures\.world\.videos"):
        build_fixtures(str(tmp_path), WorldConfig(seed=1007, videos=2, images=0, questions=0), per_benchmark=40)


def test_fixture_template_shares_set_the_share_of_pooled_multiple_choice_questions(tmp_path):
    world = WorldConfig(seed=1007, videos=16, images=0, questions=0, template_shares={"background_colour": 0.5})
    sources = build_fixtures(str(tmp_path / "shared"), world, per_benchmark=4)
    mc = [s for name, src in sources.items() for s in load_samples(name, src["questions"], src["video_root"])
          if s.problem_type == "multiple choice"]
    assert len(mc) == 22  # 6 benchmarks x 4, less VSI-Bench's 2 numerical
    assert sum("background" in s.problem for s in mc) == 11
    with pytest.raises(ValueError, match=r"background_colour questions; template_shares asks for"):
        build_fixtures(str(tmp_path / "too-few"), world.model_copy(update={"videos": 6}), per_benchmark=4)


def test_official_mvbench_rows_map_answer_text_to_the_letter(tmp_path):
    rows = [{"video": "a.mp4", "question": "What happens?", "candidates": ["sits", "runs", "jumps"],
             "answer": "runs", "task": "action_sequence"}]
    (tmp_path / "mv.json").write_text(json.dumps(rows))
    [sample] = load_samples("mvbench", str(tmp_path / "mv.json"), "s3://bucket/videos")
    assert sample.answer == "B" and sample.options == ["A. sits", "B. runs", "C. jumps"]
    assert sample.video == "s3://bucket/videos/a.mp4" and sample.category == "action_sequence"
    rows[0]["task"] = "not_a_task"
    (tmp_path / "mv.json").write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match="not_a_task"):
        load_samples("mvbench", str(tmp_path / "mv.json"))


def test_lm_eval_end_to_end_on_all_six_benchmarks_and_rescore_agrees(fixtures, tmp_path):
    out = tmp_path / "run"
    result = run_evaluation("tiny-random", fixtures, str(out), **SETTINGS)
    assert set(result["benchmarks"]) == set(BENCHMARKS)
    for name, score in result["benchmarks"].items():
        assert score["samples"] == 4 and score["failed"] == 0
        for protocol in ("videorft", "official"):
            assert 0.0 <= score[protocol]["overall"] <= 1.0
            assert score["lm_eval"][protocol] == pytest.approx(score[protocol]["overall"])  # the harness agrees
        log = read_log(str(out / f"samples_{name}.jsonl"))
        assert all(r["prompt"].endswith("</answer> tags.") and "extracted" in r and "scores" in r for r in log)
        rescored = score_log(log, iterations=20)[name]
        assert rescored["official"]["overall"] == score["official"]["overall"]
        assert rescored["videorft"]["categories"] == score["videorft"]["categories"]
    assert json.loads((out / "scores.json").read_text())["settings"]["greedy"] is True


@pytest.fixture(scope="module")
def talkative_model(tmp_path_factory) -> str:
    """tiny-random with its language weights scaled up: greedy text that depends on the question and the video
    (the plain random model repeats one token whatever it is asked, which would make any two runs agree)."""
    import torch

    from training.model import load_model_and_processor

    model, processor = load_model_and_processor("tiny-random")
    with torch.no_grad():
        for weight in model.model.language_model.parameters():
            if weight.dim() == 2:
                weight.mul_(8)
    folder = tmp_path_factory.mktemp("talkative")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def test_every_answer_is_the_same_with_and_without_reusing_a_videos_pixels_vision_output_and_prefill(
        fixtures, talkative_model, tmp_path):
    sources = {name: fixtures[name] for name in ("vsi_bench", "mvbench")}
    settings = {**SETTINGS, "chunk_size": 4, "batch_size": 3, "max_new_tokens": 24}
    reused = run_evaluation(talkative_model, sources, str(tmp_path / "reuse"), **settings)
    plain = run_evaluation(talkative_model, sources, str(tmp_path / "plain"), reuse_vision=False, **settings)
    videos, predictions = set(), []
    for name in sources:
        a, b = (read_log(str(tmp_path / run / f"samples_{name}.jsonl")) for run in ("reuse", "plain"))
        assert [r["prediction"] for r in a] == [r["prediction"] for r in b] and len(a) == 4
        videos |= {r["video"] for r in a}
        predictions += [r["prediction"] for r in a]
    assert len(set(predictions)) > 4  # the answers differ by question: agreeing means something
    stats = reused["vision_reuse"]
    assert plain["vision_reuse"] is None
    # each video processed, encoded and prefilled once; every other question on it reused all three
    assert stats["encoded"] == stats["processed"] == stats["heads"] == len(videos)
    assert stats["heads"] + stats["heads_reused"] == 8


def test_a_batch_over_two_videos_generates_from_one_prefill_per_video_what_each_question_would_alone(
        talkative_model):
    import numpy as np
    import torch

    from evaluation.vision_reuse import VisionReuse
    from training.model import load_model_and_processor
    from videorft.frames import media_part

    model, processor = load_model_and_processor(talkative_model)
    processor.tokenizer.padding_side = "left"
    model.eval()
    rng = np.random.default_rng(0)
    # two sizes: two head lengths, so heads are padded as well as questions
    wide, small = ((rng.random(shape) * 255).astype(np.uint8) for shape in ((4, 112, 112, 3), (4, 56, 84, 3)))
    batch = [(wide, "What colour is the background?"), (small, "How many circles are there in the video, in all?"),
             (wide, "Which shape touches the left edge first, and when?"), (wide, "Why?")]

    def inputs(rows: list) -> object:
        convs = [[{"role": "user", "content": ([media_part("video", v)] if v is not None else [])
                   + [{"type": "text", "text": q}]}] for v, q in rows]
        return processor.apply_chat_template(convs, tokenize=True, return_dict=True, add_generation_prompt=True,
                                             return_tensors="pt", processor_kwargs={"padding": True})

    greedy = {"max_new_tokens": 16, "do_sample": False}
    pad = processor.tokenizer.pad_token_id
    alone = []
    for row in batch:
        one = inputs([row])
        with torch.inference_mode():
            alone.append([t for t in model.generate(**one, **greedy)[0, one["input_ids"].shape[1]:].tolist()
                          if t != pad])
    assert len({tuple(a) for a in alone}) == 4  # the answers differ: agreeing means something
    reuse = VisionReuse()
    for _ in range(2):  # the second time every head is a stored one
        shared = reuse.generate_on_heads(model, inputs(batch), pad, **greedy)
        assert [[t for t in row.tolist() if t != pad] for row in shared] == alone
    assert reuse.stats["heads"] == 2 and reuse.stats["heads_reused"] == 6
    # a prompt without a medium has no head: the caller generates the batch the plain way
    assert reuse.generate_on_heads(model, inputs([(None, "Why?"), batch[0]]), pad, **greedy) is None


def test_a_video_shared_by_two_benchmarks_is_encoded_once_in_the_process(fixtures, tmp_path):
    from evaluation.lm import VideoLM

    samples = load_samples("mvbench", fixtures["mvbench"]["questions"], fixtures["mvbench"]["video_root"])
    lm = VideoLM(frames=4, max_pixels=12544, max_new_tokens=4, batch_size=2, frame_cache_dir=str(tmp_path / "f"))
    first = lm._generate_chunk([(s.problem, s.video) for s in samples], 4)
    encoded = lm.reuse.stats["encoded"]
    lm._generate_chunk([(f"Another benchmark asks: {s.problem}", s.video) for s in samples], 4)
    assert lm.reuse.stats["encoded"] == encoded == len({s.video for s in samples})
    assert lm.reuse.stats["processed"] == encoded and len(first) == len(samples)


def test_interrupted_evaluation_resumes_without_generating_finished_chunks(fixtures, tmp_path):
    source = {"mvbench": fixtures["mvbench"]}
    calls = []

    def interrupt(name: str, done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt  # killed after the first chunk of two

    with pytest.raises(KeyboardInterrupt):
        run_evaluation("tiny-random", source, str(tmp_path / "a"), cache_dir=str(tmp_path / "cache"),
                       progress=interrupt, **SETTINGS)
    resumed = run_evaluation("tiny-random", source, str(tmp_path / "b"), cache_dir=str(tmp_path / "cache"),
                             **SETTINGS)["benchmarks"]["mvbench"]
    assert resumed["chunks_cached"] == 1 and resumed["chunks_generated"] == 1 and resumed["generated"] == 2
    fresh = run_evaluation("tiny-random", source, str(tmp_path / "c"), cache_dir=str(tmp_path / "cache2"),
                           **SETTINGS)["benchmarks"]["mvbench"]
    assert [json.loads(x)["prediction"] for x in (tmp_path / "b" / "samples_mvbench.jsonl").read_text().splitlines()] \
        == [json.loads(x)["prediction"] for x in (tmp_path / "c" / "samples_mvbench.jsonl").read_text().splitlines()]
    assert fresh["official"]["overall"] == resumed["official"]["overall"]
    # another frame budget is another cache key: nothing is reused across settings
    other = run_evaluation("tiny-random", source, str(tmp_path / "d"), cache_dir=str(tmp_path / "cache"),
                           **{**SETTINGS, "frames": 2})["benchmarks"]["mvbench"]
    assert other["chunks_cached"] == 0


def test_a_broken_video_is_counted_as_failed_never_scored_as_wrong(fixtures, tmp_path):
    rows = json.loads(Path(fixtures["tempcompass"]["questions"]).read_text())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rows[1]["path"] = str(broken)
    (tmp_path / "tc.json").write_text(json.dumps(rows))
    source = {"tempcompass": {"questions": str(tmp_path / "tc.json"),
                              "video_root": fixtures["tempcompass"]["video_root"]}}
    score = run_evaluation("tiny-random", source, str(tmp_path / "out"), **SETTINGS)["benchmarks"]["tempcompass"]
    assert score["failed"] == 1 and score["scored"] == 3
    assert sum(score["official"]["category_counts"].values()) == 3
    failed = [json.loads(x) for x in (tmp_path / "out" / "samples_tempcompass.jsonl").read_text().splitlines()
              if json.loads(x)["failed"]]
    assert len(failed) == 1 and "cannot decode" in failed[0]["error"] and failed[0]["prediction"] is None


def test_run_cli_takes_the_contract_flags_and_rejects_unknown_benchmarks(tmp_path, isolated_env):
    out = subprocess.run([sys.executable, "-m", "evaluation.run", "--model", "tiny-random", "--benchmarks",
                          "mmvu,nope", "--output", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "unknown benchmarks ['nope']" in out.stderr
    out = subprocess.run([sys.executable, "-m", "evaluation.run", "--model", "tiny-random", "--benchmarks", "mmvu",
                          "--output", str(tmp_path / "o"), "--profile", str(SMALL), "--max-new-tokens", "4",
                          "--bootstrap", "10"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["scores"]["mmvu"]["failed"] == 0
    assert (tmp_path / "o" / "samples_mmvu.jsonl").exists()


def test_the_job_the_asset_runs_in_process_is_the_one_the_cli_runs(tmp_path, isolated_env):
    """benchmark_scores on a local launcher runs ``resolve_job(args).run()`` in its own process: the same
    resolution (profile, frames, flags) and the same scores as ``python -m evaluation.run`` with those args."""
    from evaluation.benchmarks import BenchmarkDataError
    from evaluation.run import resolve_job

    args = ["--model", "tiny-random", "--benchmarks", "mmvu", "--profile", str(SMALL), "--max-new-tokens", "4",
            "--bootstrap", "10", "--limit", "3"]
    job = resolve_job([*args, "--output", str(tmp_path / "in")])
    profile = load_profile(str(SMALL))
    assert job.options["frames"] == profile.video.eval.frames and job.options["max_new_tokens"] == 4
    assert job.options["batch_size"] == profile.evaluation.batch_size and job.sources["mmvu"]["limit"] == 3
    in_process = job.run()["benchmarks"]["mmvu"]
    out = subprocess.run([sys.executable, "-m", "evaluation.run", *args, "--output", str(tmp_path / "child")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    child = json.loads((tmp_path / "child" / "scores.json").read_text())["benchmarks"]["mmvu"]
    assert in_process["official"] == child["official"] and in_process["videorft"] == child["videorft"]
    with pytest.raises(BenchmarkDataError, match="nope"):
        resolve_job(["--model", "tiny-random", "--benchmarks", "nope", "--output", str(tmp_path / "x")])


def test_schedule_and_sensor_request_every_benchmark_of_trained_variants_and_never_training():
    from dagster_project.definitions import build_definitions

    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    schedule = defs.resolve_schedule_def("weekly_reevaluation")
    assert schedule.cron_schedule == "0 4 * * 1"
    # the profile's dagster.sensor_interval_seconds reaches both sensors (Dagster's default is 30 s)
    assert {defs.resolve_sensor_def(s).minimum_interval_seconds
            for s in ("new_rl_checkpoint", "scoreboard_follows_scores")} == {5}
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                            scheduled_execution_time=datetime(2026, 11, 23, 4, tzinfo=UTC))
        assert not schedule.evaluate_tick(context).run_requests  # nothing trained yet: nothing to re-evaluate
        for variant in ("full", "sft_only"):
            instance.report_runless_asset_event(dg.AssetMaterialization("rl_checkpoint", partition=variant))
        requests = schedule.evaluate_tick(context).run_requests
        assert sorted(str(r.partition_key) for r in requests) == sorted(
            f"{b}|{v}" for v in ("full", "sft_only") for b in BENCHMARKS)
        job = defs.resolve_job_def(schedule.job_name)
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"benchmark_scores"}

        sensor = defs.resolve_sensor_def("new_rl_checkpoint")
        assert sensor.job_name == schedule.job_name  # the same evaluation-only job
        cursor = None
        for version in ("abc123", "def456"):
            instance.report_runless_asset_event(dg.AssetMaterialization("rl_checkpoint", partition="t_grpo", tags={
                "dagster/data_version": version}))
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor))
            cursor = result.cursor
            requested = sorted(str(r.partition_key) for r in result.run_requests)
            assert requested == sorted(f"{b}|t_grpo" for b in BENCHMARKS)
            # one evaluation per (variant, checkpoint version, benchmark), whoever made the checkpoint
            assert all(r.run_key.startswith(f"t_grpo-{version}-") for r in result.run_requests)

        # a version already scored (by `make run`, a backfill, a person) is not evaluated again: not at all when
        # every benchmark has its score, only the missing benchmarks otherwise
        def score(variant: str, benchmark: str, version: str) -> None:
            instance.report_runless_asset_event(dg.AssetMaterialization(
                "benchmark_scores", partition=f"{benchmark}|{variant}", metadata={
                    "variant": variant, "benchmark": benchmark, "checkpoint_version": version,
                    "samples_log": "/nowhere.jsonl"}))

        for b in BENCHMARKS:
            score("full", b, "v1")
        score("sft_only", "mmvu", "v2")
        for variant, version, expected in (("full", "v1", []), ("sft_only", "v2", sorted(set(BENCHMARKS) - {"mmvu"}))):
            instance.report_runless_asset_event(dg.AssetMaterialization("rl_checkpoint", partition=variant, tags={
                "dagster/data_version": version}))
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor))
            cursor = result.cursor
            assert sorted(str(r.partition_key).split("|")[0] for r in result.run_requests) == expected, variant
            if not expected:
                assert "already scored on every benchmark" in result.skip_message


def test_an_automation_sensor_runs_by_default_and_targets_only_the_scoreboard():
    from dagster_project.definitions import build_definitions

    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    sensor = defs.resolve_sensor_def("scoreboard_follows_scores")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in sensor.asset_selection.resolve(graph)} == {"scoreboard"}
    assert graph.get(dg.AssetKey("scoreboard")).automation_condition is not None


def test_the_sensor_leaves_a_checkpoint_to_the_backfill_that_also_evaluates_it():
    import time

    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.test_utils import create_run_for_test

    from dagster_project.reevaluation import _backfill_evaluating

    with dg.instance_for_test() as instance:
        for backfill_id, selection in (("whole", ["rl_checkpoint", "benchmark_scores"]), ("train", ["rl_checkpoint"])):
            instance.add_backfill(PartitionBackfill(
                backfill_id=backfill_id, status=BulkActionStatus.REQUESTED, from_failure=False, tags={},
                backfill_timestamp=time.time(), asset_selection=[dg.AssetKey(k) for k in selection]))
        runs = {name: create_run_for_test(instance, tags={"dagster/backfill": name} if name else {}).run_id
                for name in ("whole", "train", "")}
        assert _backfill_evaluating(instance, runs["whole"]) == "whole"
        assert _backfill_evaluating(instance, runs["train"]) is None  # training only: the sensor evaluates
        assert _backfill_evaluating(instance, runs[""]) is None


def test_choice_mode_answers_each_multiple_choice_question_with_its_likeliest_option(fixtures, tmp_path):
    import math

    from evaluation.lm import VideoLM
    from evaluation.tasks.utils import doc_to_text

    source = {"mvbench": fixtures["mvbench"]}
    run_evaluation("tiny-random", source, str(tmp_path / "out"), answer_mode="choice", **SETTINGS)
    log = read_log(str(tmp_path / "out" / "samples_mvbench.jsonl"))
    questions = [s for s in load_samples("mvbench", **source["mvbench"]) if s.problem_type == "multiple choice"]
    assert len(log) == len(questions) > 0
    lm = VideoLM(pretrained="tiny-random", frames=4, max_pixels=12544)
    for row, question in zip(log, questions, strict=True):
        frames = lm._frames(question.video)
        scores = [lm._score(doc_to_text(question.to_dict()), frames, o.partition(". ")[2])[0]
                  for o in question.options]
        assert all(math.isfinite(x) for x in scores)
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        assert row["prediction"] == question.options[best].partition(". ")[0]  # the likeliest option's letter


def test_a_replys_likelihood_is_what_greedy_generation_assigns_it(fixtures):
    import torch

    from evaluation.lm import VideoLM
    from videorft.frames import media_part

    lm = VideoLM(pretrained="tiny-pretrained", frames=4, max_pixels=12544, reuse_vision=False)
    question = load_samples("mvbench", **fixtures["mvbench"])[0]
    frames, prompt = lm._frames(question.video), "What colour is the background of the video?"
    model, processor = lm._hf()
    conv = [[{"role": "user", "content": [media_part("video", frames), {"type": "text", "text": prompt}]}]]
    inputs = processor.apply_chat_template(conv, tokenize=True, return_dict=True, add_generation_prompt=True,
                                           return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False, output_scores=True,
                             return_dict_in_generate=True, temperature=None, top_p=None, top_k=None)
    new = out.sequences[0, inputs["input_ids"].shape[1]:]
    end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert int(new[-1]) == end, "the shipped base answers the background in a few tokens"
    expected = sum(float(torch.log_softmax(step[0].float(), -1)[token]) for step, token in zip(out.scores, new,
                                                                                                strict=True))
    reply = processor.decode(new[:-1], skip_special_tokens=True)
    logprob, greedy = lm._score(prompt, frames, reply)
    assert greedy and logprob == pytest.approx(expected, abs=1e-3)
    other, other_greedy = lm._score(prompt, frames, reply + " triangle")
    assert not other_greedy and other < logprob


def test_a_broken_video_fails_its_questions_in_choice_mode_too(fixtures, tmp_path):
    rows = json.loads(Path(fixtures["tempcompass"]["questions"]).read_text())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    mc = [i for i, r in enumerate(rows) if r.get("options")]
    rows[mc[0]]["path"] = str(broken)
    (tmp_path / "tc.json").write_text(json.dumps(rows))
    source = {"tempcompass": {"questions": str(tmp_path / "tc.json"),
                              "video_root": fixtures["tempcompass"]["video_root"]}}
    score = run_evaluation("tiny-random", source, str(tmp_path / "out"), answer_mode="choice",
                           **SETTINGS)["benchmarks"]["tempcompass"]
    assert score["failed"] == 1 and score["scored"] == len(mc) - 1


def test_the_text_only_baseline_learns_from_scenes_no_fixture_shows_with_every_fixture_template():
    from evaluation.controls import group_of
    from evaluation.fixtures import BASELINE_SEED_OFFSET, baseline_questions
    from synthetic.world import build_scripts

    world = WorldConfig(seed=1007, videos=200, images=0, questions=0)
    fit = baseline_questions(world, videos=200)
    assert fit == baseline_questions(world, videos=200)  # deterministic
    shown = {json.dumps(s["objects"]) for s in build_scripts(world)[0]}
    baseline = {json.dumps(s["objects"]) for s in build_scripts(
        world.model_copy(update={"seed": world.seed + BASELINE_SEED_OFFSET}))[0]}
    assert not shown & baseline
    assert {"color_at_end", "appears_last", "main_direction", "background_colour",
            "first_collision_partner"} <= {group_of(q) for q in fit}
