"""Expert API keys come only from the environment (Dagster ``EnvVar``) and end up nowhere else.

The experts here are the simulator started with a recognisable fake key that it demands on every request, so
the curation chain succeeds only if the key really was sent; afterwards no byte of the key may be found in
the event log, the run config, asset metadata, MLflow params/tags, any log file, or any file under the
storage root, the MLflow store or ``DAGSTER_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("DESCRIBER", "REASONER", "REFINER")


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path.relative_to(folder)))
    return hits


def test_the_files_scan_finds_a_planted_key(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "log.txt").write_bytes(b"... Bearer sk-planted ...")
    assert _files_containing(tmp_path, b"sk-planted") == ["a/b/log.txt"]


@pytest.mark.slow
def test_an_expert_api_key_appears_nowhere_after_a_materialization(isolated_env, small_profile, tmp_path):
    import dagster as dg
    from mlflow import MlflowClient

    from synthetic.simulator.server import start_simulator

    key = f"sk-videorft-FAKE-{uuid.uuid4().hex}"
    env = {**os.environ, **isolated_env, "HF_HUB_OFFLINE": "1"}
    log_file = tmp_path / "materialize.log"

    def materialize(selection: str, extra: dict[str, str]) -> None:
        with log_file.open("ab") as log:
            done = subprocess.run([sys.executable, "-m", "dagster_project", "materialize", "--select", selection],
                                  cwd=ROOT, env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT, timeout=900)
        assert done.returncode == 0, log_file.read_text()[-4000:]

    materialize("synthetic_world", {})
    world = Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "world"
    simulator = start_simulator(small_profile.curation.simulator, str(world), api_key=key)
    try:
        experts = {}
        for role in ROLES:
            experts[f"VIDEORFT_{role}_BASE_URL"] = simulator.base_url
            experts[f"VIDEORFT_{role}_API_KEY"] = key
        materialize('not group:"training" and not group:"evaluation"', experts)
        served = simulator.simulator.stats.by_status
    finally:
        simulator.stop()
    assert served[200] > 0 and served[401] == 0  # every request carried the key

    needle = key.encode()
    # Dagster: event log (every run's records), run config, tags and asset metadata, read through the API
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME: isolated_env's
        runs = instance.get_runs()
        assert len(runs) >= 2
        for run in runs:
            assert key not in json.dumps(run.run_config, default=str)
            assert key not in json.dumps(run.tags, default=str)
            for record in instance.all_logs(run.run_id):
                assert key not in str(record), f"event log of {run.run_id}: {record.dagster_event_type}"
        for asset_key in instance.all_asset_keys():
            event = instance.get_latest_materialization_event(asset_key)
            if event is not None:
                assert key not in str(event.asset_materialization.metadata), asset_key
    # MLflow: params and tags of every run
    client = MlflowClient(tracking_uri=isolated_env["MLFLOW_TRACKING_URI"])
    tracked = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    assert tracked, "the curation chain logged no MLflow runs"
    for run in tracked:
        assert key not in json.dumps(run.data.params) and key not in json.dumps(run.data.tags)
    # every byte on disk: DAGSTER_HOME (SQLite stores, compute logs), the storage root (expert response cache,
    # datasets, manifests), the MLflow store and its artifacts, and the command's own log
    assert _files_containing(tmp_path, needle) == []
