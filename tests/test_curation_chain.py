"""The curation chain as Dagster assets, on the small synthetic world with the simulator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest
import yaml
from dagster._utils.test.data_versions import get_stale_status_resolver
from graph_helpers import data_versions, materialize_all, plain

from curation.prompts import default_prompts_dir
from dagster_project.definitions import build_definitions
from synthetic.simulator.server import RunningSimulator, Simulator
from synthetic.simulator.world import World
from videorft.profile import load_profile
from videorft.storage import read_parquet

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "small-profile.yaml"
SOURCES = "group:sources or group:prompts or key:raw_qa_pool"
STAGES = ("structured_video_representations", "initial_cots", "refined_cots")


def profile_with(tmp_path: Path, **sections: dict[str, Any]) -> str:
    """The small profile with some sections merged in, written to tmp_path."""
    raw = yaml.safe_load(SMALL.read_text())
    for key, value in sections.items():
        raw[key] = {**(raw.get(key) or {}), **value}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def defs_for(ref: str) -> dg.Definitions:
    return build_definitions(load_profile(ref), ref)


def output(instance: dg.DagsterInstance, key: str) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return {k: plain(v) for k, v in event.asset_materialization.metadata.items()}


def shard_manifests(storage: Path, asset: str) -> list[dict[str, Any]]:
    """A partitioned stage's manifests, one JSON per shard."""
    return [json.loads(p.read_text()) for p in sorted((storage / "manifests" / asset).glob("*.json"))]


