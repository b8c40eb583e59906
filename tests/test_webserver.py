"""The Dagster UI starts on 127.0.0.1 against a project-local DAGSTER_HOME and serves the code location."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_webserver_serves_the_asset_graph_on_loopback(isolated_env):
    from dagster_project.instance import ensure_dagster_home

    ensure_dagster_home(Path(isolated_env["DAGSTER_HOME"]))
    port = _free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    # its own session: the webserver ignores SIGINT/SIGTERM sent to it alone (FIELD-NOTES), so signal the group
    proc = subprocess.Popen([str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                            env={**os.environ, **isolated_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        query = {"query": "{ assetNodes { assetKey { path } } }"}
        deadline = time.monotonic() + 120
        nodes = None
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps(query).encode(),
                                             headers={"Content-Type": "application/json"})
                body = json.loads(urllib.request.urlopen(req, timeout=5).read())
                nodes = body.get("data", {}).get("assetNodes")
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert nodes, "webserver did not serve the asset graph within 120 s"
        assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {"synthetic_world", "raw_qa_pool"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
