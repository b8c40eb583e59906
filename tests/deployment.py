"""The compose deployment's processes, run natively on this machine: PostgreSQL (the server on 127.0.0.1:5432,
two fresh databases), moto's S3 server standing in for MinIO, the MLflow tracking server (Postgres backend
store, S3 artifacts), and Dagster's gRPC code server, webserver and daemon with ``docker/dagster.yaml`` and
``docker/workspace.yaml`` — the same files the images use, with the same environment variables."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BUCKETS = ("videorft", "mlflow", "dagster-logs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(probe: Callable[[], Any], what: str, timeout: float, procs: list[subprocess.Popen] | None = None
             ) -> Any:
    """Poll ``probe`` until it returns something truthy; fail early if a process it depends on died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs or []:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[:3]} exited with {proc.returncode}")
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    webserver_url: str
    mlflow_url: str
    s3_url: str
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.webserver_url}/graphql",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(req, timeout=timeout).read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def start(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        # its own session: dagster processes ignore SIGTERM sent to them alone; signal the group
        proc = subprocess.Popen(command, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Stop every service and whatever it started (run workers, Pipes children, log tailers)."""
        import psutil

        descendants = []
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(proc.pid).children(recursive=True)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _, alive = psutil.wait_procs(descendants, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()


def create_database(admin: Any, name: str) -> None:
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')


def start_deployment(workdir: Path, admin: Any, base_env: dict[str, str]) -> tuple[Deployment, list[str]]:
    """Start every service; returns the deployment and the databases to drop afterwards."""
    suffix = uuid.uuid4().hex[:8]
    databases = [f"videorft_dagster_{suffix}", f"videorft_mlflow_{suffix}"]
    for name in databases:
        create_database(admin, name)
    user = admin.info.user
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    home = workdir / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "docker" / "dagster.yaml", home / "dagster.yaml")
    s3_port, mlflow_port, code_port, web_port = (free_port() for _ in range(4))
    s3_url = f"http://127.0.0.1:{s3_port}"
    env = {
        **base_env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{user}@127.0.0.1:5432/{databases[0]}",
        "DAGSTER_COMPUTE_LOG_BUCKET": "dagster-logs",
        "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
        "DAGSTER_CODE_SERVER_PORT": str(code_port),
        "VIDEORFT_STORAGE_ROOT": "s3://videorft/storage",
        "VIDEORFT_MEDIA_CACHE": str(workdir / "media-cache"),
        "VIDEORFT_RUNS_DIR": str(workdir / "runs"),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "AWS_ENDPOINT_URL_S3": s3_url,
        "AWS_ACCESS_KEY_ID": "deployment-test",
        "AWS_SECRET_ACCESS_KEY": "deployment-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    deployment = Deployment(home, env, f"http://127.0.0.1:{web_port}", env["MLFLOW_TRACKING_URI"], s3_url, logs)
    try:
        s3 = deployment.start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)])
        wait_for(lambda: urllib.request.urlopen(s3_url, timeout=2).status == 200, "moto S3", 60, [s3])
        import boto3

        client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                              aws_access_key_id="deployment-test", aws_secret_access_key="deployment-test")
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        mlflow = deployment.start("mlflow", [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
            "--backend-store-uri", f"postgresql+psycopg2://{user}@127.0.0.1:5432/{databases[1]}",
            "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts", "--workers", "1"])
        pools = subprocess.run([sys.executable, "-m", "dagster_project", "pools"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
        if pools.returncode != 0:
            raise RuntimeError(f"dagster_project pools failed: {pools.stderr[-2000:]}")
        code = deployment.start("code", [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p",
                                         str(code_port), "-m", "dagster_project.definitions"])
        wait_for(lambda: urllib.request.urlopen(f"{env['MLFLOW_TRACKING_URI']}/health", timeout=2).status == 200,
                 "MLflow server", 120, [mlflow])
        wait_for(lambda: subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port)],
                                        env=env, capture_output=True, timeout=30).returncode == 0,
                 "code server", 180, [code])
        workspace = str(ROOT / "docker" / "workspace.yaml")
        web = deployment.start("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                             "-w", workspace])
        deployment.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        wait_for(lambda: deployment.graphql("{ assetNodes { id } }", timeout=10)["assetNodes"], "webserver", 180,
                 [web])
    except BaseException:
        deployment.stop()
        with admin.cursor() as cur:
            for name in databases:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        raise
    return deployment, databases
