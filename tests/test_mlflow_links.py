"""Links to MLflow recorded in Dagster's metadata open for a UI started later on another port (issue 34)."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from graph_helpers import free_port, materialize_all, served
from test_curation_chain import defs_for, profile_with
from test_deployment_e2e import CHROMIUM, _browser

from dagster_project.mlflow_ui import start_redirects
from videorft.mlflow_links import recorded_addresses

ROOT = Path(__file__).resolve().parent.parent


def test_a_redirect_keeps_the_path_and_a_taken_port_is_reported_not_fatal():
    target, recorded, taken = free_port(), free_port(), socket.socket()
    taken.bind(("127.0.0.1", 0))
    said: list[str] = []
    servers = start_redirects([f"http://127.0.0.1:{recorded}", f"http://127.0.0.1:{taken.getsockname()[1]}",
                               f"http://127.0.0.1:{target}", "https://mlflow.example.org"], target, said.append)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{recorded}/ajax-api/2.0/x?y=1", method="HEAD")
        opener = urllib.request.build_opener(type("NoFollow", (urllib.request.HTTPRedirectHandler,),
                                                  {"redirect_request": lambda *a, **k: None}))
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(request, timeout=5)
        assert answer.value.code == 307
        assert answer.value.headers["Location"] == f"http://127.0.0.1:{target}/ajax-api/2.0/x?y=1"
        assert len(servers) == 1 and any("is taken" in s for s in said)
    finally:
        taken.close()
        for server in servers:
            server.shutdown()


@pytest.mark.slow
def test_a_recorded_mlflow_link_opens_its_run_with_the_ui_on_another_port(isolated_env, tmp_path, monkeypatch):
    sync_api = _browser()
    recorded_port, served_port = free_port(), free_port()
    monkeypatch.setenv("MLFLOW_PORT", str(recorded_port))  # the UI's address when the asset materialized
    ref = profile_with(tmp_path)
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs_for(ref), instance, "group:sources or key:raw_qa_pool"))
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_qa_pool"))
        link = event.asset_materialization.metadata["mlflow_run_url"].value
    assert link.startswith(f"http://127.0.0.1:{recorded_port}/#/experiments/")
    assert recorded_addresses(isolated_env["MLFLOW_TRACKING_URI"]) == [f"http://127.0.0.1:{recorded_port}"]
    run_id = link.rsplit("/", 1)[1].split("?")[0]
    # later, the UI on another port
    env = {**os.environ, "MLFLOW_PORT": str(served_port), "VIDEORFT_PROFILE": ref}
    with served([sys.executable, "-m", "dagster_project", "mlflow-ui"], env,
                f"http://127.0.0.1:{served_port}/health") as ui, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(link, wait_until="domcontentloaded")  # the link as Dagster shows it
            assert page.url.startswith(f"http://127.0.0.1:{served_port}/") and run_id in page.url
            sync_api.expect(page.get_by_text("raw_qa_pool").first).to_be_visible(timeout=30000)
        finally:
            browser.close()
    output = ui.stdout.read()
    assert f"links recorded for http://127.0.0.1:{recorded_port} redirect to" in output


def test_the_printed_mlflow_address_is_the_experiments_runs_and_never_waits_on_a_server(tmp_path):
    from mlflow import MlflowClient

    from videorft.mlflow_links import find_experiment_address

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert find_experiment_address(store, "http://127.0.0.1:5000", "e") == "http://127.0.0.1:5000"  # no store yet
    experiment = MlflowClient(store).create_experiment("e")
    assert find_experiment_address(store, "http://127.0.0.1:5000/", "e") == (
        f"http://127.0.0.1:5000/#/experiments/{experiment}?workflowType=machine_learning")
    # a tracking server is not asked (one that is down would hold the summary through MLflow's retries)
    assert find_experiment_address("http://127.0.0.1:9", "http://127.0.0.1:9", "e") == "http://127.0.0.1:9"
