"""Source assets: the synthetic video-QA world (tiny profile) and the raw QA pool every stage reads."""
# No `from __future__ import annotations` here: Dagster reads the context and resource annotations at runtime.


from collections import Counter
from typing import Any

import dagster as dg
import pandas as pd

from assets.metadata import column_schema, counts_table, markdown_table, ownership
from curation.ingest import (
    POOL_COLUMN_DESCRIPTIONS,
    POOL_COLUMNS,
    QASource,
    ingest,
    load_probe_cache,
    save_probe_cache,
    write_pool,
)
from resources.core import MlflowResource, ProfileResource, StorageResource
from videorft.plots import count_bars, markdown_image
from videorft.profile import Profile
from videorft.schema import PROBLEM_TYPES

WORLD_FOLDER = "world"
POOL_FOLDER = "raw_qa_pool"


@dg.asset(
    group_name="sources",
    **ownership("sources"),
    code_version="1",
    kinds={"python", "video"},
    description="Procedurally generated video-QA world: h264 videos and stills with their ground-truth scene "
    "scripts and QA files in the VideoRFT schema. Deterministic by seed; an identical world is reused.",
)
def synthetic_world(context: dg.AssetExecutionContext, profile: ProfileResource,
                    storage: StorageResource) -> dg.MaterializeResult[dict[str, Any]]:
    cfg = profile.profile.world
    if cfg is None:
        raise dg.Failure("profile has no 'world' section: the synthetic world is only built for profiles that use it")

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            context.log.info(f"rendered {done}/{total} media")

    from synthetic.world import build_world  # the embedded default's world: production never loads it

    manifest = build_world(cfg, storage.uri(WORLD_FOLDER), progress=progress)
    return dg.MaterializeResult(
        value=manifest.to_dict(),
        data_version=dg.DataVersion(manifest.content_hash),
        metadata={
            "uri": dg.MetadataValue.path(manifest.root),
            "videos": manifest.videos,
            "images": manifest.images,
            "questions": manifest.questions,
            "content_hash": manifest.content_hash,
            "by_problem_type": counts_table(manifest.by_problem_type, "problem_type"),
            "by_category": counts_table(manifest.by_category, "category"),
        },
    )


def configured_sources(profile: Profile, storage: StorageResource) -> list[QASource]:
    sources: list[QASource] = []
    for src in profile.sources:
        if src.kind == "synthetic":
            sources += [
                QASource(f"{src.name}/videos", storage.uri(WORLD_FOLDER, "qa_videos.json")),
                QASource(f"{src.name}/images", storage.uri(WORLD_FOLDER, "qa_images.jsonl")),
            ]
        else:
            assert src.uri is not None
            sources.append(QASource(src.name, src.uri, src.media_root))
    return sources


def pool_checks(pool: pd.DataFrame, rows_in: int, quarantined: int, bound: float) -> list[dg.AssetCheckResult]:
    schema_ok = list(pool.columns) == list(POOL_COLUMNS)
    present = Counter(pool["problem_type"])
    missing = [t for t in PROBLEM_TYPES if present.get(t, 0) == 0]
    rate = quarantined / rows_in if rows_in else 0.0
    return [
        dg.AssetCheckResult(check_name="schema", passed=schema_ok,
                            metadata={"columns": list(pool.columns), "expected": list(POOL_COLUMNS)}),
        dg.AssetCheckResult(check_name="every_problem_type_present", passed=not missing,
                            metadata={"missing": missing, "present": dict(present)}),
        dg.AssetCheckResult(check_name="quarantine_rate", passed=rate <= bound,
                            metadata={"quarantine_rate": rate, "bound": bound, "quarantined": quarantined,
                                      "rows_in": rows_in},
                            description=None if rate <= bound else
                            f"{quarantined} of {rows_in} rows quarantined ({rate:.1%} > {bound:.1%}); "
                            "see the quarantine table for the reasons"),
    ]


def _pool_counts(result: Any) -> dict[str, dict[str, int]]:
    """The pool's rows by problem type, category, data type and shard, and the quarantine's by reason."""
    return {
        "by_problem_type": dict(sorted(Counter(result.pool["problem_type"]).items())),
        "by_category": dict(sorted(Counter(result.pool["category"]).items())),
        "by_data_type": dict(sorted(Counter(result.pool["data_type"]).items())),
        "by_shard": {str(k): int(v) for k, v in sorted(Counter(result.pool["shard"]).items())},
        "quarantine_reasons": dict(Counter(result.quarantine["reason"]).most_common()),
    }


