"""``make mlflow-ui`` (``python -m dagster_project mlflow-ui``): MLflow's UI over the profile's local store, with
the links Dagster recorded kept working when the UI is served on another port.

A materialization records its ``mlflow_run_url`` at the UI address of that moment (``videorft.mlflow_links`` notes
each address used beside the store). Served on another port, this command also answers
on each recorded local port it can bind with a redirect to the same path on the real one; the browser carries
the link's ``#/experiments/../runs/..`` over the redirect, so the link lands on its run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from videorft.mlflow_links import find_experiment_address, local_store, recorded_addresses
from videorft.profile import MLFLOW_PORT_ENV, Profile

LOCAL_HOSTS = ("127.0.0.1", "localhost")


def redirect_server(port: int, target_port: int) -> ThreadingHTTPServer:
    """Answers every GET on ``port`` with a redirect to the same path on ``target_port`` (bound, not started)."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{target_port}{self.path}")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass  # the terminal is MLflow's

    return ThreadingHTTPServer(("127.0.0.1", port), Redirect)


def start_redirects(addresses: list[str], port: int, say: Callable[[str], None] = print) -> list[ThreadingHTTPServer]:
    """A redirect to ``port`` on each recorded local address served elsewhere, where its port is free."""
    servers = []
    for address in addresses:
        parts = urlsplit(address)
        if parts.hostname not in LOCAL_HOSTS or parts.port in (None, port):
            continue
        try:
            server = redirect_server(parts.port, port)
        except OSError:
            say(f"mlflow-ui: port {parts.port} is taken, so links recorded for {address} will not open; serve on "
                f"it (MLFLOW_PORT={parts.port}) once it is free")
            continue
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        say(f"mlflow-ui: links recorded for {address} redirect to http://127.0.0.1:{port}")
    return servers


def serve(profile: Profile, port: int | None) -> int:
    """Run MLflow's UI on ``port`` (default ``$MLFLOW_PORT``, else the profile's address) until interrupted."""
    tracking = profile.resolved_mlflow_uri()
    if local_store(tracking) is None:
        print(f"mlflow-ui: the profile tracks to {tracking}, which serves its own UI: open "
              f"{profile.resolved_mlflow_ui_url()}")
        return 0
    default = urlsplit(profile.resolved_mlflow_ui_url()).port or 5000
    port = port or int(os.environ.get(MLFLOW_PORT_ENV) or default)
    servers = start_redirects(recorded_addresses(tracking) or [profile.resolved_mlflow_ui_url(env={})], port)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking, "-h", "127.0.0.1", "-p",
               str(port)]
    page = find_experiment_address(tracking, f"http://127.0.0.1:{port}", profile.mlflow.experiment)
    print(f"mlflow-ui: {page} (store {tracking})", flush=True)
    process = subprocess.Popen(command)
    signal.signal(signal.SIGTERM, lambda signum, frame: process.terminate())  # a stop reaches MLflow's server too
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
    finally:
        for server in servers:
            server.shutdown()