def sft_tables(storage: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    manifest = json.loads((storage / "manifests" / "cot_sft_set.json").read_text())
    return read_parquet(manifest["parquet"]), read_parquet(manifest["dropped"])


@pytest.mark.slow
def test_chain_completes_under_http_faults_and_accounts_for_every_sample(isolated_env, tmp_path):
    faults = {"enabled": True, "rate_429": 0.1, "rate_500": 0.1, "rate_malformed": 0.05, "rate_truncated": 0.02,
              "retry_after_s": 0.02, "jitter_ms": 15}
    ref = profile_with(tmp_path, curation={"simulator": faults})
    defs = defs_for(ref)
    with dg.instance_for_test() as instance:
        results = materialize_all(defs, instance)
        assert all(r.success for r in results)
        checks = {(e.asset_key.to_user_string(), e.check_name): e.passed
                  for r in results for e in r.get_asset_check_evaluations()}
        assert checks[("cot_sft_set", "format_valid")] and checks[("cot_sft_set", "every_sample_accounted")]
        assert all(passed for (asset, name), passed in checks.items() if name == "refinement_not_worse")
        sft = output(instance, "cot_sft_set")
        funnel = sft["funnel"]
        assert list(funnel) == ["pool", "described", "reasoned", "refined", "kept"]  # stage order, not alphabetical
        assert funnel["pool"] == 80 and funnel["kept"] == sft["dagster/row_count"]
        assert funnel["pool"] >= funnel["described"] >= funnel["reasoned"] >= funnel["refined"] >= funnel["kept"]
        assert 0 < funnel["kept"] < 80  # the filter had work to do
        assert sft["mean_cot_tokens"] > 20 and sft["top_words"] and "<think>" in sft["sample_cots"]
        assert set(sft["by_problem_type"]) <= {"multiple choice", "numerical", "OCR", "free-form", "regression"}
        assert sft["retention"] == round(sft["retention"], 4)  # rounded for people
        assert set(sft["prompt_hashes"]) == {"cot_generation", "cot_refinement", "structured_representation"}
        assert sft["plots"].count("](data:image/png;base64,") == 3  # funnel, CoT lengths, counts on the page
        raw = instance.get_latest_materialization_event(dg.AssetKey("cot_sft_set")).asset_materialization.metadata
        derived = raw["dagster/column_lineage"].column_lineage.deps_by_column
        assert {d.asset_key.to_user_string() for d in derived["process"]} == {"refined_cots"}
        stage_requests = sum(r.asset_materialization.metadata["expert_requests_sent"].value
                             for key in STAGES for r in instance.fetch_materializations(
                                 dg.AssetKey(key), limit=10).records)
        assert stage_requests > 80 + 60  # retries and repairs on top of one call per media and per sample
        for key in (*STAGES, "cot_sft_set", "unrefined_cot_sft_set", "rl_set"):  # every column says what it holds
            schema = instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata[
                "dagster/column_schema"].schema
            assert schema.columns and all(c.description and c.description != c.name for c in schema.columns), key
    from mlflow import MlflowClient

    client = MlflowClient(isolated_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("videorft-tests").experiment_id
    [sft_run] = client.search_runs([experiment], "tags.`dagster.asset_key` = 'cot_sft_set'")
    artifacts = {a.path for a in client.list_artifacts(sft_run.info.run_id, "cot_sft_set")}
    assert {"cot_sft_set/funnel.png", "cot_sft_set/cot_lengths.png", "cot_sft_set/samples.md",
            "cot_sft_set/report.json", "cot_sft_set/dropped.csv"} <= artifacts
    traces = client.search_traces(locations=[experiment], max_results=500)
    assert traces and {t.info.tags.get("mlflow.traceName") or t.data.spans[0].name for t in traces} <= {
        f"{s}.{role}" for s, role in zip(STAGES, ("describer", "reasoner", "refiner"), strict=True)}
    # each a chat-model span with the call's real duration and its token usage (MLflow's Tokens column)
    spans = [t.data.spans[0] for t in traces]
    assert {span.span_type for span in spans} == {"CHAT_MODEL"}
    assert all(span.end_time_ns > span.start_time_ns for span in spans)
    assert sum(1 for span in spans if span.end_time_ns - span.start_time_ns > 1_000_000) > len(spans) // 2
    assert all((t.info.token_usage or {}).get("total_tokens", 0) > 0 for t in traces)
    # one parent run per Dagster run, the asset runs nested under it
    assert sft_run.data.tags["mlflow.parentRunId"] and sft_run.data.tags["mlflow.note.content"]
    kept, dropped = sft_tables(Path(isolated_env["VIDEORFT_STORAGE_ROOT"]))
    assert len(kept) + len(dropped) == 80 and set(kept["sample_id"]).isdisjoint(dropped["sample_id"])
    assert dropped["reason"].str.len().gt(0).all()
    assert kept["process"].str.match(r"^<think>.+</think>$").all()
    assert kept["solution"].str.match(r"^<answer>.+</answer>$").all()
    row = kept.iloc[0]
    assert set(json.loads(row["prompt_hashes"])) == {"structured_representation", "cot_generation", "cot_refinement"}
    assert json.loads(row["expert_models"]) == {"describer": "sim-describer", "reasoner": "sim-reasoner",
                                               "refiner": "sim-refiner"}
    assert all(json.loads(row["cache_keys"])[role] for role in ("describer", "reasoner", "refiner"))
    jsonl = Path(json.loads((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "manifests" / "cot_sft_set.json")
                            .read_text())["jsonl"])
    assert len(jsonl.read_text().splitlines()) == len(kept)

    # Table 2's "w/o CoT Refinement" set: the blind CoTs through the same filter, no refiner in its provenance
    storage = Path(isolated_env["VIDEORFT_STORAGE_ROOT"])
    unrefined = json.loads((storage / "manifests" / "unrefined_cot_sft_set.json").read_text())
    blind, blind_dropped = read_parquet(unrefined["parquet"]), read_parquet(unrefined["dropped"])
    assert len(blind) + len(blind_dropped) == 80 and len(blind) > 0
    assert "refined_cots" not in unrefined["stage_versions"]
    initial = pd.concat(read_parquet(m["uri"]) for m in shard_manifests(storage, "initial_cots")).set_index("sample_id")
    for _, r in blind.iterrows():
        assert r["process"] == f"<think>{initial.loc[r['sample_id'], 'cot']}</think>"
        assert set(json.loads(r["prompt_hashes"])) == {"structured_representation", "cot_generation"}
    assert not set(blind_dropped["stage"]) & {"refined_cots"}
    assert blind["process"].tolist() != kept.set_index("sample_id").reindex(blind["sample_id"])["process"].tolist()


@pytest.mark.slow
def test_unchanged_rerun_keeps_every_data_version_and_a_prompt_edit_makes_the_chain_stale(isolated_env, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), prompts, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    ref = profile_with(tmp_path, curation={"prompts_dir": str(prompts)})
    defs = defs_for(ref)
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance))
        first = data_versions(instance, defs)
        requests_before = output(instance, "refined_cots")["expert_requests_sent"]
        assert requests_before > 0
        assert all(r.success for r in materialize_all(defs, instance))
        assert data_versions(instance, defs) == first
        assert output(instance, "refined_cots")["expert_requests_sent"] == 0  # all from the cache

        path = prompts / "cot_refinement.yaml"
        path.write_text(path.read_text().replace("careful reviewer", "meticulous reviewer"))
        edited = defs_for(ref)

        def status(key: str, partition: str | None = None) -> str:
            resolver = get_stale_status_resolver(instance, list(edited.resolve_asset_graph().assets_defs))
            return resolver.get_status(dg.AssetKey(key), partition).value

        # the edit changes the prompt's code version: the prompt is stale, nothing else yet
        assert status("cot_refinement_prompt") == "STALE" and status("cot_generation_prompt") == "FRESH"
        # its new data version makes every refined_cots shard stale, and only those
        assert all(r.success for r in materialize_all(edited, instance, "cot_refinement_prompt"))
        assert [status("refined_cots", p) for p in ("000", "001", "002")] == ["STALE"] * 3
        assert status("initial_cots", "000") == "FRESH" and status("raw_qa_pool") == "FRESH"
        # re-refining with the new prompt gives new data, so the SFT set goes stale in turn
        assert all(r.success for r in materialize_all(edited, instance, "refined_cots"))
        assert status("refined_cots", "000") == "FRESH" and status("cot_sft_set") == "STALE"
        old_code = defs.resolve_asset_graph().get(dg.AssetKey("cot_refinement_prompt")).code_version
        new_code = edited.resolve_asset_graph().get(dg.AssetKey("cot_refinement_prompt")).code_version
        assert old_code != new_code and old_code == first["cot_refinement_prompt[]"]


