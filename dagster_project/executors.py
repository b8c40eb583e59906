"""The run executor the profile asks for (``dagster.executor``)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from videorft.profile import DagsterConfig


def build_executor(config: DagsterConfig) -> dg.ExecutorDefinition:
    """``in_process`` (tiny: fastest on a laptop), ``multiprocess`` (shards in parallel local processes) or
    ``k8s`` (one Kubernetes Job per step, so 256 curation shards spread over the cluster)."""
    if config.executor == "in_process":
        return dg.in_process_executor
    if config.executor == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": config.max_concurrent})
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(k8s_executor_config(config))


def k8s_executor_config(config: DagsterConfig) -> dict[str, Any]:
    """``k8s_job_executor``'s config from the profile: the code image, Secrets as environment, step resources."""
    k8s = config.k8s
    resources = {"cpu": k8s.cpu, "memory": k8s.memory}
    return {
        "job_image": k8s.image,
        "job_namespace": k8s.namespace,
        "image_pull_policy": k8s.image_pull_policy,
        "service_account_name": k8s.service_account,
        "env_secrets": list(k8s.env_secrets),
        "env_config_maps": list(k8s.env_config_maps),
        "volumes": list(k8s.volumes),
        "volume_mounts": list(k8s.volume_mounts),
        "max_concurrent": config.max_concurrent,
        "step_k8s_config": {"container_config": {"resources": {"requests": resources, "limits": resources}}},
    }
