"""Curation assets: the three prompt templates, the per-shard expert stages and the two datasets.

prompts -> structured_video_representations -> initial_cots -> refined_cots -> cot_sft_set, and
raw_qa_pool -> rl_set. Stage assets are partitioned by the pool's hash shards (identity mapping: shard k
reads pool shard k); the datasets roll up every shard. The work lives in ``curation.cot``; these functions
read inputs, call it, write Parquet to the storage root and report.
"""
# No `from __future__ import annotations` here: Dagster reads the context and resource annotations at runtime.

import json
from collections import Counter
from typing import Any

import dagster as dg
import pandas as pd

from assets.metadata import (
    column_lineage,
    column_schema,
    counts_table,
    funnel_table,
    markdown_table,
    ownership,
    rounded,
    versions_table,
)
from curation import cot, report
from curation.clip_filter import text_similarity
from curation.ingest import read_pool
from curation.prompts import PromptSet, load_prompt
from curation.stages import STAGES, Stage
from resources.core import MlflowResource, ProfileResource, StorageResource
from resources.experts import ExpertsResource
from videorft.plots import count_bars, funnel, histogram, markdown_image
from videorft.profile import LLM_API_POOL, Profile
from videorft.progress import throttled
from videorft.storage import read_parquet, write_parquet

CURATION_FOLDER = "curation"
# Columns the SFT and RL sets carry over from raw_qa_pool unchanged (their column lineage)
POOL_CARRIED = ("problem_id", "problem", "data_type", "problem_type", "options", "data_source", "category",
                "sample_id", "media_sha256")


# ---- prompts -------------------------------------------------------------------------------------------

def _prompt_asset(stage: Stage, loaded: PromptSet, folder: str) -> dg.AssetsDefinition:
    name = stage.prompt

    @dg.asset(
        name=f"{name}_prompt",
        group_name="prompts", **ownership("prompts"),
        code_version=loaded.content_hash,
        kinds={"text"},
        description=f"The {stage.role}'s prompt ({stage.name}): {stage.prompt_description} Files under {folder}; "
        "code and data version = content hash.",
    )
    def prompt_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult[dict[str, Any]]:
        current = load_prompt(name, folder)
        if current.content_hash != loaded.content_hash:
            raise dg.Failure(f"prompt '{name}' changed on disk since the code location was loaded "
                             f"({loaded.content_hash} -> {current.content_hash}): reload the code location "
                             "(UI: Deployment > Reload) and materialize again")
        preview = "\n\n".join(f"**{f}**\n\n```\n{text.strip()[:3000]}\n```" for f, text in current.files.items())
        return dg.MaterializeResult(
            value=current.to_manifest(),
            data_version=dg.DataVersion(current.content_hash),
            metadata={"content_hash": current.content_hash, "files": list(current.files),
                      "folder": dg.MetadataValue.path(folder), "text": dg.MetadataValue.md(preview)},
        )

    return prompt_asset


def build_prompt_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    folder = profile.curation.resolved_prompts_dir()
    return [_prompt_asset(stage, load_prompt(stage.prompt, folder), str(folder)) for stage in STAGES.values()]


# ---- shared plumbing -----------------------------------------------------------------------------------

def shard_partitions(profile: Profile) -> dg.StaticPartitionsDefinition:
    width = max(3, len(str(profile.ingest.shards - 1)))
    return dg.StaticPartitionsDefinition([f"{i:0{width}d}" for i in range(profile.ingest.shards)])


class _Calls:
    """Expert call records kept for MLflow tracing, sampled deterministically by cache key."""

    def __init__(self, rate: float, cap: int = 50) -> None:
        self.rate, self.cap = rate, cap
        self.kept: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        if record["cached"] or len(self.kept) >= self.cap:
            return
        if int(record["key"][:8], 16) / 0xFFFFFFFF < self.rate:
            self.kept.append(record)


