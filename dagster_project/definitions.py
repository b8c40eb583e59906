"""The one Definitions object: assets, checks, resources, jobs and the executor for the active profile.

The profile comes from ``VIDEORFT_PROFILE`` (default ``tiny``); resources are keyed by it, so the same graph
runs on a laptop (local folder, SQLite, simulated experts) and in production (S3, Postgres, real endpoints).
"""

from __future__ import annotations

import os

import dagster as dg

from assets.curation import build_curation_assets, build_prompt_assets
from assets.evaluation import build_evaluation_assets
from assets.pretraining import build_pretraining_assets
from assets.sources import build_raw_qa_pool, synthetic_world
from assets.training import build_training_assets
from dagster_project.executors import build_executor
from dagster_project.reevaluation import build_reevaluation
from resources.core import build_resources
from videorft.profile import DEFAULT_PROFILE, PROFILE_ENV, Profile, load_profile

PROFILE_REF = os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def build_definitions(profile: Profile, profile_ref: str) -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    if profile.uses_synthetic_world:
        assets.append(synthetic_world)
    assets.append(build_raw_qa_pool(profile))
    assets += build_prompt_assets(profile)
    assets += build_curation_assets(profile)
    assets += build_training_assets(profile)
    assets += build_evaluation_assets(profile)
    pretraining = build_pretraining_assets(profile)
    jobs, schedules, sensors = build_reevaluation(profile)
    executor = build_executor(profile.dagster)
    return dg.Definitions(
        assets=[*assets, *(a for a in pretraining if isinstance(a, dg.AssetsDefinition))],
        asset_checks=[c for c in pretraining if not isinstance(c, dg.AssetsDefinition)],
        resources=build_resources(profile, profile_ref),
        executor=executor,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        metadata={"profile": profile.name},
    )


profile = load_profile(PROFILE_REF)
defs = build_definitions(profile, PROFILE_REF)

