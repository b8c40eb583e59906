"""One partition's run of the materialize command, in this process or in a worker process of ``--parallel``
(a module of its own: worker processes import it by name)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    label: str
    run_id: str
    success: bool
    materialized: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


SUMMARY_KEYS = ("dagster/row_count", "global_step", "trained_on", "method", "reused_from_variant", "skipped_stage",
                "final_loss", "final_reward", "final_accuracy_reward", "final_kl", "score_official", "score_videorft",
                "score_lenient", "csv")


def _short_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the summary shows of a materialization (the rest is in the UI)."""
    return {k: getattr(metadata[k], "value", getattr(metadata[k], "path", metadata[k]))
            for k in SUMMARY_KEYS if k in metadata}


def execute(job: Any, instance: Any, keys: list[Any], partition: str | None, label: str,
             log_level: str = "warning") -> Outcome:
    from dagster import execute_job

    tags: dict[str, str] = {}
    if partition is not None and hasattr(partition, "keys_by_dimension"):
        # a multi-dimensional partition: Dagster reads it from the dimension tags
        tags.update({f"dagster/partition/{d}": k for d, k in partition.keys_by_dimension.items()})
        tags["dagster/partition"] = str(partition)
    elif partition:
        tags["dagster/partition"] = partition
    tags["videorft/launched_by"] = "python -m dagster_project materialize"
    run_config = {"loggers": {"console": {"config": {"log_level": log_level.upper()}}}}
    result = execute_job(job, instance=instance, asset_selection=keys, tags=tags, run_config=run_config)
    outcome = Outcome(label=label, run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        outcome.materialized.append((mat.asset_key.to_user_string(), mat.partition or "",
                                     _short_metadata(dict(mat.metadata))))
    for evaluation in result.get_asset_check_evaluations():
        skipped = evaluation.metadata.get("skipped")  # a stage the variant does not have: nothing was judged
        state = f"skipped: {skipped.value}" if skipped else evaluation.severity.value
        where = f"[{partition}]" if partition else ""
        outcome.checks.append((f"{evaluation.asset_key.to_user_string()}{where}:{evaluation.check_name}",
                               evaluation.passed, state))
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and (error.cls_name or "").startswith("Dagster"):
            # show the pipeline's own exception, not Dagster's wrapper around it
            error = error.cause
        outcome.errors.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return outcome


def execute_in_child(keys: list[str], partition: str | dict[str, str] | None, label: str,
                      log_level: str) -> Outcome:
    """One partition's run in a worker process of ``--parallel``: its own instance handle and job."""
    from dagster import AssetKey, DagsterInstance, MultiPartitionKey
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from dagster_project import definitions

    repo = ReconstructableRepository.for_module("dagster_project.definitions", "defs", os.getcwd())
    job = repo.get_reconstructable_job(definitions.defs.resolve_implicit_global_asset_job_def().name)
    key = MultiPartitionKey(partition) if isinstance(partition, dict) else partition
    with DagsterInstance.get() as instance:
        return execute(job, instance, [AssetKey.from_user_string(k) for k in keys], key, label, log_level)
