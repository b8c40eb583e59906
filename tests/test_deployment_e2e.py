"""The compose deployment, run natively (tests/deployment.py), driven the way people use it: through the Dagster
UI in a real browser (Playwright + Debian's Chromium), and through the webserver's GraphQL API for a
materialization of the whole graph that lands in Postgres, the MLflow server and S3.

Screenshots go to ``$VIDEORFT_TEST_ARTIFACTS/ui`` (default ``.videorft/test-artifacts/ui``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, SMALL_PROFILE, postgres_admin
from deployment import Deployment, start_deployment, wait_for

from evaluation.benchmarks import BENCHMARK_NAMES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("VIDEORFT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("VIDEORFT_TEST_ARTIFACTS", ROOT / ".videorft" / "test-artifacts")) / "ui"
CURATION_CHAIN = 'not group:"training" and not group:"evaluation"'
PROMPTS = ("structured_representation_prompt", "cot_generation_prompt", "cot_refinement_prompt")

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    admin = postgres_admin()
    workdir = tmp_path_factory.mktemp("deployment")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEORFT_", "DAGSTER_", "MLFLOW_", "AWS_"))}
    # the small profile with the variants `make run` builds: "materialize all" then trains three, not eight
    import yaml

    raw = yaml.safe_load(SMALL_PROFILE.read_text())
    raw["training"]["variants"] = {v: None for v in ("rl_only", "no_refinement", "format_accuracy", "ungated",
                                                     "t_grpo")}
    profile = workdir / "deployment-profile.yaml"
    profile.write_text(yaml.safe_dump(raw))
    base["VIDEORFT_PROFILE"] = str(profile)
    started, databases = start_deployment(workdir, admin, base)
    try:
        yield started
    finally:
        started.stop()
        logs = ARTIFACTS.parent / "deployment-logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(started.logs, logs)
        with admin.cursor() as cur:
            for name in databases:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } ... on PythonError { message } } }"""
BACKFILLS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status } } } }"
ASSETS = """{ assetNodes { assetKey { path } isPartitioned
  assetMaterializations(limit: 1) { runId }
  assetChecksOrError { ... on AssetChecks { checks { name
    executionForLatestMaterialization { status evaluation { severity } } } } } } }"""


def wait_for_backfill(deployment: Deployment, backfill_id: str, timeout: float) -> str:
    def finished() -> str | None:
        status = deployment.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        return None if status in ("REQUESTED", "CANCELING", "FAILING") else status

    return wait_for(finished, f"backfill {backfill_id}", timeout, deployment.procs)


def asset_states(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {"/".join(n["assetKey"]["path"]): n for n in deployment.graphql(ASSETS)["assetNodes"]}


def _browser():
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt install chromium; scripts/setup.sh does it as root)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return pytest.importorskip("playwright.sync_api")


def _dismiss_welcome(page: Any) -> None:
    """A first visit shows Dagster's community dialog; it covers the page."""
    with contextlib.suppress(Exception):  # not shown this time: Playwright's timeout
        page.get_by_role("button", name="Skip").click(timeout=8000)


