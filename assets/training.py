"""Training assets: ``sft_checkpoint`` and ``rl_checkpoint``, launched through the launcher resource.

Thin: pick the recipe and the variant (profile ``training``), open an MLflow run, launch
``python -m training.sft|grpo`` over Dagster Pipes (subprocess or Kubernetes pod) and turn what the child
reports (step metrics, the published checkpoint and its hash, the two checks) into the materialization.
The run folder is keyed by everything that determines the result, so re-materializing after a killed run
resumes from its last checkpoint. GPU assets are never materialized automatically: no automation condition.
(The asset functions carry no return annotation: Dagster would read ``MaterializeResult`` as an output of
type Nothing.)
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from resources.core import MlflowResource, ProfileResource, StorageResource
from resources.launchers import LauncherResource
from training.checks import CHECK_DESCRIPTIONS
from training.rewards import REWARD_NAMES
from videorft.plots import line_chart
from videorft.profile import GPU_POOL, Profile, local_state_dir, project_root
from videorft.provenance import stable_hash

TRAINING_FOLDER = "training"
SMOKE_CHECK = ("checkpoint_loads_and_generates", "the published checkpoint loads as production loads it and generates")
CURVES = {
    "sft": ("loss", "learning_rate", "mean_token_accuracy", "grad_norm"),
    "grpo": ("reward", *(f"rewards/{name}/mean" for name in REWARD_NAMES), "kl", "completions/mean_length", "loss",
             "learning_rate"),
}


def _shown(path: Path) -> str:
    root = project_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _recipe_overrides(profile: Profile, method: str) -> list[str]:
    overrides = []
    if method == "grpo" and profile.training.semantic_reward is not None:
        overrides.append(f"reward.semantic.mode={profile.training.semantic_reward}")
    return overrides


def _train(context: dg.AssetExecutionContext, method: str, data: dict[str, Any], base_model: str,
           profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource, launcher: LauncherResource,
           lineage: dict[str, Any]) -> dg.MaterializeResult:
    prof = profile.profile
    asset = context.asset_key.to_user_string()
    recipe = prof.training.recipe_path(method)
    overrides = _recipe_overrides(prof, method)
    video = prof.video.train  # the one owner of training's frames/pixels, passed explicitly to the child
    key = stable_hash({"recipe": recipe.read_text(), "overrides": overrides, "data": data["content_hash"],
                       "model": base_model, "mode": prof.training.mode, "video": video.key()})
    runs = launcher.runs_dir_in_child or prof.training.runs_dir or str(local_state_dir() / "runs")
    run_dir = f"{runs.rstrip('/')}/{asset}/{key}"
    args = ["--config", str(recipe), "--model", base_model, "--data", data["uri"], "--output-dir", run_dir,
            "--publish-to", storage.uri(TRAINING_FOLDER, asset), "--frames", str(video.frames),
            "--max-pixels", str(video.max_pixels), "--min-pixels", str(video.min_pixels)]
    for item in overrides:
        args += ["--set", item]
    with mlflow.start_run(context, extra_tags={"videorft.run_key": key}) as run:
        run.log_params({"recipe": str(recipe), "base_model": base_model, "data_uri": data["uri"],
                        "data_version": data["content_hash"], "mode": prof.training.mode,
                        "video_frames": video.frames, "video_max_pixels": video.max_pixels,
                        "overrides": ",".join(overrides), **{f"lineage.{k}": v for k, v in lineage.items()}})
        env = {"MLFLOW_TRACKING_URI": mlflow.tracking_uri, "MLFLOW_RUN_ID": run.run_id,
               "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "true", "VIDEORFT_PROFILE": profile.name}
        invocation = launcher.launch(context, f"training.{method}", args, env,
                                     extras={"asset": asset, "run_key": key})
        messages = invocation.get_custom_messages()
        steps = [m for m in messages if isinstance(m, dict) and m.get("kind") == "metrics"]
        results = [m for m in messages if isinstance(m, dict) and m.get("kind") == "result"]
        if not results:
            raise dg.Failure(f"{asset}: the training process reported no result; see its logs above")
        result = results[-1]
        curves = {name: [(m["step"], m[name]) for m in steps if name in m] for name in CURVES[method]}
        curves = {k: v for k, v in curves.items() if v}
        if curves:
            run.log_figure(line_chart(curves, f"{asset}: {result['global_step']} steps", "step"),
                           f"{asset}/curves.png")
        run.log_dict(result, f"{asset}/result.json")
    materialization = invocation.get_materialize_result()
    manifest = {"uri": result["checkpoint_uri"], "content_hash": result["checkpoint_version"],
                "base_model": base_model, "method": method, "global_step": result["global_step"],
                "data_version": data["content_hash"], "run_key": key, "mlflow_run_id": run.run_id, **lineage}
    last = next((m for m in reversed(steps) if "train_runtime" not in m), {})  # the last step, not the summary
    metadata = {
        **materialization.metadata,
        "checkpoint_uri": dg.MetadataValue.path(result["checkpoint_uri"]),
        "base_model": base_model, "recipe": _shown(recipe),
        "mode": prof.training.mode, "global_step": result["global_step"], "run_key": key,
        "resumed_from": result.get("resumed_from") or "(start)",
        "dataset_versions": dg.MetadataValue.json(lineage),
        "last_step_metrics": dg.MetadataValue.json({k: v for k, v in last.items() if k not in ("kind", "time")}),
        "curves": dg.MetadataValue.json({k: [v for _, v in pts] for k, pts in curves.items()}),
        "skipped_media": result.get("skipped_media", 0),
        # what the child actually decoded (it reports its own values, not what it was asked for)
        "video_frames": result["frames"], "video_max_pixels": result["max_pixels"],
        "mlflow_run_url": dg.MetadataValue.url(run.url),
    }
    return dg.MaterializeResult(value=manifest, data_version=materialization.data_version, metadata=metadata,
                                check_results=materialization.check_results)


def _checks(asset: str, method: str) -> list[dg.AssetCheckSpec]:
    specs = [*CHECK_DESCRIPTIONS[method].items(), SMOKE_CHECK]
    return [dg.AssetCheckSpec(name, asset=asset, description=text) for name, text in specs]


def build_training_assets(profile: Profile) -> list[dg.AssetsDefinition]:
    mode = profile.training.mode
    assets: list[dg.AssetsDefinition] = []

    def base_model(method: str) -> str:
        from training.config import load_recipe

        return profile.training.base_model or load_recipe(profile.training.recipe_path(method), method
                                                          ).model.name_or_path

    if mode in ("sft+rl", "sft"):
        # Table 2's "w/o CoT Refinement" trains on the blind CoTs instead; the parameter keeps one name.
        sft_data = "cot_sft_set" if profile.training.sft_data == "refined" else "unrefined_cot_sft_set"

        @dg.asset(name="sft_checkpoint", group_name="training", code_version="1", pool=GPU_POOL,
                  kinds={"pytorch", "python"},
                  ins={"cot_sft_set": dg.AssetIn(key=sft_data)}, check_specs=_checks("sft_checkpoint", "sft"),
                  description=f"Qwen2.5-VL after SFT on {sft_data} (paper 3.2): TRL SFTTrainer, loss on the "
                  "assistant turn only, launched through the launcher resource; the checkpoint's content hash "
                  "is the data version.")
        def sft_checkpoint(context: dg.AssetExecutionContext, cot_sft_set: dict[str, Any],
                           profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource,
                           launcher: LauncherResource):
            lineage = {"sft_data": sft_data, "cot_sft_set": cot_sft_set["content_hash"],
                       "prompt_hashes": json.dumps(cot_sft_set.get("prompt_hashes", []))}
            return _train(context, "sft", cot_sft_set, base_model("sft"), profile, storage, mlflow, launcher,
                          lineage)

        assets.append(sft_checkpoint)

    if mode in ("sft+rl", "rl"):
        description = ("Qwen2.5-VL after GRPO with the VideoRFT reward (paper 3.3): format + accuracy + gated "
                       "semantic consistency, the video passed into the loss forward; started from the SFT "
                       "checkpoint (training.mode sft+rl) or from the base model (rl).")

        def run_grpo(context: dg.AssetExecutionContext, rl_set: dict[str, Any], sft: dict[str, Any] | None,
                     profile: ProfileResource, storage: StorageResource, mlflow: MlflowResource,
                     launcher: LauncherResource) -> dg.MaterializeResult:
            lineage = {"rl_set": rl_set["content_hash"]}
            if sft is not None:
                lineage.update({"sft_checkpoint": sft["content_hash"], "sft_data": sft.get("sft_data", "cot_sft_set"),
                                "cot_sft_set": sft.get("cot_sft_set", ""),
                                "prompt_hashes": sft.get("prompt_hashes", "[]")})
            start = sft["uri"] if sft is not None else base_model("grpo")
            return _train(context, "grpo", rl_set, start, profile, storage, mlflow, launcher, lineage)

        if mode == "sft+rl":
            @dg.asset(name="rl_checkpoint", group_name="training", code_version="1", pool=GPU_POOL,
                      kinds={"pytorch", "python"},
                      ins={"rl_set": dg.AssetIn(), "sft_checkpoint": dg.AssetIn()},
                      check_specs=_checks("rl_checkpoint", "grpo"), description=description)
            def rl_checkpoint(context: dg.AssetExecutionContext, rl_set: dict[str, Any],
                              sft_checkpoint: dict[str, Any], profile: ProfileResource, storage: StorageResource,
                              mlflow: MlflowResource, launcher: LauncherResource):
                return run_grpo(context, rl_set, sft_checkpoint, profile, storage, mlflow, launcher)
        else:
            @dg.asset(name="rl_checkpoint", group_name="training", code_version="1", pool=GPU_POOL,
                      kinds={"pytorch", "python"},
                      ins={"rl_set": dg.AssetIn()}, check_specs=_checks("rl_checkpoint", "grpo"),
                      description=description)
            def rl_checkpoint(context: dg.AssetExecutionContext, rl_set: dict[str, Any], profile: ProfileResource,
                              storage: StorageResource, mlflow: MlflowResource,
                              launcher: LauncherResource):
                return run_grpo(context, rl_set, None, profile, storage, mlflow, launcher)

        assets.append(rl_checkpoint)
    return assets