def _pool_metadata(result: Any, manifest: dict[str, Any], counts: dict[str, dict[str, int]], figure: Any,
                   run: Any, preview_rows: int) -> dict[str, Any]:
    """The pool asset's metadata: counts first, then tables, plots and previews (the UI keeps this order)."""
    schema = column_schema(POOL_COLUMN_DESCRIPTIONS, POOL_COLUMNS)
    by_source = pd.DataFrame.from_dict(result.by_source, orient="index").rename_axis("source").reset_index()
    return {
        "dagster/row_count": len(result.pool),
        "dagster/column_schema": schema,
        "quarantined_rows": len(result.quarantine),
        "duplicate_rows": len(result.duplicates),
        "rows_in": result.rows_in,
        "uri": dg.MetadataValue.path(manifest["uri"]),
        "content_hash": manifest["content_hash"],
        "by_problem_type": counts_table(counts["by_problem_type"], "problem_type"),
        "by_category": counts_table(counts["by_category"], "category"),
        "by_data_type": counts_table(counts["by_data_type"], "data_type"),
        "by_shard": counts_table(counts["by_shard"], "shard", order=counts["by_shard"]),
        "quarantine_reasons": counts_table(counts["quarantine_reasons"], "reason"),
        "by_source": dg.MetadataValue.md(by_source.to_markdown(index=False)),
        "plots": dg.MetadataValue.md(markdown_image(figure, "raw_qa_pool counts")),
        "media_probed": result.media.attrs["probed"],
        "media_reused_from_cache": result.media.attrs["reused"],
        "preview": dg.MetadataValue.md(markdown_table(
            result.pool[["sample_id", "shard", "problem_type", "category", "problem", "answer", "path"]],
            preview_rows)),
        "quarantine_preview": dg.MetadataValue.md(markdown_table(
            result.quarantine[["source", "source_row", "reason", "detail"]], preview_rows)),
        "mlflow_run_url": dg.MetadataValue.url(run.url),
        "mlflow_run_id": run.run_id,
    }


def build_raw_qa_pool(profile: Profile) -> dg.AssetsDefinition:
    """The pool asset for a profile: it depends on the synthetic world only when the profile uses it."""

    @dg.asset(
        name="raw_qa_pool",
        group_name="curation",
        **ownership("curation"),
        code_version="1",
        kinds={"python", "parquet"},
        deps=[synthetic_world] if profile.uses_synthetic_world else [],
        check_specs=[
            dg.AssetCheckSpec("schema", asset="raw_qa_pool", description="pool columns are the documented schema"),
            dg.AssetCheckSpec("every_problem_type_present", asset="raw_qa_pool",
                              description="all five problem types have at least one sample"),
            dg.AssetCheckSpec("quarantine_rate", asset="raw_qa_pool", blocking=True,
                              description="share of quarantined rows stays under ingest.max_quarantine_rate"),
        ],
        description="Every configured QA source validated, normalised and de-duplicated, with stable sample ids "
        "and shard numbers. Rows in = kept + quarantined + duplicates.",
    )
    def raw_qa_pool(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource,
                    mlflow: MlflowResource):
        prof = profile.profile
        cfg = prof.ingest
        sources = configured_sources(prof, storage)
        cache_uri = storage.uri(POOL_FOLDER, "media_probe.parquet")
        previous = load_probe_cache(cache_uri)
        result = ingest(sources, cfg.shards, cfg.probe_workers, previous, prof.media_cache_dir(),
                        log=context.log.info)
        save_probe_cache(pd.concat([previous[~previous["uri"].isin(result.media["uri"])], result.media])
                         if previous is not None else result.media, cache_uri)
        manifest = write_pool(result, storage.uri(POOL_FOLDER), cfg.shards)
        pool = result.pool
        counts = _pool_counts(result)
        with mlflow.start_run(context) as run:
            run.log_params({"profile": prof.name, "shards": cfg.shards,
                            "sources": ",".join(s.uri for s in sources),
                            "max_quarantine_rate": cfg.max_quarantine_rate,
                            "content_hash": manifest["content_hash"]})
            run.log_metrics({"rows_in": result.rows_in, "row_count": len(pool),
                             "quarantined_rows": len(result.quarantine), "duplicate_rows": len(result.duplicates),
                             "media_probed": result.media.attrs["probed"],
                             "media_reused": result.media.attrs["reused"]})
            run.log_dict({**counts, "by_source": result.by_source, "manifest": manifest}, "raw_qa_pool/counts.json")
            run.log_text(result.quarantine.to_csv(index=False), "raw_qa_pool/quarantine.csv")
            figure = count_bars({"problem type": counts["by_problem_type"], "category": counts["by_category"],
                                 "quarantine reason": counts["quarantine_reasons"]},
                                f"raw_qa_pool: {len(pool)} kept of {result.rows_in}")
            run.log_figure(figure, "raw_qa_pool/counts.png")
        checks = pool_checks(pool, result.rows_in, len(result.quarantine), cfg.max_quarantine_rate)
        metadata = _pool_metadata(result, manifest, counts, figure, run, cfg.preview_rows)
        return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(manifest["content_hash"]),
                                    metadata=metadata, check_results=checks)

    return raw_qa_pool
