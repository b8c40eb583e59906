"""Evaluation assets: ``benchmark_scores`` (one partition per benchmark) and ``scoreboard``.

``benchmark_scores`` evaluates the checkpoint the profile names (``evaluation.checkpoint``: the RL checkpoint
by default, or the SFT checkpoint, or the base model) by launching ``python -m evaluation.run`` for its
partition's benchmark through the launcher resource (a subprocess or a GPU pod, over Dagster Pipes), and
records both protocols' scores, per-category scores, failures and the per-sample log in Dagster and MLflow.
Its metadata carries the checkpoint's data version and the dataset versions (and prompt hashes) the
checkpoint was trained on, so a score leads back to the prompts through data versions as well as through
the graph. ``scoreboard`` puts every evaluated checkpoint's scores next to the paper's.
"""

import io
import re
from typing import Any

import dagster as dg
import pandas as pd

from evaluation.benchmarks import BENCHMARK_NAMES, BENCHMARKS, check_names
from evaluation.scoring import PROTOCOLS
from resources.core import MlflowResource, ProfileResource, StorageResource
from resources.launchers import LauncherResource
from videorft.plots import grouped_bars
from videorft.profile import GPU_POOL, Profile
from videorft.provenance import stable_hash
from videorft.storage import as_path

EVALUATION_FOLDER = "evaluation"
BENCHMARK_PARTITIONS = dg.StaticPartitionsDefinition(list(BENCHMARK_NAMES))


def _base_model(profile: Profile) -> str:
    from training.config import load_recipe

    return (profile.evaluation.base_model or profile.training.base_model
            or load_recipe(profile.training.recipe_path("sft"), "sft").model.name_or_path)


def checkpoint_input(profile: Profile) -> str | None:
    """The upstream checkpoint asset under evaluation, checked against the training mode's graph."""
    mode = profile.training.mode
    wanted = profile.evaluation.checkpoint or ("sft_checkpoint" if mode == "sft" else "rl_checkpoint")
    if wanted == "base":
        return None
    present = {"sft+rl": {"sft_checkpoint", "rl_checkpoint"}, "sft": {"sft_checkpoint"},
               "rl": {"rl_checkpoint"}}[mode]
    if wanted not in present:
        raise ValueError(f"evaluation.checkpoint is {wanted!r} but training.mode {profile.training.mode!r} has no "
                         f"such asset; choose one of {sorted(present | {'base'})}")
    return wanted