def _publish(context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource, asset: str,
             table: pd.DataFrame, client: Any, calls: _Calls, params: dict[str, Any],
             checks: list[dg.AssetCheckResult], extra: dict[str, Any]) -> dg.MaterializeResult:
    """Write a stage table under an immutable content-hash name, log to MLflow, return the materialization."""
    content_hash = cot.table_hash(table)
    uri = storage.uri(CURATION_FOLDER, asset, context.partition_key, f"{content_hash}.parquet")
    write_parquet(table, uri)
    failed = table[table["status"] != "ok"]
    usage = client.usage.to_dict()
    reasons = Counter(r.split(":", 1)[0] if r.startswith(tuple(STAGES)) else r[:80]  # failed upstream: by stage
                      for r in failed["reason"])
    with mlflow.start_run(context) as run:
        run.log_params({**params, "content_hash": content_hash})
        run.log_metrics({"rows": len(table), "ok": len(table) - len(failed), "failed": len(failed),
                         **{f"expert_{k}": v for k, v in usage.items()}})
        if len(failed):
            run.log_text(failed.drop(columns=[c for c in ("representation", "cot") if c in failed]).to_csv(
                index=False), f"{asset}/failures.csv")
        traced = run.log_traces(f"{asset}.{client.role}", calls.kept)
    manifest = {"uri": uri, "content_hash": content_hash, "partition": context.partition_key, "rows": len(table),
                "ok": len(table) - len(failed), "failed": len(failed)}
    metadata = {
        "dagster/row_count": len(table),
        "ok_rows": len(table) - len(failed),
        "failed_rows": len(failed),
        "failure_reasons": counts_table(dict(reasons.most_common(10)), "reason"),
        "uri": dg.MetadataValue.path(uri),
        "content_hash": content_hash,
        "dagster/column_schema": column_schema({c: cot.STAGE_COLUMN_DESCRIPTIONS.get(c, c) for c in table.columns}),
        "expert_model": client.config.model,
        "expert_usage": dg.MetadataValue.md(pd.DataFrame([usage]).to_markdown(index=False, floatfmt=".4g")),
        "expert_requests_sent": usage["requests"],
        "expert_cache_hits": usage["cached"],
        "expert_cost_usd": rounded(usage["cost_usd"], 6),
        "mlflow_traces": traced,
        "mlflow_run_url": dg.MetadataValue.url(run.url),
        **extra,
    }
    context.log.info(f"{asset}[{context.partition_key}]: {len(table) - len(failed)} ok, {len(failed)} failed; "
                     f"{usage['requests']} requests sent, {usage['cached']} answered from cache")
    return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(content_hash), metadata=metadata,
                                check_results=checks)


def _parse_rate_check(asset: str, table: pd.DataFrame, bound: float, eligible: pd.Series | None = None
                      ) -> dg.AssetCheckResult:
    scope = table if eligible is None else table[eligible]
    rate = float((scope["status"] == "ok").mean()) if len(scope) else 1.0
    return dg.AssetCheckResult(
        check_name="parse_rate", asset_key=asset, passed=rate >= bound,
        metadata={"parse_rate": rate, "bound": bound, "rows": len(scope)},
        description=None if rate >= bound else f"only {rate:.1%} of responses were usable (< {bound:.0%}): see "
        "failure_reasons; a prompt or endpoint problem, or an expert that ignores the format")


def _parse_rate_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("parse_rate", asset=asset,
                             description="share of expert responses that parsed and validated >= "
                             "curation.min_parse_rate (failures from upstream stages are not counted)")


def _stage_table(manifest: dict[str, Any]) -> pd.DataFrame:
    return read_parquet(manifest["uri"])


