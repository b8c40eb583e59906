"""Training assets: ``sft_checkpoint`` and ``rl_checkpoint``, one partition per Table 2 variant.

Thin: read the variant (profile ``training.variants``), open an MLflow run, launch ``python -m training.sft|grpo``
over Dagster Pipes (subprocess or Kubernetes pod) and turn what the child reports (step metrics, the published
checkpoint and its hash, the checks) into the materialization.

- ``sft_checkpoint[v]``: SFT on the variant's data (``cot_sft_set`` or ``unrefined_cot_sft_set``); a variant
  without SFT passes the base model on.
- ``video_embeddings[shard]``: the semantic reward's video side (SigLIP mean-frame embeddings, Eq. 5) of every
  medium of ``rl_set`` in the shard, computed in batches into the store GRPO's reward reads, one version per
  SigLIP setting the variants use. Locally it runs in this process (a launch would pay torch's import per
  shard); with the k8s launcher, on one GPU in a pod.
- ``rl_checkpoint[v]``: GRPO from ``sft_checkpoint[v]`` with the variant's rewards; a variant without RL passes
  its SFT checkpoint (or the base model) on. So ``rl_checkpoint[v]`` is always variant v's final model.

A training run is keyed by everything that determines its result (recipe, overrides, data, start model,
frames), not by the variant's name: variants sharing a stage (``full``, ``ungated``, ... share one SFT) pay for
it once, and re-materializing after a killed run resumes from its last checkpoint. GPU assets are never
materialized automatically: no automation condition.
(The asset functions carry no return annotation: Dagster would read ``MaterializeResult`` as an output of
type Nothing.)
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from assets.metadata import curve_markdown, markdown_table, ownership, rounded, versions_table
from resources.core import MlflowResource, ProfileResource, StorageResource, TrackedRun
from resources.launchers import LauncherResource
from training.checks import CHECK_DESCRIPTIONS, curve_summary
from training.config import grpo_overrides
from training.rewards import REWARDS, reward_names
from videorft.plots import line_chart, markdown_image
from videorft.profile import GPU_POOL, Profile, VariantConfig, local_state_dir, project_root
from videorft.progress import throttled
from videorft.provenance import stable_hash

TRAINING_FOLDER = "training"
PLAN_CHECK = ("fits_memory", "training.plan, before the launch: the job's memory per GPU (model states at the "
              "recipe's ZeRO stage, activations, rollouts, reference model) fits the launcher's GPUs; a job that "
              "does not is refused with the plan's table and never launched")
SMOKE_CHECK = ("checkpoint_loads_and_generates", "the published checkpoint loads as production loads it and generates")


def curves_of(method: str) -> tuple[str, ...]:
    """The metrics a run's curve plot draws, in order (every registered reward's, for GRPO)."""
    if method == "sft":
        return "loss", "learning_rate", "mean_token_accuracy", "grad_norm"
    return ("probe/accuracy_reward", "reward", *(f"rewards/{name}/mean" for name in REWARDS), "kl",
            "completions/mean_length", "probe/format_reward", "loss", "learning_rate")


def summary_metrics(method: str) -> tuple[str, ...]:
    """Reported as final_<name> / change_<name> (last tenth of the logged steps, and minus the first tenth)."""
    if method == "sft":
        return "loss", "mean_token_accuracy"
    return ("loss", "reward", *(f"rewards/{name}/mean" for name in REWARDS), "kl")


def variant_partitions(profile: Profile) -> dg.StaticPartitionsDefinition:
    """One partition per Table 2 variant the profile defines (the partition key is the variant's name)."""
    return dg.StaticPartitionsDefinition(list(profile.training.variants))


def base_model(profile: Profile) -> str:
    from training.config import load_recipe

    if profile.training.base_model:
        return profile.training.base_model
    return load_recipe(profile.training.recipe_path("sft"), "sft", check_trainer_keys=False).model.name_or_path


def embedding_settings(profile: Profile) -> dict[str, list[str]]:
    """Each video-embedding version the profile's GRPO variants read (``training.video_embeddings``), with the
    recipe overrides of one variant that reads it; variants without the semantic reward read none."""
    from training.config import load_recipe
    from training.embedding_cache import VideoEmbeddingCache
    from training.rewards import uses_video_embeddings

    out: dict[str, list[str]] = {}
    for variant in profile.training.variants.values():
        overrides = grpo_overrides(variant)
        if variant.rl is None:
            continue
        reward = load_recipe(profile.training.recipe_path("grpo"), "grpo", overrides, check_trainer_keys=False).reward
        if uses_video_embeddings(reward):
            out.setdefault(VideoEmbeddingCache.from_config(reward.semantic).version, overrides)
    return out


def _embed(context: dg.AssetExecutionContext, launcher: LauncherResource, args: list[str], env: dict[str, str]
           ) -> dict[str, Any]:
    """One precompute (``python -m training.video_embeddings ARGS``): in this process for the local launcher
    (a launch would pay torch's import per shard), else in a one-GPU pod over Pipes. Nothing is launched when
    every medium is already stored. Returns its report."""
    from training.video_embeddings import resolve_job

    try:
        job = resolve_job(args)
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(f"video_embeddings: {exc}") from exc
    if launcher.on_this_machine or not job.missing():
        return job.run(throttled(context.log.info, f"video_embeddings[{context.partition_key}] media embedded"))
    invocation = launcher.launch(context, "training.video_embeddings", args, env, single_process=True)
    results = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and m.get("kind") == "result"]
    if not results:
        raise dg.Failure("video_embeddings: the precompute reported no result; see its logs above")
    return results[-1]["result"]