def _evaluate(context: dg.AssetExecutionContext, checkpoint: dict[str, Any] | None, label: str,
              profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource,
              launcher: LauncherResource) -> dg.MaterializeResult:
    prof = profile.profile
    name = context.partition_key
    model = checkpoint["uri"] if checkpoint else _base_model(prof)
    version = checkpoint["content_hash"] if checkpoint else stable_hash({"base": model})
    lineage = {k: v for k, v in (checkpoint or {}).items()
               if k in ("sft_checkpoint", "sft_data", "cot_sft_set", "rl_set", "prompt_hashes", "data_version")}
    output = storage.uri(EVALUATION_FOLDER, label, f"v-{version}", name)
    video = prof.video.eval  # the one owner of evaluation's frames/pixels, passed explicitly to the child
    args = ["--model", model, "--benchmarks", name, "--output", output, "--model-version", f"{label}-{version}",
            "--frames", str(video.frames), "--max-pixels", str(video.max_pixels),
            "--min-pixels", str(video.min_pixels)]
    with mlflow.start_run(context, extra_tags={"videorft.checkpoint": label,
                                               "videorft.checkpoint_version": version}) as run:
        run.log_params({"checkpoint": label, "checkpoint_version": version, "model": model, "benchmark": name,
                        "frames": video.frames, "max_pixels": video.max_pixels, "min_pixels": video.min_pixels,
                        "max_new_tokens": prof.evaluation.max_new_tokens, "greedy": True,
                        **{f"lineage.{k}": v for k, v in lineage.items()}})
        env = {"VIDEORFT_PROFILE": profile.name, "VIDEORFT_STORAGE_ROOT": storage.root}
        invocation = launcher.launch(context, "evaluation.run", args, env, single_process=True,
                                     extras={"asset": "benchmark_scores", "benchmark": name})
        results = [m["result"] for m in invocation.get_custom_messages()
                   if isinstance(m, dict) and m.get("kind") == "result"]
        if not results:
            raise dg.Failure(f"benchmark_scores[{name}]: the evaluation process reported no result; see its logs")
        settings = results[-1]["settings"]  # what the child actually used
        score = results[-1]["benchmarks"][name]
        metrics = {f"{p}.overall": score[p]["overall"] for p in PROTOCOLS if score[p]["overall"] is not None}
        metrics.update({f"{p}.category.{_metric_name(c)}": v for p in PROTOCOLS
                        for c, v in score[p]["categories"].items() if v is not None})
        run.log_metrics({**metrics, "failed": score["failed"], "samples": score["samples"]})
        run.log_dict(score, f"benchmark_scores/{name}/scores.json")
        log_uri = score["samples_log"]
        run.log_text(as_path(log_uri).read_text(), f"benchmark_scores/{name}/samples.jsonl")
    categories = pd.DataFrame({p: pd.Series(score[p]["categories"]) for p in PROTOCOLS})
    categories["questions"] = pd.Series(score["official"]["category_counts"])
    failure_rate = score["failed"] / score["samples"] if score["samples"] else 0.0
    value = {"benchmark": name, "checkpoint": label, "checkpoint_version": version, "model": model,
             "scores": {p: score[p]["overall"] for p in PROTOCOLS}, "failed": score["failed"],
             "samples": score["samples"], "samples_log": log_uri, "lineage": lineage,
             "paper_7b": BENCHMARKS[name].paper_7b}
    metadata = {
        "checkpoint": label, "checkpoint_version": version, "model": dg.MetadataValue.path(model),
        **{f"score_{p}": _pct(score[p]["overall"]) for p in PROTOCOLS},
        **{f"stderr_{p}": _pct(score[p]["stderr"]) for p in PROTOCOLS},
        "ci95_official": dg.MetadataValue.json([_pct(score["official"]["ci95_low"]),
                                                _pct(score["official"]["ci95_high"])]),
        "paper_7b": BENCHMARKS[name].paper_7b,
        "video_frames": settings["frames"], "video_max_pixels": settings["max_pixels"],
        "categories": dg.MetadataValue.md(categories.map(lambda v: round(v * 100, 1) if isinstance(v, float) else v)
                                          .to_markdown()),
        "samples": score["samples"], "failed_samples": score["failed"],
        "chunks_cached": score["chunks_cached"], "chunks_generated": score["chunks_generated"],
        "dataset_versions": dg.MetadataValue.json(lineage),
        "samples_log": dg.MetadataValue.path(log_uri),
        "mlflow_run_url": dg.MetadataValue.url(run.url),
    }
    bound = prof.evaluation.max_failure_rate
    checks = [dg.AssetCheckResult(check_name="failure_rate", passed=failure_rate <= bound,
                                  severity=dg.AssetCheckSeverity.WARN,
                                  metadata={"failed": score["failed"], "samples": score["samples"],
                                            "bound": bound})]
    return dg.MaterializeResult(value=value, metadata=metadata, check_results=checks,
                                data_version=dg.DataVersion(stable_hash({"checkpoint": version, "scores": value})))


