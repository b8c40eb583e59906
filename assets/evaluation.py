"""Evaluation assets: ``benchmark_scores`` (one partition per (variant, benchmark)) and ``scoreboard``.

``benchmark_scores[variant|benchmark]`` evaluates the variant's final model (``rl_checkpoint`` of that variant,
which is its SFT checkpoint or the base model where the variant stops earlier) with ``evaluation.run``: in
the asset's own process on a local launcher, or ``python -m evaluation.run`` in a GPU pod over Dagster Pipes; and
records both protocols' scores, per-category scores, failures and the per-sample log in Dagster and MLflow.
Its metadata carries the checkpoint's data version and the dataset versions (and prompt hashes) the
checkpoint was trained on, so a score leads back to the prompts through data versions as well as through
the graph. ``scoreboard`` is Table 2: every variant's latest scores with intervals and paired differences
(``evaluation.table2``), next to the paper's.
"""

import io
import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from assets.metadata import ownership, versions_table
from assets.training import partitions_note, variant_partitions
from evaluation.benchmarks import BENCHMARK_NAMES, BENCHMARKS, check_sources
from evaluation.scoring import PROTOCOLS
from resources.core import MlflowResource, ProfileResource, StorageResource
from resources.launchers import LauncherResource
from videorft.plots import grouped_bars, markdown_image
from videorft.profile import GPU_POOL, Profile
from videorft.progress import throttled
from videorft.provenance import stable_hash
from videorft.storage import as_path

EVALUATION_FOLDER = "evaluation"
BENCHMARK_PARTITIONS = dg.StaticPartitionsDefinition(list(BENCHMARK_NAMES))
VARIANT_DIM, BENCHMARK_DIM = "variant", "benchmark"
# benchmark_scores[v|b] reads rl_checkpoint[v], the variant's final model
with warnings.catch_warnings():  # beta in Dagster 1.13; the behaviour we rely on is the documented one
    warnings.simplefilter("ignore")
    VARIANT_MAPPING = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=VARIANT_DIM)


def score_partitions(profile: Profile) -> dg.MultiPartitionsDefinition:
    """benchmark_scores' partitions: every (variant, benchmark) pair."""
    return dg.MultiPartitionsDefinition({BENCHMARK_DIM: BENCHMARK_PARTITIONS, VARIANT_DIM: variant_partitions(profile)})