def _shown(path: Path) -> str:
    root = project_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _record_uri(storage: StorageResource, asset: str, key: str) -> str:
    return storage.uri(TRAINING_FOLDER, asset, "runs", f"{key}.json")


def _register(run: TrackedRun, mlflow: MlflowResource, name: str, variant: VariantConfig, manifest: dict[str, Any]
              ) -> str | None:
    """Where ``manifest`` is the variant's final model (its GRPO, or its SFT when it has no RL): a version of
    the registered model ``<experiment>-<variant>``, tagged with what it trained on. Returns ``"<name> v<n>"``."""
    if manifest["method"] != "grpo" and variant.rl is not None:
        return None
    model_name = f"{mlflow.experiment}-{name}"
    version = run.register_model(
        model_name, manifest["uri"], manifest["content_hash"],
        tags={"variant": name, "stages": variant.stages, "trained_on": manifest["trained_on"],
              "rewards": ",".join(manifest["rewards"]), "start_model": manifest["base_model"],
              **manifest["lineage"]},
        description=f"{name}: {variant.description}")
    return f"{model_name} v{version}"


def _reused(context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource, asset: str,
            key: str, variant: VariantConfig) -> dg.MaterializeResult | None:
    """A finished run with the same key (another variant that shares this stage): its checkpoint, no launch;
    registered under this variant's name too where it is this variant's final model (linked to the run that
    trained it), so ``models:/<experiment>-<variant>@current`` resolves for every variant."""
    from videorft.storage import as_path

    path = as_path(_record_uri(storage, asset, key))
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if not (as_path(record["manifest"]["uri"]) / "COMPLETE").exists():
        context.log.warning(f"{asset}: run {key}'s checkpoint {record['manifest']['uri']} is gone; training again")
        return None
    context.log.info(f"{asset}[{context.partition_key}]: run {key} already trained this checkpoint (for variant "
                     f"{record['variant']}); reusing it, nothing is trained twice")
    checks = [dg.AssetCheckResult(check_name=c["name"], passed=c["passed"],
                                  severity=dg.AssetCheckSeverity(c["severity"]),
                                  metadata={"reused_from_variant": record["variant"], "variant": context.partition_key})
              for c in record["checks"]]
    if PLAN_CHECK[0] not in {c["name"] for c in record["checks"]}:  # a run recorded before plans existed
        checks.append(dg.AssetCheckResult(check_name=PLAN_CHECK[0], passed=True,
                                          metadata={"reused_from_variant": record["variant"], "planned": False}))
    manifest = {**record["manifest"], "variant": context.partition_key, "stages": variant.stages}
    registered = _register(mlflow.tracked(record["manifest"]["mlflow_run_id"]), mlflow, context.partition_key,
                           variant, manifest)
    return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(manifest["content_hash"]),
                                metadata={**_manifest_metadata(manifest), **_presented(record["metadata"]),
                                          "checkpoint_uri": dg.MetadataValue.path(manifest["uri"]),
                                          "reused_from_variant": record["variant"],
                                          **({"mlflow_registered_model": registered} if registered else {})},
                                check_results=checks)