def _metric_name(category: str) -> str:
    """MLflow metric names allow word characters, - . : / and spaces ("Humanities & Social Sciences")."""
    return re.sub(r"[^\w\-.:/ ]", "_", category.replace("&", "and"))


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def build_evaluation_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    check_names(profile.evaluation.benchmarks, "profile evaluation.benchmarks")  # at code-location load
    upstream = checkpoint_input(profile)
    label = upstream or "base"
    description = (f"Six video reasoning benchmarks (paper 4.1) for {label}: both scoring protocols (videorft, "
                   "official), per-category scores, bootstrap errors clustered by video, failures counted and "
                   "never scored; per-sample logs on the storage root and in MLflow.")
    checks = [dg.AssetCheckSpec("failure_rate", asset="benchmark_scores",
                                description="samples whose generation failed <= "
                                f"{profile.evaluation.max_failure_rate:.0%} (evaluation.max_failure_rate)")]
    common = dict(name="benchmark_scores", group_name="evaluation", code_version="1", kinds={"python", "lm-eval"},
                  pool=GPU_POOL,
                  partitions_def=BENCHMARK_PARTITIONS, check_specs=checks, description=description)

    if upstream is not None:
        @dg.asset(ins={"checkpoint": dg.AssetIn(key=upstream)}, **common)
        def benchmark_scores(context: dg.AssetExecutionContext, checkpoint: dict[str, Any], profile: ProfileResource,
                             storage: StorageResource, mlflow: MlflowResource, launcher: LauncherResource):
            return _evaluate(context, checkpoint, label, profile, storage, mlflow, launcher)
    else:
        @dg.asset(**common)
        def benchmark_scores(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource,
                             mlflow: MlflowResource, launcher: LauncherResource):
            return _evaluate(context, None, label, profile, storage, mlflow, launcher)

    @dg.asset(name="scoreboard", group_name="evaluation", code_version="1", kinds={"python"},
              deps=[benchmark_scores], automation_condition=dg.AutomationCondition.eager(),
              description="Every evaluated checkpoint's scores on the six benchmarks (both protocols) next to the "
              "paper's reported VideoRFT-7B numbers: a table and a plot.")
    def scoreboard(context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource):
        rows = _score_history(context.instance)
        table = _scoreboard_table(rows)
        folder = storage.path(EVALUATION_FOLDER, "scoreboard")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "scoreboard.csv").write_text(table.to_csv(index=False))
        groups = list(BENCHMARK_NAMES)
        series: dict[str, list[float | None]] = {"paper VideoRFT-7B": [BENCHMARKS[b].paper_7b for b in groups]}
        for (checkpoint, version), part in table.groupby(["checkpoint", "checkpoint_version"], sort=False):
            by = part.set_index("benchmark")["official"]
            series[f"{checkpoint} {version[:8]} (official)"] = [
                float(by[b]) if b in by and pd.notna(by[b]) else None for b in groups]
        figure = grouped_bars(groups, series, "benchmark scores vs the paper", "score (%)")
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=110)
        (folder / "scoreboard.png").write_bytes(image.getvalue())
        with mlflow.start_run(context) as run:
            run.log_figure(figure, "scoreboard/scoreboard.png")
            run.log_text(table.to_csv(index=False), "scoreboard/scoreboard.csv")
        return dg.MaterializeResult(metadata={
            "table": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "_no scores yet_"),
            "checkpoints": len({(r["checkpoint"], r["checkpoint_version"]) for r in rows}),
            "dagster/row_count": len(table),
            "plot": dg.MetadataValue.path(str(folder / "scoreboard.png")),
            "mlflow_run_url": dg.MetadataValue.url(run.url),
        })

    return [benchmark_scores, scoreboard]


def _score_history(instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """The latest score per (checkpoint version, benchmark) across every materialization of benchmark_scores."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    records = instance.fetch_materializations(dg.AssetKey("benchmark_scores"), limit=10_000).records
    for record in sorted(records, key=lambda r: r.storage_id):
        mat = record.asset_materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        if "checkpoint_version" not in meta:
            continue
        latest[(meta["checkpoint_version"], mat.partition or "")] = {
            "checkpoint": meta["checkpoint"], "checkpoint_version": meta["checkpoint_version"],
            "benchmark": mat.partition, "videorft": meta.get("score_videorft"), "official": meta.get("score_official"),
            "failed": meta.get("failed_samples"), "samples": meta.get("samples")}
    return list(latest.values())


def _scoreboard_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["checkpoint", "checkpoint_version", "benchmark", "videorft", "official", "paper_7b", "failed", "samples"]
    table = pd.DataFrame(rows, columns=[c for c in columns if c != "paper_7b"])
    table["paper_7b"] = table["benchmark"].map(lambda b: BENCHMARKS[b].paper_7b if b in BENCHMARKS else None)
    return table[columns].sort_values(["checkpoint", "checkpoint_version", "benchmark"], kind="stable")