def test_a_broken_video_becomes_failure_rows_not_a_crash(isolated_env, tmp_path):
    defs = defs_for(isolated_env["VIDEORFT_PROFILE"])
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance, SOURCES))
        pool_manifest = json.loads((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "manifests" / "raw_qa_pool.json")
                                   .read_text())
        pool = pd.concat([read_parquet(u) for u in pool_manifest["shard_uris"].values()])
        victim = pool[pool["data_type"] == "video"].iloc[0]
        Path(victim["media_uri"]).write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video any more")
        shard = f"{int(victim['shard']):03d}"
        results = materialize_all(defs, instance, " or ".join(f"key:{s}" for s in STAGES))
        assert all(r.success for r in results)
        reps = read_parquet(json.loads((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "manifests" /
                                        STAGES[0] / f"{shard}.json").read_text())["uri"])
    broken = reps[reps["media_sha256"] == victim["media_sha256"]].iloc[0]
    assert broken["status"] == "failed" and "decoded" in broken["reason"]
    assert (reps.drop(broken.name)["status"] == "ok").all()


def test_a_missing_api_key_fails_the_first_stage_fast_with_the_variable_named(isolated_env, tmp_path):
    ref = profile_with(tmp_path, experts={"describer": {"model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1"}},
                       curation={"simulator": {"enabled": False}})
    defs = defs_for(ref)
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance, SOURCES))
        started = time.monotonic()
        [result] = materialize_all(defs, instance, STAGES[0])[:1]
        assert not result.success and time.monotonic() - started < 30
        failure = result.get_step_failure_events()[0].step_failure_data.error
        messages = []
        while failure is not None:
            messages.append(failure.message)
            failure = failure.cause
        assert any("VIDEORFT_DESCRIBER_API_KEY" in m for m in messages), messages


@pytest.mark.slow
def test_a_killed_materialization_resumes_without_repeating_answered_requests(isolated_env, tmp_path, small_world):
    profile = load_profile(str(SMALL), env={})
    env = {**os.environ, **isolated_env, "VIDEORFT_STORAGE_ROOT": isolated_env["VIDEORFT_STORAGE_ROOT"]}
    world_root = str(Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "world")
    shutil.copytree(small_world.root, world_root)
    sim_cfg = profile.curation.simulator.model_copy(update={"latency_ms": 40})
    with RunningSimulator(Simulator(sim_cfg, World.load(world_root))) as sim:
        for role in ("DESCRIBER", "REASONER", "REFINER"):
            env[f"VIDEORFT_{role}_BASE_URL"] = sim.base_url
            env[f"VIDEORFT_{role}_API_KEY"] = "sk-test-not-secret"
        # the curation chain only: training and evaluation are not what a kill here is about
        cmd = [sys.executable, "-m", "dagster_project", "materialize", "--select",
               'not group:"training" and not group:"evaluation"']
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while sim.simulator.stats.to_dict()["answered_total"] < 60 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        sim.simulator.paused = True  # hold new requests; what was answered reaches the client
        time.sleep(1.0)
        answered_first = dict(sim.simulator.stats.answered)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        sim.simulator.paused = False
        assert len(answered_first) >= 60
        again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
        stats = httpx.get(sim.base_url.replace("/v1", "/stats")).json()
    assert stats["answered_more_than_once"] == 0, "a request answered before the kill was sent again"
    assert stats["answered_total"] == len(stats["answered"]) > len(answered_first)
    assert "checks:" in again.stdout and "0 failed" in again.stdout and "result     : success" in again.stdout


def test_top_words_counts_the_reasoning_not_the_format_tags():
    from curation.report import top_words

    words = top_words(["<think>The red circle moves left.</think><answer>red</answer>",
                       "<think>A red square.</think> <answer>B</answer>"])
    assert words["red"] == 3 and not {"think", "answer"} & set(words)
