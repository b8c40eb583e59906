"""The Dagster layer: Definitions load, raw_qa_pool materializes with its metadata, checks and MLflow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from graph_helpers import plain, run_pool
from mlflow import MlflowClient

from dagster_project.definitions import build_definitions
from videorft.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_ASSETS = {"synthetic_world", "raw_qa_pool"}
# CONTRACTS.md, "Assets": the names users and outside tooling rely on
CONTRACT_ASSET_NAMES = {
    "structured_representation_prompt", "cot_generation_prompt", "cot_refinement_prompt", "raw_qa_pool",
    "structured_video_representations", "initial_cots", "refined_cots", "cot_sft_set", "unrefined_cot_sft_set",
    "rl_set", "video_embeddings", "sft_checkpoint", "rl_checkpoint", "benchmark_scores", "scoreboard"}


def _defs(ref: str) -> dg.Definitions:
    return build_definitions(load_profile(ref), ref)


def _run_all(ref: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return run_pool(_defs(ref), instance)


def test_definitions_load_for_every_profile():
    for ref in ("tiny", "paper-3b", "paper-7b"):
        defs = _defs(ref)
        defs.validate_loadable(defs)
        keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
        assert keys >= CONTRACT_ASSET_NAMES, CONTRACT_ASSET_NAMES - keys
        assert ("synthetic_world" in keys) == (ref == "tiny")


def test_dagster_cli_validates_the_workspace():
    out = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_raw_qa_pool_materializes_with_contract_metadata_and_checks(isolated_env):
    with dg.instance_for_test() as instance:
        result = _run_all(isolated_env["VIDEORFT_PROFILE"], instance)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_qa_pool"))
        meta = event.asset_materialization.metadata
        assert meta["dagster/row_count"].value == 80
        assert meta["quarantined_rows"].value == 0 and meta["duplicate_rows"].value == 0
        assert meta["rows_in"].value == 80
        by_type = plain(meta["by_problem_type"])  # a table: problem type, rows, share
        assert set(by_type) == {"multiple choice", "numerical", "OCR", "free-form", "regression"}
        assert sum(by_type.values()) == 80
        shares = [r.data["share_pct"] for r in meta["by_problem_type"].records]
        assert abs(sum(shares) - 100) < 0.5
        assert set(plain(meta["by_category"])) == {"general", "mathematics", "science", "document", "spatiotemporal"}
        assert "synthetic/videos" in meta["by_source"].value and "synthetic/images" in meta["by_source"].value
        assert meta["plots"].value.startswith("![raw_qa_pool counts](data:image/png;base64,")
        columns = meta["dagster/column_schema"].schema.columns
        assert [c.name for c in columns][:3] == ["sample_id", "shard", "problem_id"]
        assert all(c.description for c in columns)  # every column says what it holds
        assert "| sample_id" in meta["preview"].value
        assert meta["mlflow_run_url"].value.startswith("http")
        # data version is the content hash; the manifest is the asset's value
        assert event.asset_materialization.tags["dagster/data_version"] == meta["content_hash"].value
        evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert evaluations == {"schema": True, "every_problem_type_present": True, "quarantine_rate": True}
        manifest = json.loads((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "manifests" /
                               "raw_qa_pool.json").read_text())
        assert manifest["row_count"] == 80 and len(manifest["shard_uris"]) == 3


def test_each_materialization_records_a_tagged_mlflow_run(isolated_env):
    with dg.instance_for_test() as instance:
        result = _run_all(isolated_env["VIDEORFT_PROFILE"], instance)
        client = MlflowClient(isolated_env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("videorft-tests")
        runs = client.search_runs([experiment.experiment_id])
        # one run for the Dagster run, the asset's nested under it
        [parent] = [r for r in runs if r.data.tags.get("videorft.kind") == "dagster_run"]
        [run] = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(runs) == 2 and parent.data.tags["dagster.run_id"] == result.run_id
        # the parent is named like its child, and has a Source too: the list tells runs apart at a glance
        assert parent.info.run_name == f"raw_qa_pool, synthetic_world · dagster {result.run_id[:8]}"
        assert parent.data.tags["mlflow.source.name"].startswith("dagster_project · run of ")
        assert run.info.status == "FINISHED" and parent.info.status == "FINISHED"
        assert "raw_qa_pool" in run.data.tags["mlflow.note.content"]
        tags = run.data.tags
        assert tags["dagster.run_id"] == result.run_id
        assert tags["dagster.asset_key"] == "raw_qa_pool"
        assert tags["dagster.code_version"] == "1"
        assert tags["dagster.partition"] == ""
        assert tags["mlflow.source.git.commit"]
        assert tags["mlflow.source.name"] == "dagster_project · asset raw_qa_pool"  # the list's "Source" column
        assert run.info.run_name == "raw_qa_pool"
        assert run.data.metrics["row_count"] == 80
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "raw_qa_pool")}
        assert {"raw_qa_pool/counts.json", "raw_qa_pool/counts.png", "raw_qa_pool/quarantine.csv"} <= artifacts
        url = instance.get_latest_materialization_event(dg.AssetKey("raw_qa_pool")).asset_materialization.metadata[
            "mlflow_run_url"].value
        # the run's page, in MLflow's model-training view
        assert url.endswith(f"/runs/{run.info.run_id}?workflowType=machine_learning")


def test_quarantine_rate_check_fails_above_its_bound(isolated_env, world_copy, tmp_path, monkeypatch):
    rows = json.loads((world_copy / "qa_videos.json").read_text())[:10]
    for row in rows[:4]:
        row["path"] = "./videos/missing.mp4"
    qa = world_copy / "mostly-bad.json"
    qa.write_text(json.dumps(rows))
    monkeypatch.setenv("VIDEORFT_QA_SOURCES", str(qa))
    with dg.instance_for_test() as instance:
        result = _run_all(isolated_env["VIDEORFT_PROFILE"], instance)
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert evaluations["quarantine_rate"].passed is False
        assert evaluations["quarantine_rate"].metadata["quarantine_rate"].value == pytest.approx(0.4)
