"""Re-evaluation: the ``benchmark_evaluation`` job, its weekly schedule, the sensor that evaluates each new
final model (a variant's ``rl_checkpoint``) once, and the automation-condition sensor that keeps the
scoreboard following the scores. The schedule and the sensor request only ``benchmark_scores`` partitions
(variant x benchmark); the automation sensor only targets ``scoreboard``: none of them ever starts training."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.evaluation import latest_scores, score_partition_key, score_partitions
from evaluation.benchmarks import BENCHMARK_NAMES
from videorft.profile import Profile


def _backfill_evaluating(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The id of the backfill that produced this run, if that backfill also selects ``benchmark_scores``."""
    run = instance.get_run_by_id(run_id) if run_id else None
    backfill_id = run.tags.get("dagster/backfill") if run else None
    backfill = instance.get_backfill(backfill_id) if backfill_id else None
    if backfill is not None and dg.AssetKey("benchmark_scores") in (backfill.asset_selection or []):
        return backfill_id
    return None


def _final_variants(instance: dg.DagsterInstance) -> list[str]:
    """Variants whose final model (rl_checkpoint) has been materialized: the ones there is something to score."""
    return sorted(instance.get_materialized_partitions(dg.AssetKey("rl_checkpoint")))


def build_reevaluation(profile: Profile) -> tuple[list[Any], list[Any], list[Any]]:
    """The job, the weekly schedule and the sensor that evaluates each new final model."""
    partitions = score_partitions(profile)
    job = dg.define_asset_job("benchmark_evaluation", selection=dg.AssetSelection.assets("benchmark_scores"),
                              partitions_def=partitions,
                              description="Evaluate one variant's final model on one benchmark per run.")
    cfg = profile.evaluation
    known = set(profile.training.variants)

    @dg.schedule(job=job, cron_schedule=cfg.schedule, execution_timezone=cfg.schedule_timezone,
                 name="weekly_reevaluation", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Re-evaluate every trained variant on all {len(BENCHMARK_NAMES)} benchmarks "
                 "(e.g. after a scoring or "
                 "data fix); never trains.")
    def weekly_reevaluation(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M") if context.scheduled_execution_time else ""
        variants = [v for v in _final_variants(context.instance) if v in known]
        if not variants:
            return dg.SkipReason("no variant has a final model (rl_checkpoint) yet: nothing to re-evaluate")
        return [dg.RunRequest(run_key=f"{stamp}-{v}-{b}", partition_key=score_partition_key(v, b),
                              tags={"videorft.trigger": "schedule"})
                for v in variants for b in BENCHMARK_NAMES]

    interval = profile.dagster.sensor_interval_seconds

    @dg.asset_sensor(asset_key=dg.AssetKey("rl_checkpoint"), job=job, name="new_rl_checkpoint",
                     default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=interval,
                     description="Evaluate each new final model (rl_checkpoint of a variant) on every benchmark "
                     f"({len(BENCHMARK_NAMES)}), "
                     "once per checkpoint version; never trains.")
    def new_rl_checkpoint(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        owner = _backfill_evaluating(context.instance, asset_event.run_id)
        if owner:  # "materialize all" already evaluates this checkpoint: do not pay for it twice
            return dg.SkipReason(f"backfill {owner} materializes benchmark_scores for this checkpoint")
        mat = asset_event.asset_materialization
        variant = mat.partition if mat else None
        if variant not in known:
            return dg.SkipReason(f"rl_checkpoint partition {variant!r} is not a variant of this profile")
        version = (mat.tags or {}).get("dagster/data_version") if mat else None
        version = version or str(asset_event.storage_id if hasattr(asset_event, "storage_id") else "")
        # a version is evaluated once, ever: not again for a benchmark whose latest score is of this version
        # (`make run` or a backfill scored it), and the run key dedupes the sensor's own requests
        scores = latest_scores(context.instance)
        todo = [b for b in BENCHMARK_NAMES if scores.get((variant, b), {}).get("checkpoint_version") != version]
        if not todo:
            return dg.SkipReason(f"rl_checkpoint[{variant}] version {version} is already scored on every benchmark")
        return [dg.RunRequest(run_key=f"{variant}-{version}-{b}", partition_key=score_partition_key(variant, b),
                              tags={"videorft.trigger": "new_rl_checkpoint", "videorft.checkpoint_version": version})
                for b in todo]

    # Dagster's default automation sensor is off until someone turns it on: this one runs by default, so the
    # scoreboard (AutomationCondition.eager) follows new scores without a click.
    follow_scores = dg.AutomationConditionSensorDefinition(
        "scoreboard_follows_scores", target=dg.AssetSelection.assets("scoreboard"),
        default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=interval,
        description="Re-materializes the scoreboard when benchmark_scores change (its eager automation "
        "condition); targets nothing else, so it never trains or evaluates.")
    return [job], [weekly_reevaluation], [new_rl_checkpoint, follow_scores]
