"""Training assets: launched through Dagster Pipes, metrics in Dagster and MLflow, lineage, the launcher's
pod specs, and the rule that GPU assets never start on their own."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from graph_helpers import latest_metadata as _metadata
from graph_helpers import materialize_all

from dagster_project.definitions import build_definitions
from resources.launchers import entry_command, pod_spec
from videorft.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "small-profile.yaml"


@pytest.mark.slow
def test_checkpoints_launched_through_pipes_record_metrics_in_dagster_and_mlflow(isolated_env, tmp_path):
    from mlflow import MlflowClient

    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance))  # curation first
        results = materialize_all(defs, instance, "group:training")
        assert all(r.success for r in results)
        checks = {(e.asset_key.to_user_string(), e.check_name): e.passed
                  for r in results for e in r.get_asset_check_evaluations()}
        for asset in ("sft_checkpoint", "rl_checkpoint"):
            assert checks[(asset, "checkpoint_loads_and_generates")], asset
        assert ("sft_checkpoint", "training_loss_fell") in checks
        # GRPO is checked on what it is for (a 2-step run is too short to judge: those fail as warnings)
        assert {name for asset, name in checks if asset == "rl_checkpoint"} == {
            "reward_rose", "accuracy_reward_rose", "no_dead_reward", "kl_within_bound",
            "checkpoint_loads_and_generates"}
        assert checks[("rl_checkpoint", "kl_within_bound")]
        sft, rl = _metadata(instance, "sft_checkpoint"), _metadata(instance, "rl_checkpoint")
        storage = Path(isolated_env["VIDEORFT_STORAGE_ROOT"])
        for meta, asset in ((sft, "sft_checkpoint"), (rl, "rl_checkpoint")):
            uri = Path(meta["checkpoint_uri"])
            assert uri.is_relative_to(storage / "training" / asset) and (uri / "COMPLETE").exists()
            version = instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.tags[
                "dagster/data_version"]
            assert uri.name == f"v-{version}"  # the checkpoint's content hash is the data version
        assert sft["global_step"] == 4 and rl["global_step"] == 2
        # lineage: the RL checkpoint names the SFT checkpoint and the datasets, which name the prompts
        assert rl["dataset_versions"]["sft_checkpoint"] == Path(sft["checkpoint_uri"]).name[2:]
        assert sft["dataset_versions"]["cot_sft_set"] and json.loads(sft["dataset_versions"]["prompt_hashes"])
        assert "rewards/format_reward/mean" in rl["last_step_metrics"] and "kl" in rl["curves"]
        # the child's step logs reached the Dagster event log through Pipes
        logs = [e.user_message for e in instance.all_logs(results[-1].run_id)]
        assert any("step 2/2" in m for m in logs)

    client = MlflowClient(tracking_uri=isolated_env["MLFLOW_TRACKING_URI"])
    runs = {r.data.tags["dagster.asset_key"]: r for r in client.search_runs(
        [client.get_experiment_by_name("videorft-tests").experiment_id])}
    sft_run, rl_run = runs["sft_checkpoint"], runs["rl_checkpoint"]
    assert [m.step for m in client.get_metric_history(sft_run.info.run_id, "loss")] == [1, 2, 3, 4]
    for metric in ("rewards/format_reward/mean", "rewards/semantic_consistency_reward/mean", "kl",
                   "completions/mean_length", "learning_rate"):
        assert client.get_metric_history(rl_run.info.run_id, metric), metric
    artifacts = {a.path for a in client.list_artifacts(rl_run.info.run_id, "rl_checkpoint")}
    assert "rl_checkpoint/curves.png" in artifacts


def test_training_assets_never_materialize_on_their_own():
    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    graph = defs.resolve_asset_graph()
    training = {dg.AssetKey("sft_checkpoint"), dg.AssetKey("rl_checkpoint")}
    for key in training:
        assert graph.get(key).automation_condition is None
    for trigger in [*(defs.schedules or []), *(defs.sensors or [])]:  # re-evaluation only, never training
        job = defs.resolve_job_def(trigger.job_name)
        assert not set(job.asset_layer.selected_asset_keys) & training


def test_training_modes_select_the_table2_variants(tmp_path):
    import yaml

    raw = yaml.safe_load(SMALL.read_text())
    keys = {}
    for mode in ("sft+rl", "sft", "rl"):
        raw["training"] = {**raw["training"], "mode": mode}
        path = tmp_path / f"{mode}.yaml"
        path.write_text(yaml.safe_dump(raw))
        graph = build_definitions(load_profile(str(path)), str(path)).resolve_asset_graph()
        keys[mode] = {k.to_user_string() for k in graph.get_all_asset_keys()} & {"sft_checkpoint", "rl_checkpoint"}
        if mode == "rl":  # RL only starts from the base model: no SFT upstream
            parents = {k.to_user_string() for k in graph.get(dg.AssetKey("rl_checkpoint")).parent_keys}
            assert parents == {"rl_set"}
        evaluated = {k.to_user_string() for k in graph.get(dg.AssetKey("benchmark_scores")).parent_keys}
        assert evaluated == ({"sft_checkpoint"} if mode == "sft" else {"rl_checkpoint"})  # the mode's last one
    assert keys == {"sft+rl": {"sft_checkpoint", "rl_checkpoint"}, "sft": {"sft_checkpoint"},
                    "rl": {"rl_checkpoint"}}
    raw["training"] = {**raw["training"], "mode": "sft"}
    raw["evaluation"] = {**raw["evaluation"], "checkpoint": "rl_checkpoint"}  # not produced in mode sft
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="choose one of \\['base', 'sft_checkpoint'\\]"):
        build_definitions(load_profile(str(path)), str(path))
    raw["evaluation"].pop("checkpoint")
    raw["training"] = {**raw["training"], "mode": "sft+rl", "sft_data": "unrefined"}  # w/o CoT Refinement
    path = tmp_path / "unrefined.yaml"
    path.write_text(yaml.safe_dump(raw))
    graph = build_definitions(load_profile(str(path)), str(path)).resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("sft_checkpoint")).parent_keys} == {
        "unrefined_cot_sft_set"}


def test_paper_7b_pod_spec_requests_gpus_with_tolerations_volumes_and_secrets():
    profile = load_profile("paper-7b", env={})
    launcher = profile.training.launcher
    assert launcher.kind == "k8s"
    command = entry_command(launcher, "training.grpo", ["--config", "configs/paper-7b/grpo.yaml"], python="python")
    spec = pod_spec(launcher.k8s, command, {"MLFLOW_RUN_ID": "abc"})
    [container] = spec["containers"]
    assert container["command"][:3] == ["python", "-m", "accelerate.commands.launch"]  # ZeRO-3 over 8 GPUs
    assert container["command"][-4:] == ["-m", "training.grpo", "--config", "configs/paper-7b/grpo.yaml"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "8"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A800-SXM4-80GB"}
    assert {"name": "runs", "mountPath": "/runs"} in container["volumeMounts"]
    assert any(v["name"] == "dshm" and v["emptyDir"]["medium"] == "Memory" for v in spec["volumes"])
    assert {"secretRef": {"name": "videorft-s3"}} in container["envFrom"]
    assert all("KEY" not in e["name"] for e in container["env"])  # credentials come from Secrets only
    accelerated = launcher.model_copy(update={"accelerate_config": "configs/accelerate/zero3.yaml",
                                              "num_processes": 8})
    cmd = entry_command(accelerated, "training.sft", ["--config", "x"], python="python")
    assert cmd[:3] == ["python", "-m", "accelerate.commands.launch"] and "--num_processes" in cmd
    assert (Path(__file__).resolve().parent.parent / cmd[cmd.index("--config_file") + 1]).is_file()
