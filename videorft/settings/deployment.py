"""Profile section: Deployment: MLflow, the Dagster pools, executors and sensors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from videorft.settings import Strict as _Strict

MLFLOW_UI_URL_ENV = "MLFLOW_UI_URL"
MLFLOW_PORT_ENV = "MLFLOW_PORT"  # where `make mlflow-ui` serves a local store


class MlflowConfig(_Strict):
    tracking_uri: str | None = None  # None: a SQLite store under the project's local state folder
    experiment: str = "videorft"
    # Where people open MLflow's UI (the links in Dagster and the summary). None: the tracking server itself
    # when it is HTTP, else `make mlflow-ui`'s address (127.0.0.1:$MLFLOW_PORT, default 5000).
    ui_url: str | None = None


# Concurrency pools (docker/dagster.yaml): expert-calling steps and GPU-holding steps across all runs.
LLM_API_POOL = "llm_api"
GPU_POOL = "gpu"


class K8sExecutorConfig(_Strict):
    """``k8s_job_executor``: each step of a run in its own Kubernetes Job (curation shards in parallel pods).
    The code image runs the steps; GPU work still goes to training pods through the launcher."""

    image: str = "ghcr.io/videorft/videorft-code:latest"
    namespace: str = "videorft"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str | None = "videorft"
    env_secrets: list[str] = Field(default_factory=list)
    env_config_maps: list[str] = Field(default_factory=list)
    cpu: str = "2"
    memory: str = "8Gi"
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)


class DagsterConfig(_Strict):
    """How a run executes its steps: in one process (tiny), in parallel local processes (a workstation), or
    as one Kubernetes Job per step (a cluster); ``pools`` are the limits written to the instance."""

    executor: Literal["in_process", "multiprocess", "k8s"] = "in_process"
    max_concurrent: Annotated[int, Field(ge=1)] = 2
    # how often the daemon evaluates the re-evaluation sensors (Dagster's default is 30 s); a new checkpoint
    # waits at most this long for its evaluations
    sensor_interval_seconds: Annotated[int, Field(ge=1)] = 30
    k8s: K8sExecutorConfig = K8sExecutorConfig()
    pools: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {LLM_API_POOL: 4, GPU_POOL: 1})