def _all_shards(manifests: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frames = [_stage_table(m) for _, m in sorted(manifests.items())]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---- stage assets --------------------------------------------------------------------------------------

def _sft_set_checks(name: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("format_valid", asset=name, blocking=True,
                          description="every kept row has one <think>..</think> process and one "
                          "<answer>..</answer> solution (100%)"),
        dg.AssetCheckSpec("retention_rate", asset=name,
                          description="kept / pool within curation.retention_bounds (paper: 102K of 310K)"),
        dg.AssetCheckSpec("every_sample_accounted", asset=name, blocking=True,
                          description="kept + dropped-with-reason = pool"),
    ]


def _sft_set_check_results(valid: pd.Series, retention: float, bounds: tuple[float, float], kept: int, dropped: int,
                           pool: int) -> list[dg.AssetCheckResult]:
    lo, hi = bounds
    return [
        dg.AssetCheckResult(check_name="format_valid", passed=bool(valid.all()),
                            metadata={"valid_rows": int(valid.sum()), "rows": kept}),
        dg.AssetCheckResult(check_name="retention_rate", passed=lo <= retention <= hi,
                            metadata={"retention": retention, "bounds": [lo, hi]}),
        dg.AssetCheckResult(check_name="every_sample_accounted", passed=kept + dropped == pool,
                            metadata={"kept": kept, "dropped": dropped, "pool": pool}),
    ]


def _stage_versions(stages: dict[str, dict[str, dict[str, Any]] | None]) -> dict[str, dict[str, str]]:
    """Each upstream stage's content hash per shard (a stage the set was not built from is left out)."""
    return {stage: {k: m["content_hash"] for k, m in sorted(shards.items())}
            for stage, shards in stages.items() if shards is not None}


def _sft_set_counts(kept: pd.DataFrame, dropped: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {"by_problem_type": dict(sorted(Counter(kept["problem_type"]).items())),
            "by_category": dict(sorted(Counter(kept["category"]).items())),
            "dropped_by_stage": dict(Counter(dropped["stage"]).most_common()),
            "dropped_by_problem_type": dict(Counter(dropped["problem_type"]).most_common())}


def _sft_set_figures(name: str, stages: dict[str, int], counts: dict[str, dict[str, int]], lengths: list[int],
                     title: str) -> dict[str, Any]:
    """The set's report figures: the curation funnel, CoT lengths, and the counts by type, category and stage."""
    return {"funnel": funnel(stages, title),
            "cot_lengths": histogram(lengths, f"CoT length ({name})", "tokens"),
            "counts": count_bars({"problem type": counts["by_problem_type"], "category": counts["by_category"],
                                  "dropped at": counts["dropped_by_stage"]}, name)}


def _build_sft_set(context: dg.AssetExecutionContext, raw_qa_pool: dict[str, Any],
                   structured_video_representations: dict[str, dict[str, Any]],
                   initial_cots: dict[str, dict[str, Any]], refined_cots: dict[str, dict[str, Any]] | None,
                   profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """Filter the final CoTs (refined, or the initial ones when ``refined_cots`` is None) into an SFT set."""
    name = context.asset_key.to_user_string()
    prof = profile.profile
    fcfg = prof.curation.filter
    pool = read_pool(raw_qa_pool)
    reps, initial = _all_shards(structured_video_representations), _all_shards(initial_cots)
    refined = _all_shards(refined_cots) if refined_cots is not None else None
    cot_stage = "refined_cots" if refined_cots is not None else "initial_cots"
    kept, dropped = cot.filter_cots(pool, reps, initial, refined, fcfg,
                                    lambda a, b: text_similarity(a, b, fcfg.clip_model, fcfg.clip_pretrained))
    content_hash = cot.table_hash(kept)
    base = storage.path(CURATION_FOLDER, name, f"v-{content_hash}")
    write_parquet(kept, base / f"{name}.parquet")
    (base / f"{name}.jsonl").write_text(kept.to_json(orient="records", lines=True, force_ascii=False))
    write_parquet(dropped, base / "dropped.parquet")

    stages = report.funnel_counts(pool, reps, initial, refined, len(kept))
    lengths = report.token_lengths(kept["process"].tolist())
    words = report.top_words(kept["process"].tolist())
    counts = _sft_set_counts(kept, dropped)
    retention = len(kept) / len(pool) if len(pool) else 0.0
    valid = cot.format_valid(kept) if len(kept) else pd.Series(dtype=bool)
    lo, hi = prof.curation.retention_bounds
    samples_md = report.sample_markdown(kept, prof.curation.report_samples)
    with mlflow.start_run(context) as run:
        run.log_params({"clip_model": fcfg.clip_model, "clip_pretrained": fcfg.clip_pretrained,
                        "clip_threshold": fcfg.clip_threshold, "regression_tolerance": fcfg.regression_tolerance,
                        "content_hash": content_hash, "pool_version": raw_qa_pool["content_hash"]})
        run.log_metrics({"kept": len(kept), "dropped": len(dropped), "retention": retention,
                         "mean_cot_tokens": sum(lengths) / len(lengths) if lengths else 0.0})
        run.log_dict({"funnel": stages, **counts, "top_words": words}, f"{name}/report.json")
        figures = _sft_set_figures(name, stages, counts, lengths, f"{name}: {len(kept)} of {len(pool)} kept")
        for figure_name, figure in figures.items():
            run.log_figure(figure, f"{name}/{figure_name}.png")
        plots = "\n\n".join(markdown_image(f, f"{name} {n}") for n, f in figures.items())
        run.log_text(samples_md, f"{name}/samples.md")
        run.log_text(dropped.to_csv(index=False), f"{name}/dropped.csv")
    checks = _sft_set_check_results(valid, retention, (lo, hi), len(kept), len(dropped), len(pool))
    manifest = {"uri": str(base), "parquet": str(base / f"{name}.parquet"),
                "jsonl": str(base / f"{name}.jsonl"), "dropped": str(base / "dropped.parquet"),
                "content_hash": content_hash, "row_count": len(kept), "dropped_rows": len(dropped),
                "pool_version": raw_qa_pool["content_hash"],
                "stage_versions": _stage_versions({"structured_video_representations": structured_video_representations,
                                                   "initial_cots": initial_cots, "refined_cots": refined_cots}),
                "prompt_hashes": sorted({h for v in kept["prompt_hashes"] for h in json.loads(v).values()}),
                "prompt_hashes_by_prompt": cot.prompt_hashes_by_prompt(kept["prompt_hashes"])}
    metadata = {
        "dagster/row_count": len(kept),
        "dropped_rows": len(dropped),
        "retention": rounded(retention),
        "funnel": funnel_table(stages),
        "by_problem_type": counts_table(counts["by_problem_type"], "problem_type"),
        "by_category": counts_table(counts["by_category"], "category"),
        "dropped_by_stage": counts_table(counts["dropped_by_stage"], "stage",
                                         order=[s for s in stages if s in counts["dropped_by_stage"]] or None),
        "dropped_by_problem_type": counts_table(counts["dropped_by_problem_type"], "problem_type"),
        "mean_cot_tokens": rounded(sum(lengths) / len(lengths) if lengths else 0.0, 1),
        "top_words": counts_table(words, "word"),
        "plots": dg.MetadataValue.md(plots),
        "sample_cots": dg.MetadataValue.md(samples_md),
        "dropped_preview": dg.MetadataValue.md(markdown_table(dropped, prof.curation.report_samples * 2)),
        "uri": dg.MetadataValue.path(str(base)),
        "content_hash": content_hash,
        "prompt_hashes": versions_table({p: ", ".join(h) for p, h in manifest["prompt_hashes_by_prompt"].items()}),
        "dagster/column_schema": column_schema({c: cot.COLUMN_DESCRIPTIONS[c] for c in cot.SFT_COLUMNS},
                                               {"clip_similarity": "float"}),
        "dagster/column_lineage": column_lineage({
            **{c: [("raw_qa_pool", c)] for c in POOL_CARRIED},
            "path": [("raw_qa_pool", "media_uri")],
            "process": [(cot_stage, "process")],
            "solution": [(cot_stage, "solution")],
            "clip_similarity": [(cot_stage, "process"), ("raw_qa_pool", "process")]}),
        "mlflow_run_url": dg.MetadataValue.url(run.url),
    }
    return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(content_hash), metadata=metadata,
                                check_results=checks)


def stage_asset(stage: Stage, parts: dg.StaticPartitionsDefinition) -> dg.AssetsDefinition:
    """One expert stage of the stage table (``curation.stages``), one partition per curation shard: it reads its
    pool shard, the shards of the stages it declares and its prompts, calls its expert, and publishes."""
    checks = [_parse_rate_spec(stage.name), *(dg.AssetCheckSpec(n, asset=stage.name, description=d)
                                               for n, d in stage.checks.items())]

    @dg.asset(
        name=stage.name, group_name="curation", **ownership("curation"), code_version="1",
        partitions_def=parts, pool=LLM_API_POOL, kinds={"python", "parquet"},
        ins={"raw_qa_pool": dg.AssetIn(), **{k: dg.AssetIn() for k in (*stage.reads, *_prompt_keys(stage))}},
        check_specs=checks, description=stage.description,
    )
    def _stage(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource,
               experts: ExpertsResource, mlflow: MlflowResource, **upstream: Any):
        prof = profile.profile
        calls = _Calls(prof.curation.trace_sample_rate)
        client = experts.client(stage.role, calls)
        prompts = {p: PromptSet.from_manifest(upstream[f"{p}_prompt"]) for p in stage.prompts}
        inputs = stage.inputs(read_pool(upstream["raw_qa_pool"], int(context.partition_key)),
                              {r: _stage_table(upstream[r]) for r in stage.reads}, prompts, client, prof,
                              throttled(context.log.info, f"{stage.name}[{context.partition_key}] {stage.done}"))
        table = cot.run(stage.run(inputs))
        said = stage.report(table, inputs)
        prompt_hash = prompts[stage.prompt].content_hash
        frames = stage.frame_spec(prof)
        results = [_parse_rate_check(stage.name, table, prof.curation.min_parse_rate, said.eligible),
                   *(dg.AssetCheckResult(check_name=c.name, asset_key=stage.name, passed=c.passed,
                                         metadata=c.metadata) for c in said.checks)]
        return _publish(context, storage, mlflow, stage.name, table, client, calls,
                        {"model": client.config.model, "prompt_hash": prompt_hash,
                         **({"frames": json.dumps(cot.spec_dict(frames))} if frames else {})}, results,
                        {**said.metrics, "prompt_hash": prompt_hash})

    return _stage


def _prompt_keys(stage: Stage) -> tuple[str, ...]:
    return tuple(f"{p}_prompt" for p in stage.prompts)


def sft_set_asset(name: str, final_cots: str, description: str) -> dg.AssetsDefinition:
    """An SFT set: the filter over ``final_cots`` (refined_cots, or initial_cots for Table 2's ablation)."""
    upstream = ("raw_qa_pool", "structured_video_representations", "initial_cots", final_cots)

    @dg.asset(name=name, group_name="curation", **ownership("curation"), code_version="1",
              kinds={"python", "parquet"},
              ins={key: dg.AssetIn() for key in dict.fromkeys(upstream)}, check_specs=_sft_set_checks(name),
              description=description)
    def _set(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource,
             mlflow: MlflowResource, **inputs: Any):
        return _build_sft_set(context, inputs["raw_qa_pool"], inputs["structured_video_representations"],
                              inputs["initial_cots"], inputs.get("refined_cots"), profile, storage, mlflow)

    return _set


def rl_set_asset() -> dg.AssetsDefinition:
    """VideoRFT-RL: every valid pool sample in the RL format."""

    @dg.asset(
        name="rl_set", group_name="curation", **ownership("curation"), code_version="1", kinds={"python", "parquet"},
        check_specs=[dg.AssetCheckSpec("every_pool_sample_present", asset="rl_set", blocking=True,
                                       description="one RL row per valid pool sample")],
        description="VideoRFT-RL (the paper's RL-310K): every valid pool sample in the RL format "
        "(question, media, <answer> ground truth), as Parquet and JSONL.",
    )
    def rl_set(context: dg.AssetExecutionContext, raw_qa_pool: dict[str, Any], storage: StorageResource,
               mlflow: MlflowResource):
        pool = read_pool(raw_qa_pool)
        rows = cot.rl_rows(pool)
        content_hash = cot.table_hash(rows)
        base = storage.path(CURATION_FOLDER, "rl_set", f"v-{content_hash}")
        write_parquet(rows, base / "rl_set.parquet")
        (base / "rl_set.jsonl").write_text(rows.to_json(orient="records", lines=True, force_ascii=False))
        counts = {"by_problem_type": dict(sorted(Counter(rows["problem_type"]).items())),
                  "by_data_type": dict(sorted(Counter(rows["data_type"]).items()))}
        with mlflow.start_run(context) as run:
            run.log_params({"content_hash": content_hash, "pool_version": raw_qa_pool["content_hash"]})
            run.log_metrics({"rows": len(rows)})
            run.log_dict(counts, "rl_set/counts.json")
        manifest = {"uri": str(base), "parquet": str(base / "rl_set.parquet"), "jsonl": str(base / "rl_set.jsonl"),
                    "content_hash": content_hash, "row_count": len(rows), "pool_version": raw_qa_pool["content_hash"]}
        return dg.MaterializeResult(
            value=manifest, data_version=dg.DataVersion(content_hash),
            metadata={"dagster/row_count": len(rows),
                      "by_problem_type": counts_table(counts["by_problem_type"], "problem_type"),
                      "by_data_type": counts_table(counts["by_data_type"], "data_type"),
                      "dagster/column_schema": column_schema({c: cot.COLUMN_DESCRIPTIONS[c] for c in cot.RL_COLUMNS}),
                      "dagster/column_lineage": column_lineage({
                          **{c: [("raw_qa_pool", c)] for c in POOL_CARRIED if c in cot.RL_COLUMNS},
                          "path": [("raw_qa_pool", "media_uri")]}),
                      "uri": dg.MetadataValue.path(str(base)), "content_hash": content_hash,
                      "pool_version": raw_qa_pool["content_hash"], "mlflow_run_url": dg.MetadataValue.url(run.url),
                      "preview": dg.MetadataValue.md(markdown_table(rows[["sample_id", "problem_type", "problem",
                                                                           "solution"]], 10))},
            check_results=[dg.AssetCheckResult(check_name="every_pool_sample_present",
                                               passed=len(rows) == len(pool) and rows["sample_id"].is_unique,
                                               metadata={"rows": len(rows), "pool": len(pool)})])

    return rl_set


def build_curation_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    cot.check_rl_only_templates(profile.curation.filter.rl_only_templates)  # a typo fails when the code loads
    parts = shard_partitions(profile)
    cot_sft_set = sft_set_asset(
        "cot_sft_set", "refined_cots",
        "VideoRFT-CoT (the paper's CoT-102K): refined CoTs that pass the filter (structured types: right final "
        "answer; open types: CLIP similarity to the reference >= threshold), in the VideoRFT schema with "
        "provenance, as Parquet and JSONL, plus every dropped sample with its reason.")
    unrefined_cot_sft_set = sft_set_asset(
        "unrefined_cot_sft_set", "initial_cots",
        "The paper's \"w/o CoT Refinement\" SFT data (Table 2): the blind initial CoTs (Eq. 1) filtered by the "
        "same rules as cot_sft_set, so the two sets differ only in the cross-modal refinement. sft_checkpoint "
        "trains on it when the profile sets training.sft_data: unrefined.")
    return [*(stage_asset(stage, parts) for stage in STAGES.values()), cot_sft_set, unrefined_cot_sft_set,
            rl_set_asset()]
