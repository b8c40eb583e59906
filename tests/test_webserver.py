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
from graph_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


LAUNCH = """mutation { launchPartitionBackfill(backfillParams: {assetSelection: [{path: ["raw_qa_pool"]}]}) {
  __typename } }"""


def _post(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())


@pytest.mark.slow
def test_read_only_webserver_serves_the_asset_graph_on_loopback_and_refuses_launches(isolated_env):
    from dagster_project.instance import ensure_dagster_home

    ensure_dagster_home(Path(isolated_env["DAGSTER_HOME"]))
    port = free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    # its own session: the webserver ignores SIGINT/SIGTERM sent to it alone, so signal the group
    proc = subprocess.Popen([str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port),
                             "--read-only"], cwd=ROOT,
                            env={**os.environ, **isolated_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        query = {"query": "{ assetNodes { assetKey { path } } }"}
        deadline = time.monotonic() + 120
        nodes = None
        while time.monotonic() < deadline:
            try:
                body = _post(port, query["query"])
                nodes = body.get("data", {}).get("assetNodes")
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert nodes, "webserver did not serve the asset graph within 120 s"
        assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {"synthetic_world", "raw_qa_pool"}
        refused = _post(port, LAUNCH)
        assert refused["data"]["launchPartitionBackfill"]["__typename"] == "UnauthorizedError", refused
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        public = _non_loopback_address()
        if public:  # bound to loopback only: another interface's address is refused
            with pytest.raises(OSError), socket.create_connection((public, port), timeout=3):
                pass
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