def test_the_ui_launches_the_curation_chain_and_shows_lineage_and_checks(deployment):
    sync_api = _browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = deployment.webserver_url
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            # the asset graph: every group of the code location
            page.goto(f"{url}/asset-groups", wait_until="networkidle")
            _dismiss_welcome(page)
            for group in ("sources", "prompts", "curation", "training", "evaluation"):
                sync_api.expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=30000)
            page.screenshot(path=ARTIFACTS / "01-asset-graph.png")

            # launch the curation chain: select it, Materialize all, every partition, Launch backfill
            selection = urllib.parse.quote(CURATION_CHAIN)
            page.goto(f"{url}/asset-groups~{selection}/", wait_until="networkidle")
            page.get_by_role("button", name="Materialize all").first.click()
            dialog = page.get_by_role("dialog")
            sync_api.expect(dialog.get_by_text("Launch runs to materialize")).to_be_visible(timeout=30000)
            dialog.get_by_role("button", name="All", exact=True).click()
            page.screenshot(path=ARTIFACTS / "02-launch-curation.png")
            dialog.get_by_role("button", name="Launch backfill").click()
            sync_api.expect(dialog).to_be_hidden(timeout=30000)

            [backfill] = deployment.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
            assert wait_for_backfill(deployment, backfill["id"], 600) == "COMPLETED_SUCCESS"
            page.goto(f"{url}/runs/b/{backfill['id']}", wait_until="networkidle")
            sync_api.expect(page.get_by_text("Completed", exact=False).first).to_be_visible(timeout=30000)
            page.screenshot(path=ARTIFACTS / "03-backfill-succeeded.png", full_page=True)

            # benchmark_scores' upstream lineage reaches the prompt assets
            page.goto(f"{url}/assets/benchmark_scores?view=lineage&lineageScope=upstream&lineageDepth=20",
                      wait_until="networkidle")
            graph_text = page.locator("body")
            sync_api.expect(graph_text).to_contain_text("benchmark_scores", timeout=30000)
            for key in ("refined_cots", "raw_qa_pool"):
                sync_api.expect(graph_text).to_contain_text(key, timeout=30000)
            sync_api.expect(graph_text).to_contain_text("prompts", timeout=30000)  # the prompts group's box
            page.screenshot(path=ARTIFACTS / "04-benchmark-scores-lineage.png")
            lineage_url = page.url
            for prompt in PROMPTS:
                # long names are shortened in nodes and headers ("cot_genera…_prompt"): open the node, and
                # the asset page it leads to names the full key in its address
                page.get_by_text(re.compile(rf"^{prompt[:10]}.*_prompt$")).first.click()
                page.wait_for_url(re.compile(rf"/assets/{prompt}(\?|$)"), timeout=30000)
                page.screenshot(path=ARTIFACTS / f"05-upstream-{prompt}.png")
                page.goto(lineage_url, wait_until="networkidle")

            # the checks of the pool and the CoT set ran and passed
            for asset, check in (("raw_qa_pool", "quarantine_rate"), ("cot_sft_set", "every_sample_accounted")):
                page.goto(f"{url}/assets/{asset}?view=checks", wait_until="networkidle")
                sync_api.expect(page.get_by_text(check).first).to_be_visible(timeout=30000)
                sync_api.expect(page.get_by_text("Passed").first).to_be_visible(timeout=30000)
                page.screenshot(path=ARTIFACTS / f"06-checks-{asset}.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()
    states = asset_states(deployment)
    for key in ("synthetic_world", "raw_qa_pool", *PROMPTS, "structured_video_representations", "initial_cots",
                "refined_cots", "cot_sft_set", "unrefined_cot_sft_set", "rl_set"):
        assert states[key]["assetMaterializations"], f"{key} was not materialized by the UI's backfill"
    assert not states["sft_checkpoint"]["assetMaterializations"]


def test_the_deployment_materializes_the_whole_graph_into_postgres_mlflow_and_s3(deployment, monkeypatch):

    limits = deployment.graphql("{ instance { concurrencyLimits { concurrencyKey slotCount } } }")
    pools = {p["concurrencyKey"]: p["slotCount"] for p in limits["instance"]["concurrencyLimits"]}
    from videorft.profile import load_profile

    assert pools == load_profile(str(SMALL_PROFILE), env={}).dagster.pools == {"llm_api": 4, "gpu": 2}
    variants = load_profile(deployment.env["VIDEORFT_PROFILE"], env={}).training.variants
    assert list(variants) == ["base", "sft_only", "full"]
    # what the UI test has not materialized yet (after it: training and evaluation; without it: everything),
    # as "Materialize all" with "Missing" would
    missing = [key for key, node in asset_states(deployment).items() if not node["assetMaterializations"]]
    assert {"sft_checkpoint", "rl_checkpoint", "benchmark_scores", "scoreboard"} <= set(missing)
    started = time.monotonic()
    result = deployment.graphql(BACKFILL, {"params": {
        "assetSelection": [{"path": key.split("/")} for key in missing], "allPartitions": True,
        "title": "deployment test: the rest of the graph"}})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    assert wait_for_backfill(deployment, result["backfillId"], 900) == "COMPLETED_SUCCESS"
    print(f"{len(missing)} assets through the deployment: {time.monotonic() - started:.0f} s")
    # the backfill evaluates the new RL checkpoint; the new_rl_checkpoint sensor must not do it again
    sensor_runs = deployment.graphql('{ runsOrError(filter: {pipelineName: "benchmark_evaluation"}) '
                                     '{ ... on Runs { results { runId } } } }')["runsOrError"]["results"]
    assert sensor_runs == []
    assert_the_graph_landed_in_postgres_mlflow_and_s3(deployment, monkeypatch)


def assert_the_graph_landed_in_postgres_mlflow_and_s3(deployment: Deployment, monkeypatch: Any) -> None:
    import boto3
    import dagster as dg
    import psycopg2
    import s3fs
    from graph_helpers import data_version, latest_metadata
    from mlflow import MlflowClient

    from videorft.storage import as_path

    states = asset_states(deployment)
    for key, node in states.items():
        assert node["assetMaterializations"], f"{key} has no materialization"
        for check in (node["assetChecksOrError"] or {}).get("checks", []):
            execution = check["executionForLatestMaterialization"]
            if execution is None or execution["status"] == "SUCCEEDED":
                continue
            if node["isPartitioned"] and execution["status"] == "IN_PROGRESS":
                continue  # per partition; "latest materialization" of a partitioned asset has no single answer
            # only a warning may fail: a 2-step GRPO run is too short to judge its trend checks
            assert execution["status"] == "FAILED" and execution["evaluation"]["severity"] == "WARN", (key, check)
    # the runs and their events are in PostgreSQL
    dsn = deployment.env["DAGSTER_POSTGRES_URL"].replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
        assert cur.fetchone()[0] >= 6
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] >= len(states)
    # MLflow: runs in the Postgres-backed server, artifacts in S3
    client = MlflowClient(tracking_uri=deployment.mlflow_url)
    experiment = client.get_experiment_by_name("videorft-tests")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    assert {"benchmark_scores", "rl_checkpoint"} <= {r.data.tags.get("dagster.asset_key") for r in runs}
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    s3 = boto3.client("s3", endpoint_url=deployment.s3_url, region_name="us-east-1",
                      aws_access_key_id="deployment-test", aws_secret_access_key="deployment-test")

    def keys(bucket: str, prefix: str = "") -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    assert any(k.endswith("scores.json") for k in keys("mlflow", "artifacts/"))
    assert any(k.startswith("storage/training/rl_checkpoint/") for k in keys("videorft", "storage/training/"))
    assert keys("dagster-logs", "compute-logs/"), "step logs did not reach S3"

    # lineage by data version, read from the deployment's instance: a score -> the RL checkpoint -> the SFT
    # checkpoint -> the CoT set -> the prompt versions
    for name in ("DAGSTER_POSTGRES_URL", "DAGSTER_COMPUTE_LOG_BUCKET", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, deployment.env[name])
    s3fs.S3FileSystem.clear_instance_cache()
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        rl_version = data_version(instance, "rl_checkpoint", "full")
        for bench in ("vsi_bench", "videomme"):
            score = latest_metadata(instance, "benchmark_scores", f"{bench}|full")
            assert score["variant"] == "full" and score["checkpoint_version"] == rl_version
            assert 0 <= score["score_official"] <= 100 and score["failed_samples"] == 0
            assert score["data"] == "fixtures"  # the small profile has a synthetic world and no benchmark source
            assert score["samples_log"].startswith("s3://videorft/") and as_path(score["samples_log"]).exists()
        rl = latest_metadata(instance, "rl_checkpoint", "full")
        sft = latest_metadata(instance, "sft_checkpoint", "full")
        assert rl["dataset_versions"]["start_checkpoint"] == data_version(instance, "sft_checkpoint", "full")
        assert sft["dataset_versions"]["cot_sft_set"] == data_version(instance, "cot_sft_set")
        prompt_versions = {data_version(instance, p) for p in PROMPTS}
        named = latest_metadata(instance, "cot_sft_set")["prompt_hashes"]  # prompt name -> its version(s)
        assert {h for hashes in named.values() for h in hashes.split(", ")} <= prompt_versions
        assert {v for k, v in score["dataset_versions"].items() if k.startswith("prompt.")} <= prompt_versions
        board = latest_metadata(instance, "scoreboard")
        assert board["dagster/row_count"] == 18 and "full" in board["table"] and "sft_only" in board["table"]
        assert as_path(board["csv"]).exists()
        assert as_path(board["plot_file"]).exists() and board["plot"].startswith("![Table 2")


