"""Re-evaluation: the ``benchmark_evaluation`` job, its weekly schedule and the sensor that evaluates each new
RL checkpoint. Both request only ``benchmark_scores`` partitions: neither ever starts training."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.evaluation import BENCHMARK_PARTITIONS, checkpoint_input
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


def build_reevaluation(profile: Profile) -> tuple[list[Any], list[Any], list[Any]]:
    """The job, the schedule and (when the profile evaluates the RL checkpoint) the sensor."""
    job = dg.define_asset_job("benchmark_evaluation", selection=dg.AssetSelection.assets("benchmark_scores"),
                              partitions_def=BENCHMARK_PARTITIONS,
                              description="Evaluate the profile's checkpoint on one benchmark per run.")
    cfg = profile.evaluation

    @dg.schedule(job=job, cron_schedule=cfg.schedule, execution_timezone=cfg.schedule_timezone,
                 name="weekly_reevaluation", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Re-evaluate all six benchmarks (e.g. after a scoring or data fix).")
    def weekly_reevaluation(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M") if context.scheduled_execution_time else ""
        return [dg.RunRequest(run_key=f"{stamp}-{b}", partition_key=b, tags={"videorft.trigger": "schedule"})
                for b in BENCHMARK_NAMES]

    sensors = []
    if checkpoint_input(profile) == "rl_checkpoint":
        @dg.asset_sensor(asset_key=dg.AssetKey("rl_checkpoint"), job=job, name="new_rl_checkpoint",
                         default_status=dg.DefaultSensorStatus.RUNNING,
                         description="Evaluate each new RL checkpoint on all six benchmarks.")
        def new_rl_checkpoint(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
            owner = _backfill_evaluating(context.instance, asset_event.run_id)
            if owner:  # "materialize all" already evaluates this checkpoint: do not pay for it twice
                return dg.SkipReason(f"backfill {owner} materializes benchmark_scores for this checkpoint")
            mat = asset_event.asset_materialization
            version = (mat.tags or {}).get("dagster/data_version") if mat else None
            version = version or str(asset_event.storage_id if hasattr(asset_event, "storage_id") else "")
            return [dg.RunRequest(run_key=f"{version}-{b}", partition_key=b,
                                  tags={"videorft.trigger": "new_rl_checkpoint",
                                        "videorft.checkpoint_version": version})
                    for b in BENCHMARK_NAMES]

        sensors.append(new_rl_checkpoint)
    return [job], [weekly_reevaluation], sensors