def _manifest_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"variant": manifest["variant"], "stages": manifest["stages"],
            "trained_on": manifest.get("trained_on", "(nothing)"),
            "rewards": ", ".join(manifest.get("rewards", [])) or "(none)", "method": manifest["method"],
            "start_model": manifest["base_model"], "dataset_versions": versions_table(manifest.get("lineage", {}))}


def _presented(recorded: dict[str, Any]) -> dict[str, Any]:
    """A run's recorded metadata (plain JSON, kept for reuse) as Dagster shows it: the curve and its plot as
    Markdown."""
    return {k: dg.MetadataValue.md(v) if k in ("curve", "curves_plot") else v for k, v in recorded.items()}


def shipped_weights() -> dict[str, str]:
    """The shipped models' weight tags: a run's key changes when ``make pretrain`` rebuilds the base it starts from
    or the SigLIP its reward reads, though the names in the recipe stay the same."""
    from videorft.shipped import SHIPPED_MODELS, weights_tag

    return {name: weights_tag(name) for name in SHIPPED_MODELS}


def _launch_args(recipe: Path, start: str, data_uri: str, run_dir: str, publish_to: str, video: Any,
                 overrides: list[str]) -> list[str]:
    """The training entry point's command line: the recipe and its overrides, the start model, the data, where
    the run lives and publishes, and the profile's training frames (their one owner, passed explicitly)."""
    args = ["--config", str(recipe), "--model", start, "--data", data_uri, "--output-dir", run_dir,
            "--publish-to", publish_to, "--frames", str(video.frames), "--max-pixels", str(video.max_pixels),
            "--min-pixels", str(video.min_pixels)]
    for item in overrides:
        args += ["--set", item]
    return args


def _reported(result: dict[str, Any]) -> dict[str, Any]:
    """What the training process reported about itself, as the asset's metadata shows it."""
    return {
        "skipped_media": result.get("skipped_media", 0),
        # what the child actually decoded (it reports its own values, not what it was asked for)
        "video_frames": result["frames"], "video_max_pixels": result["max_pixels"],
        # Eq. 6's gate at work: rows the semantic reward was paid on, and how many of them scored above 0
        **{k: result[k] for k in ("semantic_paid_rows", "semantic_nonzero_rows") if k in result},
        # the video embeddings GRPO read from video_embeddings' store vs computed in its steps (a missing medium)
        **{k: result[k] for k in ("semantic_embeddings_read", "semantic_embeddings_computed") if k in result},
    }


def _write_record(uri: str, name: str, manifest: dict[str, Any], recorded: dict[str, Any],
                  check_results: Sequence[dg.AssetCheckResult]) -> None:
    """The run's record (manifest, metadata, checks), what a later materialization with the same key reuses."""
    from videorft.storage import as_path

    record = as_path(uri)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({
        "variant": name, "manifest": manifest, "metadata": recorded,
        "checks": [{"name": c.check_name, "passed": c.passed, "severity": c.severity.value} for c in check_results]
        + [{"name": PLAN_CHECK[0], "passed": True, "severity": "ERROR"}]}, indent=1, default=str))


def _variant_checks(check_results: Sequence[dg.AssetCheckResult], name: str, planned: dict[str, Any]
                    ) -> list[dg.AssetCheckResult]:
    """The child's checks and the plan's, each naming the variant: Dagster keeps checks per asset, not per
    partition."""
    checks = [dg.AssetCheckResult(check_name=c.check_name, passed=c.passed, severity=c.severity,
                                  description=c.description, metadata={**c.metadata, "variant": name})
              for c in check_results]
    checks.append(dg.AssetCheckResult(check_name=PLAN_CHECK[0], passed=True, metadata={
        "variant": name, "memory_per_gpu_gib": planned["memory_per_gpu_gib"], "usable_gib": planned["usable_gib"],
        "plan": dg.MetadataValue.md(planned["table"])}))
    return checks