def score_partition_key(variant: str, benchmark: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({VARIANT_DIM: variant, BENCHMARK_DIM: benchmark})


def _evaluate(context: dg.AssetExecutionContext, checkpoint: dict[str, Any], profile: ProfileResource,
              storage: StorageResource, mlflow: MlflowResource, launcher: LauncherResource) -> dg.MaterializeResult:
    prof = profile.profile
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    label, name = keys[VARIANT_DIM], keys[BENCHMARK_DIM]
    model, version = checkpoint["uri"], checkpoint["content_hash"]
    lineage = dict(checkpoint.get("lineage", {}))
    # keyed by the checkpoint, not the variant: two variants with one model (a reused stage) share the cache
    output = storage.uri(EVALUATION_FOLDER, f"v-{version}", name)
    video = prof.video.eval  # the one owner of evaluation's frames/pixels, passed explicitly to the child
    args = ["--model", model, "--benchmarks", name, "--output", output, "--model-version", f"v-{version}",
            "--frames", str(video.frames), "--max-pixels", str(video.max_pixels),
            "--min-pixels", str(video.min_pixels)]
    with mlflow.start_run(context, extra_tags={"videorft.variant": label,
                                               "videorft.checkpoint_version": version}) as run:
        run.log_params({"variant": label, "checkpoint_version": version, "model": model, "benchmark": name,
                        "frames": video.frames, "max_pixels": video.max_pixels, "min_pixels": video.min_pixels,
                        "max_new_tokens": prof.evaluation.max_new_tokens, "greedy": True,
                        **{f"lineage.{k}": v for k, v in lineage.items()}})
        env = {"VIDEORFT_PROFILE": profile.name, "VIDEORFT_STORAGE_ROOT": storage.root}
        result = _run_evaluation(context, launcher, args, env, name)
        settings = result["settings"]  # what the evaluation actually used
        score = result["benchmarks"][name]
        metrics = {f"{p}.overall": score[p]["overall"] for p in PROTOCOLS if score[p]["overall"] is not None}
        metrics.update({f"{p}.category.{_metric_name(c)}": v for p in PROTOCOLS
                        for c, v in score[p]["categories"].items() if v is not None})
        run.log_metrics({**metrics, "failed": score["failed"], "samples": score["samples"]})
        run.log_dict(score, f"benchmark_scores/{name}/scores.json")
        log_uri = score["samples_log"]
        source = score.get("source") or {}
        if source.get("questions"):
            run.log_dataset(name, source["questions"], stable_hash(source), "evaluation", rows=score["samples"])
        run.log_text(as_path(log_uri).read_text(), f"benchmark_scores/{name}/samples.jsonl")
    categories = pd.DataFrame({p: pd.Series(score[p]["categories"]) for p in PROTOCOLS})
    categories["questions"] = pd.Series(score["official"]["category_counts"])
    failure_rate = score["failed"] / score["samples"] if score["samples"] else 0.0
    value = {"benchmark": name, "variant": label, "checkpoint_version": version, "model": model,
             "scores": {p: score[p]["overall"] for p in PROTOCOLS}, "failed": score["failed"],
             "samples": score["samples"], "samples_log": log_uri, "lineage": lineage,
             "paper_7b": BENCHMARKS[name].paper_7b}
    metadata = {
        "variant": label, "benchmark": name, "stages": checkpoint.get("stages", ""),
        "rewards": ", ".join(checkpoint.get("rewards", [])) or "(none)",
        "checkpoint_version": version, "model": dg.MetadataValue.path(model),
        **{f"score_{p}": _pct(score[p]["overall"]) for p in PROTOCOLS},
        **{f"stderr_{p}": _pct(score[p]["stderr"]) for p in PROTOCOLS},
        "ci95_official_low": _pct(score["official"]["ci95_low"]),
        "ci95_official_high": _pct(score["official"]["ci95_high"]),
        "paper_7b": BENCHMARKS[name].paper_7b,
        # fixtures: questions generated from the profile's held-out synthetic world, not the benchmark's release
        "data": score.get("data", "source"),
        "video_frames": settings["frames"], "video_max_pixels": settings["max_pixels"],
        "categories": dg.MetadataValue.md(categories.map(lambda v: round(v * 100, 1) if isinstance(v, float) else v)
                                          .to_markdown()),
        "samples": score["samples"], "failed_samples": score["failed"],
        "chunks_cached": score["chunks_cached"], "chunks_generated": score["chunks_generated"],
        "dataset_versions": versions_table({"checkpoint": version, **lineage}),
        "samples_log": dg.MetadataValue.path(log_uri),
        "mlflow_run_url": dg.MetadataValue.url(run.url),
    }
    bound = prof.evaluation.max_failure_rate
    checks = [dg.AssetCheckResult(check_name="failure_rate", passed=failure_rate <= bound,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  # Dagster keeps checks per asset, not per partition: name the partition
                                  metadata={"partition": f"{name}|{label}", "variant": label, "benchmark": name,
                                            "failed": score["failed"], "samples": score["samples"],
                                            "failure_rate": round(failure_rate, 4), "bound": bound})]
    return dg.MaterializeResult(value=value, metadata=metadata, check_results=checks,
                                data_version=dg.DataVersion(stable_hash({"checkpoint": version, "scores": value})))


def _run_evaluation(context: dg.AssetExecutionContext, launcher: LauncherResource, args: list[str],
                    env: dict[str, str], name: str) -> dict[str, Any]:
    """``python -m evaluation.run ARGS``: in this process on a local launcher (a launch would pay torch's import
    for each of the variants x benchmarks partitions), else in a one-GPU pod over Pipes. Returns its result."""
    if launcher.on_this_machine:
        from evaluation.benchmarks import BenchmarkDataError
        from evaluation.run import resolve_job
        from videorft.pipes import quiet_console
        from videorft.profile import ProfileError

        quiet_console()
        try:
            job = resolve_job([*args, "--profile", env["VIDEORFT_PROFILE"]])
        except (ProfileError, BenchmarkDataError) as exc:
            raise dg.Failure(f"benchmark_scores[{name}]: {exc}") from exc
        reporters: dict[str, Callable[[int, int], None]] = {}

        def progress(benchmark: str, done: int, total: int) -> None:
            if benchmark not in reporters:
                reporters[benchmark] = throttled(context.log.info, f"{benchmark} generated or cached")
            reporters[benchmark](done, total)

        try:
            return job.run(progress)
        except BenchmarkDataError as exc:  # a question file that cannot be read: what the CLI reports with exit 2
            raise dg.Failure(f"benchmark_scores[{name}]: {exc}") from exc
    invocation = launcher.launch(context, "evaluation.run", args, env, single_process=True,
                                 extras={"asset": "benchmark_scores", "benchmark": name})
    results = [m["result"] for m in invocation.get_custom_messages()
               if isinstance(m, dict) and m.get("kind") == "result"]
    if not results:
        raise dg.Failure(f"benchmark_scores[{name}]: the evaluation process reported no result; see its logs")
    return results[-1]


def _metric_name(category: str) -> str:
    """MLflow metric names allow word characters, - . : / and spaces ("Humanities & Social Sciences")."""
    return re.sub(r"[^\w\-.:/ ]", "_", category.replace("&", "and"))


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def build_evaluation_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    check_sources(profile)  # at code-location load: names registered, no silent stand-in data
    checks = [dg.AssetCheckSpec("failure_rate", asset="benchmark_scores",
                                description="samples whose generation failed <= "
                                f"{profile.evaluation.max_failure_rate:.0%} (evaluation.max_failure_rate)")]

    @dg.asset(name="benchmark_scores", group_name="evaluation", **ownership("evaluation"), code_version="2",
              kinds={"python", "lm-eval"},
              pool=GPU_POOL, partitions_def=score_partitions(profile), check_specs=checks,
              ins={"checkpoint": dg.AssetIn(key="rl_checkpoint", partition_mapping=VARIANT_MAPPING)},
              description=f"The {len(BENCHMARK_NAMES)} video reasoning benchmarks of the registry (paper 4.1: "
              f"{', '.join(BENCHMARK_NAMES)}) for each Table 2 variant's final model: every scoring protocol "
              f"({', '.join(PROTOCOLS)}), per-category scores, bootstrap errors clustered by video, "
              "failures counted and never scored; per-sample logs on the storage root and in MLflow."
              + partitions_note(profile))
    def benchmark_scores(context: dg.AssetExecutionContext, checkpoint: dict[str, Any], profile: ProfileResource,
                         storage: StorageResource, mlflow: MlflowResource, launcher: LauncherResource):
        return _evaluate(context, checkpoint, profile, storage, mlflow, launcher)

    reference = profile.training.reference_variant

    @dg.asset(name="scoreboard", group_name="evaluation", **ownership("evaluation"), code_version="2", kinds={"python"},
              deps=[benchmark_scores], automation_condition=dg.AutomationCondition.eager(),
              check_specs=[dg.AssetCheckSpec(name, asset="scoreboard", description=text)
                           for name, text in SCOREBOARD_CHECKS.items()],
              description="Table 2 in miniature. On this page: one line per variant (official protocol) and one of "
              "uniform chance, in Table 2's order; the full table, the pooled multiple-choice table and the plot "
              "open from their metadata entries (table, pooled_multiple_choice, plot), and scoreboard.csv / "
              "scoreboard.png sit at the csv and plot_file paths.\n\n"
              f"Every variant's latest scores on the {len(BENCHMARK_NAMES)} benchmarks (every "
              f"protocol) with 95% "
              f"intervals (bootstrap over videos), each variant's paired difference from '{reference}', the "
              "multiple-choice questions pooled, uniform chance per benchmark, and the paper's VideoRFT-7B numbers in "
              "a table of their own (not plotted: a tiny model's bars beside them compare nothing).")
    def scoreboard(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource,
                   mlflow: MlflowResource):
        return _build_scoreboard(context, profile.profile, storage, mlflow, reference)

    return [benchmark_scores, scoreboard]


SCOREBOARD_CHECKS = {
    "every_variant_scored": "every variant `make run` builds (training.run_variants) has a score on every benchmark",
    "intervals_on_enough_questions": "every Table 2 interval rests on at least evaluation.min_questions scored "
                                     "questions",
}


def scoreboard_checks(table: pd.DataFrame, prof: Profile) -> list[dg.AssetCheckResult]:
    """The scoreboard's checks: nothing of ``make run``'s Table 2 is missing, and no interval is computed on
    too few questions to mean anything."""
    scored = set(zip(table["variant"], table["benchmark"], strict=True))
    missing = [f"{v}/{b}" for v in prof.training.run_variants for b in BENCHMARK_NAMES if (v, b) not in scored]
    counts = table["samples"] - table["failed"]  # the scored questions behind each row's interval
    small = [f"{v}/{b}: {int(n)}" for v, b, n in zip(table["variant"], table["benchmark"], counts, strict=True)
             if n < prof.evaluation.min_questions]
    return [
        dg.AssetCheckResult(check_name="every_variant_scored", passed=not missing, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"missing": ", ".join(missing) or "(none)",
                                      "variants": ", ".join(prof.training.run_variants)}),
        dg.AssetCheckResult(check_name="intervals_on_enough_questions", passed=bool(len(table)) and not small,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"min_questions": prof.evaluation.min_questions,
                                      "fewest": int(counts.min()) if len(counts) else 0,
                                      "below": ", ".join(small) or "(none)"}),
    ]


