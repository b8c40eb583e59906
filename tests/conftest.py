"""Shared fixtures: a small synthetic world, isolated storage/MLflow/Dagster homes, PostgreSQL and moto S3."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
for _var in ("VIDEORFT_PROFILE", "VIDEORFT_STORAGE_ROOT", "VIDEORFT_QA_SOURCES", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_var, None)

FIXTURES = Path(__file__).parent / "fixtures"
SMALL_PROFILE = FIXTURES / "small-profile.yaml"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(reason: str) -> None:
    """Skip with a reason on a machine without the service; in CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the service must be running)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def small_profile():
    from videorft.profile import load_profile

    return load_profile(str(SMALL_PROFILE), env={})


@pytest.fixture(scope="session")
def small_world(tmp_path_factory, small_profile):
    """A 12-video, 6-image, 80-question world built once per session."""
    from synthetic.world import build_world

    root = tmp_path_factory.mktemp("world")
    manifest = build_world(small_profile.world, str(root))
    return manifest


@pytest.fixture
def world_copy(tmp_path, small_world) -> Path:
    """A private copy of the small world that a test may damage."""
    dest = tmp_path / "world"
    shutil.copytree(small_world.root, dest)
    return dest


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Storage root, MLflow store and media cache under tmp_path; the small profile selected."""
    env = {
        "VIDEORFT_PROFILE": str(SMALL_PROFILE),
        "VIDEORFT_STORAGE_ROOT": str(tmp_path / "storage"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "VIDEORFT_MEDIA_CACHE": str(tmp_path / "media-cache"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "VIDEORFT_RUNS_DIR": str(tmp_path / "runs"),  # no resuming from another test's training run
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1: a real S3 HTTP endpoint for s3fs, UPath and pandas."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint, monkeypatch) -> str:
    """Credentials and endpoint for moto; returns a fresh bucket's name."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    bucket = f"videorft-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return bucket


def postgres_admin() -> Any:
    """An autocommit connection to the server at 127.0.0.1:5432 as a role that may create databases; skips
    (fails under CI=true) when there is none."""
    import psycopg2

    for user in ("postgres", "root"):
        try:
            admin = psycopg2.connect(host="127.0.0.1", port=5432, user=user, dbname="postgres", connect_timeout=3)
        except psycopg2.OperationalError:
            continue
        admin.autocommit = True
        return admin
    require_service("PostgreSQL is not reachable on 127.0.0.1:5432")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server at 127.0.0.1:5432, dropped afterwards."""
    name = f"videorft_test_{uuid.uuid4().hex[:10]}"
    admin = postgres_admin()
    user = admin.info.user
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{user}@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