def _train(context: dg.AssetExecutionContext, method: str, data_name: str, data: dict[str, Any], start: str,
           variant: VariantConfig, profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource,
           launcher: LauncherResource, lineage: dict[str, Any], probe: dict[str, Any] | None = None
           ) -> dg.MaterializeResult:
    from training.config import load_recipe

    prof = profile.profile
    asset = context.asset_key.to_user_string()
    name = context.partition_key
    recipe = prof.training.recipe_path(method)
    overrides = grpo_overrides(variant) if method == "grpo" else []
    resolved = load_recipe(recipe, method, overrides)  # a bad variant fails here, before any launch
    rewards = reward_names(resolved.reward) if method == "grpo" else []
    video = prof.video.train  # the one owner of training's frames/pixels, passed explicitly to the child
    key = stable_hash({"recipe": recipe.read_text(), "overrides": overrides, "data": data["content_hash"],
                       "model": start, "video": video.key(), "shipped": shipped_weights(),
                       **({"probe": probe["content_hash"]} if probe and probe.get("uri") else {})})
    reused = _reused(context, storage, mlflow, asset, key, variant)
    if reused is not None:
        return reused
    planned = check_plan(prof, method, overrides, start, f"{asset}[{name}]")
    runs = launcher.runs_dir_in_child or prof.training.runs_dir or str(local_state_dir() / "runs")
    run_dir = f"{runs.rstrip('/')}/{asset}/{key}"
    args = [*_launch_args(recipe, start, data["uri"], run_dir, storage.uri(TRAINING_FOLDER, asset), video, overrides),
            *(["--probe", probe["uri"]] if probe and probe.get("uri") else [])]
    with mlflow.start_run(context, extra_tags={"videorft.run_key": key, "videorft.variant": name}) as run:
        run.log_params({"variant": name, "recipe": str(recipe), "start_model": start, "data": data_name,
                        "data_uri": data["uri"], "data_version": data["content_hash"], "rewards": ",".join(rewards),
                        "video_frames": video.frames, "video_max_pixels": video.max_pixels,
                        "overrides": ",".join(overrides), **{f"lineage.{k}": v for k, v in lineage.items()}})
        run.log_dataset(data_name, data["uri"], data["content_hash"], "training", rows=data.get("row_count"))
        env = {"MLFLOW_TRACKING_URI": mlflow.tracking_uri, "MLFLOW_RUN_ID": run.run_id,
               "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "true", "VIDEORFT_PROFILE": profile.name}
        invocation = launcher.launch(context, f"training.{method}", args, env,
                                     extras={"asset": asset, "run_key": key, "variant": name})
        messages = invocation.get_custom_messages()
        steps = [m for m in messages if isinstance(m, dict) and m.get("kind") == "metrics"]
        results = [m for m in messages if isinstance(m, dict) and m.get("kind") == "result"]
        if not results:
            raise dg.Failure(f"{asset}[{name}]: the training process reported no result; see its logs above")
        result = results[-1]
        curves = {c: [(m["step"], m[c]) for m in steps if c in m] for c in curves_of(method)}
        curves = {k: v for k, v in curves.items() if v}
        plot = ""
        if curves:
            figure = line_chart(curves, f"{asset}[{name}]: {result['global_step']} steps", "step")
            run.log_figure(figure, f"{asset}/curves.png")
            plot = markdown_image(figure, f"{asset}[{name}] training curves")
        run.log_dict(result, f"{asset}/result.json")
        manifest = {"uri": result["checkpoint_uri"], "content_hash": result["checkpoint_version"], "variant": name,
                    "stages": variant.stages, "method": method, "base_model": start, "trained_on": data_name,
                    "rewards": rewards, "global_step": result["global_step"], "run_key": key,
                    "mlflow_run_id": run.run_id, "lineage": lineage}
        registered = _register(run, mlflow, name, variant, manifest)
    materialization = invocation.get_materialize_result()
    logged = [m for m in steps if "train_runtime" not in m]  # the logged steps, not the closing summary
    summary = {k: rounded(v) for k, v in curve_summary(logged, summary_metrics(method)).items()}
    recorded = {
        **summary,  # top-level floats: Dagster's Plots tab charts each across materializations
        **({"curves_plot": plot} if plot else {}), "curve": curve_markdown(logged, list(curves)),
        "recipe": _shown(recipe), "overrides": ", ".join(overrides) or "(none)", "global_step": result["global_step"],
        "run_key": key, **_reported(result),
    }
    metadata = {  # what people look for first comes first (the UI keeps this order)
        **_manifest_metadata(manifest), **_presented(recorded),
        "checkpoint_uri": dg.MetadataValue.path(result["checkpoint_uri"]),
        "resumed_from": result.get("resumed_from") or "(start)",
        "mlflow_run_url": dg.MetadataValue.url(run.url),
        **({"mlflow_registered_model": registered} if registered else {}),
        "plan": dg.MetadataValue.md(planned["table"]), "plan_memory_per_gpu_gib": planned["memory_per_gpu_gib"],
    }
    metadata.update({k: v for k, v in materialization.metadata.items() if k not in metadata})
    _write_record(_record_uri(storage, asset, key), name, manifest, recorded, materialization.check_results)
    checks = _variant_checks(materialization.check_results, name, planned)
    return dg.MaterializeResult(value=manifest, data_version=materialization.data_version, metadata=metadata,
                                check_results=checks)


def _passthrough(context: dg.AssetExecutionContext, upstream: dict[str, Any], variant: VariantConfig, stage: str,
                 checks: list[str]) -> dg.MaterializeResult:
    """A variant that skips this stage: its model so far, passed on unchanged (no launch, checks skipped)."""
    manifest = {**upstream, "variant": context.partition_key, "stages": variant.stages}
    results = [dg.AssetCheckResult(check_name=c, passed=True, metadata={"skipped": f"variant has no {stage}",
                                                                        "variant": context.partition_key})
               for c in checks]
    return dg.MaterializeResult(value=manifest, data_version=dg.DataVersion(manifest["content_hash"]),
                                metadata={**_manifest_metadata(manifest), "skipped_stage": stage,
                                          "checkpoint_uri": dg.MetadataValue.path(manifest["uri"])},
                                check_results=results)


def check_plan(profile: Profile, method: str, overrides: list[str], start: str, where: str) -> dict[str, Any]:
    """The launch's plan (``training.plan``), or ``dg.Failure`` with its table when the job cannot fit or a
    sample exceeds a maximum length: refused before any GPU is asked for. A start checkpoint elsewhere (``s3://``)
    is planned by its recipe's architecture (training does not change it)."""
    from training.plan import PlanError, plan_stage, stage_table

    try:
        planned = plan_stage(profile, method, overrides, model=None if "://" in start else start)
    except PlanError as exc:
        raise dg.Failure(f"{where}: not launched: {exc}") from None
    shown = stage_table(profile.name, planned)
    if not planned.fits:
        raise dg.Failure(f"{where}: not launched: the plan needs {planned.memory_per_gpu_gib} GiB per GPU, "
                         f"{planned.usable_gib} GiB usable (training.launcher; the recipe's deepspeed ZeRO stage, "
                         f"per_device_train_batch_size, gradient_checkpointing; video.train)\n\n{shown}",
                         metadata={"plan": dg.MetadataValue.md(shown)})
    return {"table": shown, "memory_per_gpu_gib": planned.memory_per_gpu_gib, "usable_gib": planned.usable_gib}


def _check_specs(asset: str, method: str) -> list[dg.AssetCheckSpec]:
    specs = [*CHECK_DESCRIPTIONS[method].items(), SMOKE_CHECK, PLAN_CHECK]
    return [dg.AssetCheckSpec(name, asset=asset, description=text) for name, text in specs]


def partitions_note(profile: Profile) -> str:
    """What a partitioned asset's description says about its variants: which ``make run`` builds, and that
    ``make table2`` builds the rest (their partitions stay grey, "missing", until then)."""
    rest = [v for v in profile.training.variants if v not in profile.training.run_variants]
    note = f" `make run` builds the variants {', '.join(profile.training.run_variants)} (training.run_variants)"
    return note + (f"; `make table2` builds the rest ({', '.join(rest)})." if rest else ".")


def build_training_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    from training.config import load_recipe

    variants = profile.training.variants
    for name, variant in variants.items():  # at code-location load: a bad variant fails before any run
        if variant.rl is not None:
            try:
                overrides = grpo_overrides(variant)
                # TRL's own keys are checked (importing TRL) only where the variant changes one
                load_recipe(profile.training.recipe_path("grpo"), "grpo", overrides,
                            check_trainer_keys=any(o.startswith("trainer.") for o in overrides))
            except ValueError as exc:
                raise ValueError(f"training.variants.{name}: {exc}") from exc
    partitions = variant_partitions(profile)
    sft_checks = [name for name, _ in [*CHECK_DESCRIPTIONS["sft"].items(), SMOKE_CHECK, PLAN_CHECK]]
    rl_checks = [name for name, _ in [*CHECK_DESCRIPTIONS["grpo"].items(), SMOKE_CHECK, PLAN_CHECK]]

    # GPU assets: a pool, and no automation condition (never materialized by an upstream change)
    common: dict[str, Any] = {"group_name": "training", **ownership("training"), "code_version": "2", "pool": GPU_POOL,
                              "kinds": {"pytorch", "python"}, "partitions_def": partitions}

    @dg.asset(name="sft_checkpoint", **common,
              ins={"cot_sft_set": dg.AssetIn(), "unrefined_cot_sft_set": dg.AssetIn()},
              check_specs=_check_specs("sft_checkpoint", "sft"),
              description="Qwen2.5-VL after SFT (paper 3.2) for each Table 2 variant: on cot_sft_set, or on "
              "unrefined_cot_sft_set for 'w/o CoT refinement'; a variant without SFT passes the base model on. "
              "TRL SFTTrainer, loss on the assistant turn only, launched through the launcher resource; the "
              "checkpoint's content hash is the data version." + partitions_note(profile))
    def sft_checkpoint(context: dg.AssetExecutionContext, cot_sft_set: dict[str, Any],
                       unrefined_cot_sft_set: dict[str, Any], profile: ProfileResource, storage: StorageResource,
                       mlflow: MlflowResource, launcher: LauncherResource):
        prof = profile.profile
        variant = prof.training.variants[context.partition_key]
        model = base_model(prof)
        if variant.sft is None:
            return _passthrough(context, {"uri": model, "content_hash": stable_hash({"base": model}),
                                          "method": "none", "base_model": model, "lineage": {}},
                                variant, "SFT", sft_checks)
        data = {"cot_sft_set": cot_sft_set, "unrefined_cot_sft_set": unrefined_cot_sft_set}[variant.sft]
        by_prompt = data.get("prompt_hashes_by_prompt") or {"prompts": data.get("prompt_hashes", [])}
        lineage = {"sft_data": variant.sft, variant.sft: data["content_hash"],
                   **{f"prompt.{prompt}": ", ".join(hashes) for prompt, hashes in sorted(by_prompt.items())}}
        return _train(context, "sft", variant.sft, data, model, variant, profile, storage, mlflow, launcher, lineage)

    @dg.asset(name="rl_checkpoint", **common,
              ins={"rl_set": dg.AssetIn(), "sft_checkpoint": dg.AssetIn(), "rl_probe_set": dg.AssetIn()},
              deps=[dg.AssetDep("video_embeddings", partition_mapping=dg.AllPartitionMapping())],
              check_specs=_check_specs("rl_checkpoint", "grpo"),
              description="Each Table 2 variant's final model: GRPO (paper 3.3) from sft_checkpoint of the same "
              "variant with the variant's rewards (format + accuracy + gated semantic consistency for the full "
              "model; ablations and T-GRPO per training.variants), the video passed into the loss forward; a "
              "variant without RL passes its SFT checkpoint (or the base model) on." + partitions_note(profile))
    def rl_checkpoint(context: dg.AssetExecutionContext, rl_set: dict[str, Any], sft_checkpoint: dict[str, Any],
                      rl_probe_set: dict[str, Any], profile: ProfileResource, storage: StorageResource,
                      mlflow: MlflowResource, launcher: LauncherResource):
        variant = profile.profile.training.variants[context.partition_key]
        if variant.rl is None:
            return _passthrough(context, sft_checkpoint, variant, "RL", rl_checks)
        lineage = {**sft_checkpoint.get("lineage", {}), "rl_set": rl_set["content_hash"],
                   "start_checkpoint": sft_checkpoint["content_hash"],
                   **({"rl_probe_set": rl_probe_set["content_hash"]} if rl_probe_set.get("uri") else {})}
        return _train(context, "grpo", "rl_set", rl_set, sft_checkpoint["uri"], variant, profile, storage, mlflow,
                      launcher, lineage, rl_probe_set)

    return [build_video_embeddings(profile), rl_probe_set, sft_checkpoint, rl_checkpoint]


@dg.asset(name="rl_probe_set", group_name="curation", **ownership("curation"), code_version="1", kinds={"python"},
          description="GRPO's held-out probe: the questions of a world of its own seed (profile "
          "training.probe_world, drawn over the templates as the training world's are), which no training set or "
          "benchmark holds. rl_checkpoint answers it greedily before the first step and every probe.every steps "
          "(training.probe): the curve of whether RL learns, paired question by question. Empty when the profile "
          "names no probe world.")
def rl_probe_set(context: dg.AssetExecutionContext, profile: ProfileResource, storage: StorageResource):
    from collections import Counter

    from assets.metadata import counts_table

    cfg = profile.profile.training.probe_world
    if cfg is None:
        return dg.MaterializeResult(value={"uri": None, "content_hash": "none"}, data_version=dg.DataVersion("none"),
                                    metadata={"questions": 0, "note": "no training.probe_world: GRPO runs unprobed"})
    from synthetic.qa import template_of
    from synthetic.world import build_world

    manifest = build_world(cfg, storage.uri(TRAINING_FOLDER, "probe_world"))
    uri = str(Path(manifest.root) / "qa_videos.json")
    rows = json.loads(Path(uri).read_text(encoding="utf-8"))
    templates = Counter(template_of(r["problem"]) or "other" for r in rows)
    return dg.MaterializeResult(
        value={"uri": uri, "content_hash": manifest.content_hash}, data_version=dg.DataVersion(manifest.content_hash),
        metadata={"questions": len(rows), "videos": manifest.videos, "world_seed": cfg.seed,
                  "by_template": counts_table(dict(templates.most_common()), "template"),
                  "uri": dg.MetadataValue.path(uri), "content_hash": manifest.content_hash})


def build_video_embeddings(profile: Profile) -> dg.AssetsDefinition:
    from assets.curation import shard_partitions

    settings = embedding_settings(profile)  # at load: a bad variant fails here

    @dg.asset(name="video_embeddings", group_name="curation", **ownership("curation"), code_version="1",
              pool=GPU_POOL, kinds={"pytorch", "numpy"}, partitions_def=shard_partitions(profile),
              ins={"rl_set": dg.AssetIn()},
              check_specs=[dg.AssetCheckSpec("every_medium_embedded", asset="video_embeddings",
                                             description="every medium of the shard has a stored embedding (one "
                                             "that fails to decode is skipped by GRPO too)")],
              description="The semantic-consistency reward's video side (paper Eq. 5): SigLIP's mean-frame "
              "embedding of every video and image of rl_set in the shard, computed in batches before GRPO into "
              "<storage>/reward_cache/<version>/, one version per SigLIP model, weights, frame count and decode "
              "size the variants use. GRPO's reward reads it and only encodes text; a medium missing there is "
              "computed during training and counted (rl_checkpoint's semantic_embeddings_computed).")
    def video_embeddings(context: dg.AssetExecutionContext, rl_set: dict[str, Any], profile: ProfileResource,
                         launcher: LauncherResource):
        prof = profile.profile
        shard = int(context.partition_key)
        reports: dict[str, dict[str, Any]] = {}
        for version, overrides in settings.items():
            args = ["--config", str(prof.training.recipe_path("grpo")), "--data", rl_set["parquet"],
                    "--shard", str(shard), "--shards", str(prof.ingest.shards), "--profile", profile.name,
                    *[a for item in overrides for a in ("--set", item)]]  # the store: as GRPO resolves it
            reports[version] = _embed(context, launcher, args, {"VIDEORFT_PROFILE": profile.name})
        failed = [{"version": v, **f} for v, r in reports.items() for f in r["failures"]]
        computed = sum(r["computed"] for r in reports.values())
        seconds = sum(r["seconds"] for r in reports.values())
        first = next(iter(reports.values()), {})
        metadata: dict[str, Any] = {
            "versions": ", ".join(reports) or "(no variant uses the semantic reward)",
            "dagster/row_count": first.get("media", 0), "videos": first.get("videos", 0),
            "images": first.get("images", 0), "computed": computed,
            "already_stored": sum(r["already_stored"] for r in reports.values()), "failed": len(failed),
            "seconds": rounded(seconds), "media_per_second": rounded(computed / seconds) if computed else 0.0,
            **{f"store[{v}]": dg.MetadataValue.path(r["store"]) for v, r in reports.items()},
            **({"failures": dg.MetadataValue.md(markdown_table(pd.DataFrame(failed), 20))} if failed else {}),
        }
        check = dg.AssetCheckResult(check_name="every_medium_embedded", passed=not failed,
                                    severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"failed": len(failed), "shard": context.partition_key})
        version = stable_hash({v: r["media_digest"] for v, r in sorted(reports.items())})
        return dg.MaterializeResult(value={"stores": {v: r["store"] for v, r in reports.items()}},
                                    data_version=dg.DataVersion(version), metadata=metadata, check_results=[check])

    return video_embeddings