def _build_scoreboard(context: dg.AssetExecutionContext, prof: Profile, storage: StorageResource,
                      mlflow: MlflowResource, reference: str) -> dg.MaterializeResult:
    """Table 2 from every variant's latest scores: the table, the pooled multiple-choice questions, the figure
    and the paper's numbers apart, written to the storage root and MLflow."""
    from evaluation.table2 import build_pooled, build_table, scoreboard_metrics, variant_lines

    latest = latest_scores(context.instance)
    logs = {key: _read_log(rec["samples_log"]) for key, rec in latest.items()}
    order = list(prof.training.variants)  # Table 2's order: base, sft_only, rl_only, full, the ablations
    table = build_table(logs, reference, prof.evaluation.bootstrap, order=order)
    pooled = build_pooled(logs, reference, iterations=prof.evaluation.bootstrap,
                          subsets=prof.evaluation.pooled_subsets, order=order)
    folder = storage.path(EVALUATION_FOLDER, "scoreboard")
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, pooled_path, png_path = (folder / "scoreboard.csv", folder / "pooled_multiple_choice.csv",
                                       folder / "scoreboard.png")
    csv_path.write_text(table.to_csv(index=False))
    pooled_path.write_text(pooled.to_csv(index=False))
    figure = _table2_figure(table, list(prof.training.variants))
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    png_path.write_bytes(image.getvalue())
    with mlflow.start_run(context) as run:
        scored = [v for v in order if any(variant == v for variant, _ in latest)]
        run.log_params({"profile": prof.name, "variants": ", ".join(scored), "reference": reference,
                        "benchmarks": ", ".join(BENCHMARK_NAMES), "bootstrap": prof.evaluation.bootstrap,
                        "bootstrap_unit": "video", "min_questions": prof.evaluation.min_questions})
        run.log_metrics(scoreboard_metrics(table, pooled))
        run.log_figure(figure, "scoreboard/scoreboard.png")
        plot = markdown_image(figure, "Table 2: official protocol with 95% intervals")
        run.log_text(table.to_csv(index=False), "scoreboard/scoreboard.csv")
        run.log_text(pooled.to_csv(index=False), "scoreboard/pooled_multiple_choice.csv")
    shown = ["variant", "benchmark", "samples", "chance", "videorft", "official", "official_ci95_low",
             "official_ci95_high", "lenient", "delta_official", "delta_official_ci95_low",
             "delta_official_ci95_high"]
    inline = {f"Table 2 ({'official %' if name != 'chance' else 'uniform chance %'}): {name}": line
              for name, line in variant_lines(table, order).items()}
    return dg.MaterializeResult(check_results=scoreboard_checks(table, prof), metadata={
        **inline,  # plain text: shown on the asset page itself, where the tables and the plot need a click
        "table": dg.MetadataValue.md(table[shown].to_markdown(index=False) if len(table) else "_no scores yet_"),
        "pooled_multiple_choice": dg.MetadataValue.md(pooled.to_markdown(index=False) if len(pooled) else "_none_"),
        "paper_7b": dg.MetadataValue.md(paper_table().to_markdown(index=False)),
        "variants": len({v for v, _ in latest}), "reference_variant": reference,
        "dagster/row_count": len(table),
        "csv": dg.MetadataValue.path(str(csv_path)),
        "pooled_csv": dg.MetadataValue.path(str(pooled_path)),
        "plot": dg.MetadataValue.md(plot),
        "plot_file": dg.MetadataValue.path(str(png_path)),
        "mlflow_run_url": dg.MetadataValue.url(run.url),
    })