RUNS = """{ runsOrError { ... on Runs { results { runId status jobName
  tags { key value } } } } }"""


def _runs(deployment: Deployment) -> list[dict[str, Any]]:
    return deployment.graphql(RUNS)["runsOrError"]["results"]


def _ticks(instance: Any, sensor: str) -> int:
    """How many ticks the daemon has run for ``sensor``."""
    [state] = [s for s in instance.all_instigator_state() if s.name == sensor]
    return len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000))


def _wait_ticks(instance: Any, deployment: Deployment, sensors: tuple[str, ...], more: int, timeout: float) -> None:
    start = {s: _ticks(instance, s) for s in sensors}
    wait_for(lambda: all(_ticks(instance, s) >= start[s] + more for s in sensors), f"{more} ticks of {sensors}",
             timeout, deployment.procs)


def _settled(deployment: Deployment) -> list[dict[str, Any]] | None:
    runs = _runs(deployment)
    return None if any(r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED") for r in runs) else runs


def test_the_ui_on_a_scored_state_launches_nothing_and_a_new_checkpoint_is_evaluated_once(deployment, monkeypatch):
    """After the whole graph is materialized (the test above): two ticks of each sensor launch nothing; a new
    rl_checkpoint version gets exactly one evaluation per benchmark, and the scoreboard follows the scores."""
    import dagster as dg

    sync_api = _browser()
    for name in ("DAGSTER_POSTGRES_URL", "DAGSTER_COMPUTE_LOG_BUCKET", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, deployment.env[name])
    sensors = ("new_rl_checkpoint", "scoreboard_follows_scores")
    url = deployment.webserver_url
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            before = wait_for(lambda: _settled(deployment), "no run in flight", 300, deployment.procs)
            _wait_ticks(instance, deployment, sensors, 2, 240)
            after = _settled(deployment) or _runs(deployment)
            assert {r["runId"] for r in after} == {r["runId"] for r in before}, "a sensor launched a run"
            page.goto(f"{url}/automation", wait_until="networkidle")
            _dismiss_welcome(page)
            sync_api.expect(page.get_by_text("new_rl_checkpoint").first).to_be_visible(timeout=30000)
            page.screenshot(path=ARTIFACTS / "07-sensors-on-a-scored-state.png")

            # a new final model of `full` (a new data version, as a re-trained checkpoint would have)
            instance.report_runless_asset_event(dg.AssetMaterialization(
                "rl_checkpoint", partition="full", tags={"dagster/data_version": "deployment-test-new-version"}))

            def evaluated() -> list[dict[str, Any]] | None:
                runs = [r for r in _runs(deployment) if r["jobName"] == "benchmark_evaluation"]
                return runs if len(runs) >= 6 and all(r["status"] == "SUCCESS" for r in runs) else None

            runs = wait_for(evaluated, "the new checkpoint's six evaluations", 600, deployment.procs)
            partitions = sorted({t["key"]: t["value"] for t in r["tags"]}["dagster/partition"] for r in runs)
            assert partitions == sorted(f"{b}|full" for b in BENCHMARK_NAMES)  # one per benchmark, once
            # the scoreboard follows the new scores, launched by the automation sensor alone
            def board_followed() -> bool:
                latest = instance.get_latest_materialization_event(dg.AssetKey("scoreboard"))
                return latest is not None and latest.timestamp > max(
                    instance.get_latest_materialization_event(dg.AssetKey("benchmark_scores")).timestamp, 0)

            wait_for(board_followed, "a scoreboard materialization after the new scores", 300, deployment.procs)
            _wait_ticks(instance, deployment, ("new_rl_checkpoint",), 1, 240)  # and nothing more after
            assert len([r for r in _runs(deployment) if r["jobName"] == "benchmark_evaluation"]) == 6
            page.goto(f"{url}/runs", wait_until="networkidle")
            page.screenshot(path=ARTIFACTS / "08-one-evaluation-per-benchmark.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure-automation.png", full_page=True)
            raise
        finally:
            browser.close()
