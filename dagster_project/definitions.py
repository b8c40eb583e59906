"""The one Definitions object: assets, checks, resources, jobs and the executor for the active profile.

The profile comes from ``VIDEORFT_PROFILE`` (default ``tiny``); resources are keyed by it, so the same graph
runs on a laptop (local folder, SQLite, simulated experts) and in production (S3, Postgres, real endpoints).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from assets.curation import build_curation_assets, build_prompt_assets
from assets.evaluation import benchmark_jobs_and_triggers, build_evaluation_assets
from assets.sources import build_raw_qa_pool, synthetic_world
from assets.training import build_training_assets
from dagster_project.resources import build_resources
from videorft.profile import DEFAULT_PROFILE, PROFILE_ENV, DagsterConfig, Profile, load_profile

PROFILE_REF = os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


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


def build_definitions(profile: Profile, profile_ref: str) -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    if profile.uses_synthetic_world:
        assets.append(synthetic_world)
    assets.append(build_raw_qa_pool(profile))
    assets += build_prompt_assets(profile)
    assets += build_curation_assets(profile)
    assets += build_training_assets(profile)
    assets += build_evaluation_assets(profile)
    jobs, schedules, sensors = benchmark_jobs_and_triggers(profile)
    executor = build_executor(profile.dagster)
    return dg.Definitions(
        assets=assets,
        resources=build_resources(profile, profile_ref),
        executor=executor,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        metadata={"profile": profile.name},
    )


profile = load_profile(PROFILE_REF)
defs = build_definitions(profile, PROFILE_REF)