def paper_table() -> pd.DataFrame:
    """The paper's VideoRFT-7B scores (Table 1), on their own: reference numbers for a paper-scale run, never
    plotted beside a miniature's bars."""
    return pd.DataFrame({"benchmark": list(BENCHMARK_NAMES),
                         "paper VideoRFT-7B (Table 1)": [BENCHMARKS[b].paper_7b for b in BENCHMARK_NAMES]})


def _table2_figure(table: pd.DataFrame, order: list[str]) -> Any:
    groups = list(BENCHMARK_NAMES)
    series: dict[str, list[float | None]] = {}
    chance = table.groupby("benchmark")["chance"].first()
    errors: dict[str, list[tuple[float, float] | None]] = {}
    present = [v for v in order if v in set(table["variant"])]
    for variant in present:
        by = table[table["variant"] == variant].set_index("benchmark")
        series[variant] = [float(by.at[b, "official"]) if b in by.index and pd.notna(by.at[b, "official"]) else None
                           for b in groups]
        errors[variant] = [(float(by.at[b, "official_ci95_low"]), float(by.at[b, "official_ci95_high"]))
                           if b in by.index and pd.notna(by.at[b, "official_ci95_low"]) else None for b in groups]
    return grouped_bars(groups, series, "Table 2: official protocol, 95% intervals (bootstrap over videos)",
                        "score (%)", errors,
                        {"uniform chance": [float(chance[b]) if b in chance and pd.notna(chance[b]) else None
                                            for b in groups]})


def _read_log(uri: str) -> list[dict[str, Any]]:
    from videorft.storage import as_path

    return [json.loads(line) for line in as_path(uri).read_text().splitlines() if line.strip()]


def latest_scores(instance: dg.DagsterInstance) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest benchmark_scores materialization's metadata per (variant, benchmark), as plain values (its
    ``checkpoint_version`` says which model it scored)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    records = instance.fetch_materializations(dg.AssetKey("benchmark_scores"), limit=10_000).records
    for record in sorted(records, key=lambda r: r.storage_id):
        mat = record.asset_materialization
        meta = {k: getattr(v, "value", getattr(v, "path", v)) for k, v in mat.metadata.items()}
        if "variant" not in meta or "samples_log" not in meta:
            continue  # a materialization from before variants existed
        latest[(str(meta["variant"]), str(meta["benchmark"]))] = meta
    return latest
