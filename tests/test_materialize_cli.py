"""`python -m dagster_project materialize` (a contract): runs recorded in DAGSTER_HOME, a summary, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from graph_helpers import free_port, latest_metadata, served

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dagster_project", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})


@pytest.mark.slow
def test_materialize_everything_records_runs_and_prints_a_summary(isolated_env):
    # shards and benchmarks two at a time; a progress line at most every 3 s (SFT alone takes longer)
    out = _cli("materialize", "--parallel", "2", "--progress-every", "3", env=isolated_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "datasets: raw_qa_pool 80 rows" in out.stdout
    assert re.search(r"checks: \d+ passed, \d+ skipped .*, \d+ warned, 0 failed", out.stdout)
    assert "result     : success" in out.stdout
    assert f"storage    : {isolated_env['VIDEORFT_STORAGE_ROOT']}" in out.stdout
    # where to look next: both UIs, by command and address
    assert "make ui         -> http://127.0.0.1:3000" in out.stdout
    assert "make mlflow-ui  -> http://127.0.0.1:5000" in out.stdout
    with dg.DagsterInstance.from_config(isolated_env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        # one run for the unpartitioned sources, one per curation shard (3), one for the roll-up datasets, one
        # per shard for the video embeddings (3), one per variant for its checkpoints (the profile's
        # run_variants: base, sft_only, full), one per (variant, benchmark) (18), one for the scoreboard
        assert len(runs) == 30 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        for key in ("synthetic_world", "cot_sft_set", "rl_set", "cot_generation_prompt", "video_embeddings",
                    "rl_checkpoint", "scoreboard"):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None
        # GRPO read every video's embedding from what video_embeddings stored: none computed in its steps
        rl = latest_metadata(instance, "rl_checkpoint", "full")
        assert rl["semantic_embeddings_computed"] == 0 and rl["semantic_embeddings_read"] > 0
    # each checkpoint with its last loss (and reward), each variant's scores under both protocols
    assert re.search(r"\n  sft_checkpoint\[sft_only\] +\d+ steps, loss [\d.e-]+", out.stdout)
    assert re.search(r"\n  rl_checkpoint\[full\] +\d+ steps, loss [-\d.e]+, reward [\d.e-]+", out.stdout)
    assert re.search(r"\n  sft_checkpoint\[full\] +reused sft_only's checkpoint", out.stdout)
    assert "scores, official / videorft / lenient (%):" in out.stdout
    assert re.search(r"\n  sft_only +([\d.]+/[\d.]+/[\d.]+ +){5}[\d.]+/[\d.]+/[\d.]+\n", out.stdout)
    # a quiet terminal: one line per run and the summary; the step logs are in the UI
    lines = (out.stdout + out.stderr).splitlines()
    assert len(lines) < 120, len(lines)
    noise = [line for line in lines if "lm_eval" in line or "it/s]" in line or "Warning" in line
             or line.startswith(("{", "2026-", "20"))]
    assert not noise, noise[:5]
    board = Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "evaluation" / "scoreboard" / "scoreboard.csv"
    import pandas as pd

    table = pd.read_csv(board)
    assert {"variant", "benchmark", "samples", "videorft", "official", "official_ci95_low",
            "official_ci95_high"} <= set(table.columns)
    assert sorted(set(table["variant"])) == ["base", "full", "sft_only"] and len(table) == 18
    # MLflow opens on the model-training view, and the scoreboard's run holds every cell and its settings
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=isolated_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("videorft-tests")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [board_run] = client.search_runs([experiment.experiment_id], "tags.`dagster.asset_key` = 'scoreboard'")
    assert board_run.data.metrics["full/mvbench/official"] == float(
        table[(table["variant"] == "full") & (table["benchmark"] == "mvbench")]["official"].iloc[0])
    assert len(board_run.data.metrics) >= 18 * 4 and board_run.data.params["variants"] == "base, sft_only, full"
    # progress while it ran: the newest done/total of the runs in flight (or a heartbeat), with the time taken
    assert re.search(r"\n  .+ \(\d+s\): ", out.stdout), out.stdout[-3000:]

    _the_uis_show_what_was_built(isolated_env)

    again = _cli("materialize", "--select", "raw_qa_pool", env=isolated_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "datasets: raw_qa_pool 80 rows" in again.stdout and "synthetic_world" not in again.stdout
    manifest = json.loads((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "manifests" / "raw_qa_pool.json").read_text())
    assert manifest["row_count"] == 80


def test_materialize_rejects_a_selection_that_matches_nothing(isolated_env):
    out = _cli("materialize", "--select", "no_such_asset", env=isolated_env)
    assert out.returncode == 2
    assert "matches no asset" in out.stderr and "raw_qa_pool" in out.stderr


def test_a_bad_profile_is_a_clear_error_before_anything_runs(isolated_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources: [{name: a, uri: /x.json}]\nworld: {videos: -1}\n")
    out = _cli("materialize", "--profile", str(bad), env=isolated_env)
    assert out.returncode == 2
    assert "world.videos" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_materialize_exits_non_zero_when_a_run_fails(isolated_env, tmp_path):
    missing = tmp_path / "missing.json"
    out = _cli("materialize", env={**isolated_env, "VIDEORFT_QA_SOURCES": str(missing)})
    assert out.returncode == 1
    assert "FAILED" in out.stdout and "not found" in out.stdout


def test_a_run_of_several_assets_labels_each_count_and_a_score_shows_every_protocol():
    from dagster_project.__main__ import _headline
    from dagster_project.runs import SUMMARY_KEYS, Outcome

    several = Outcome("x", "r", True, materialized=[("initial_cots", "000", {"dagster/row_count": 179}),
                                                     ("refined_cots", "000", {"dagster/row_count": 780})])
    assert _headline(several) == ": initial_cots 179 rows; refined_cots 780 rows"
    assert _headline(Outcome("x", "r", True, materialized=[("rl_set", "", {"dagster/row_count": 5})])) == ": 5 rows"
    score = Outcome("x", "r", True, materialized=[("benchmark_scores", "mvbench|full", {
        "score_official": 6.67, "score_videorft": 1.56, "score_lenient": 40.0})])
    assert _headline(score) == ": official 6.67 / videorft 1.56 / lenient 40"
    assert "score_lenient" in SUMMARY_KEYS  # kept from the run's metadata for the summary table


def test_the_summary_says_which_variants_were_built_and_how_to_build_the_rest():
    from dagster_project.__main__ import _variants_line
    from dagster_project.runs import Outcome

    runs = [Outcome("x", "r", True, materialized=[("sft_checkpoint", "sft_only", {}),
                                                  ("benchmark_scores", "mvbench|full", {})])]
    assert _variants_line(runs, ["base", "sft_only", "full", "t_grpo"]) == [
        "variants: sft_only, full built; `make table2` builds the rest (base, t_grpo)"]
    assert _variants_line(runs, ["sft_only", "full"]) == []  # every variant built: nothing to say


def _the_uis_show_what_was_built(env: dict[str, str]) -> None:
    """Issue 34's browser checks, on the state the whole graph left: the SFT run's progress lines in its Dagster
    log, Table 2's rows on the scoreboard's page without a click, MLflow's experiment on its runs."""
    from test_deployment_e2e import ARTIFACTS, CHROMIUM, _browser, _dismiss_welcome

    sync_api = _browser()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [sft_run] = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == "sft_only"
                     and "sft_checkpoint" in {k.to_user_string() for k in (r.asset_selection or [])}]
    dagster_port, mlflow_port = free_port(), free_port()
    webserver = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                 "-p", str(dagster_port), "--read-only"]
    mlflow_ui = [sys.executable, "-m", "dagster_project", "mlflow-ui", "--port", str(mlflow_port)]
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    with served(webserver, env, f"{dagster_url}/server_info"), \
            served(mlflow_ui, env, f"http://127.0.0.1:{mlflow_port}/health") as mlflow_proc, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(f"{dagster_url}/runs/{sft_run.run_id}", wait_until="domcontentloaded")
            _dismiss_welcome(page)
            page.get_by_role("textbox", name="Filter…").fill("elapsed")  # the log is long: filter it, as people do
            step = re.compile(r"step \d+/\d+: loss=.*elapsed")  # training's progress line, with its pace
            sync_api.expect(page.get_by_text(step).first).to_be_visible(timeout=60000)
            page.goto(f"{dagster_url}/assets/scoreboard", wait_until="domcontentloaded")
            sync_api.expect(page.get_by_text("Table 2 (official %): base").first).to_be_visible(timeout=60000)
            said = [mlflow_proc.stdout.readline() for _ in range(3)]  # redirect notes, then its address
            address = next(line for line in said if line.startswith("mlflow-ui: http"))
            experiment = address.split()[1]  # "mlflow-ui: <the experiment's page> (store ...)"
            assert "workflowType=machine_learning" in experiment, said
            page.goto(experiment, wait_until="domcontentloaded")
            sync_api.expect(page.get_by_text("score mvbench/full").first).to_be_visible(timeout=60000)
        except Exception:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "materialize-uis-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
