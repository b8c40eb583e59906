"""Training assets: launched through Dagster Pipes, metrics in Dagster and MLflow, lineage, the launcher's
pod specs, and the rule that GPU assets never start on their own."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dagster as dg
import pytest
from graph_helpers import data_version, materialize_all
from graph_helpers import latest_metadata as _metadata

from dagster_project.definitions import build_definitions
from resources.launchers import entry_command, pod_spec
from videorft.profile import DEFAULT_VARIANTS, load_profile

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "small-profile.yaml"
TABLE2 = ["base", "sft_only", "rl_only", "full", "no_refinement", "format_accuracy", "ungated", "t_grpo"]


@pytest.mark.slow
def test_every_variant_trains_on_its_data_with_its_rewards_from_its_model_through_pipes(isolated_env, tmp_path):
    import yaml
    from mlflow import MlflowClient

    # a variant configured as `full` under another name (after it): it trains nothing, and still has its model
    raw = yaml.safe_load(SMALL.read_text())
    raw["training"]["variants"] = {"full_twin": {**DEFAULT_VARIANTS["full"], "description": "full, another name"}}
    profile = tmp_path / "with-twin.yaml"
    profile.write_text(yaml.safe_dump(raw))
    defs = build_definitions(load_profile(str(profile)), str(profile))
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance))  # curation first
        results = materialize_all(defs, instance, "group:training")  # every Table 2 variant and the twin
        assert len(results) == 9 and all(r.success for r in results)
        sft = {v: _metadata(instance, "sft_checkpoint", v) for v in TABLE2}
        rl = {v: _metadata(instance, "rl_checkpoint", v) for v in TABLE2}
        checks = {(e.asset_key.to_user_string(), e.check_name): e.passed
                  for r in results if r.dagster_run.tags.get("dagster/partition") == "full"
                  for e in r.get_asset_check_evaluations()}
        for asset in ("sft_checkpoint", "rl_checkpoint"):
            assert checks[(asset, "checkpoint_loads_and_generates")], asset
        assert ("sft_checkpoint", "training_loss_fell") in checks
        # GRPO is checked on what it is for (a 2-step run is too short to judge: those fail as warnings)
        assert {name for asset, name in checks if asset == "rl_checkpoint"} == {
            "reward_rose", "accuracy_reward_rose", "no_dead_reward", "kl_within_bound", "probe_accuracy_rose",
            "checkpoint_loads_and_generates", "fits_memory"}
        assert checks[("rl_checkpoint", "kl_within_bound")]
        assert checks[("sft_checkpoint", "fits_memory")] and checks[("rl_checkpoint", "fits_memory")]  # planned
        assert sft["sft_only"]["plan_memory_per_gpu_gib"] > 0 and "| fits | yes |" in sft["sft_only"]["plan"]
        assert checks[("rl_checkpoint", "probe_accuracy_rose")]  # no probe world in this profile: not applicable

        # data: the refined CoTs, the blind ones for "w/o CoT refinement", nothing for base and RL only
        assert {v: sft[v]["trained_on"] for v in TABLE2} == {
            **{v: "cot_sft_set" for v in TABLE2}, "no_refinement": "unrefined_cot_sft_set",
            "base": "(nothing)", "rl_only": "(nothing)"}
        assert sft["full"]["reused_from_variant"] == "sft_only"  # one SFT for the five variants that share it
        assert sft["full"]["final_loss"] == sft["sft_only"]["final_loss"]  # a reused run shows its curves too
        assert sft["full"]["curves_plot"] == sft["sft_only"]["curves_plot"]
        assert sft["full"]["checkpoint_uri"] == sft["sft_only"]["checkpoint_uri"]
        assert sft["no_refinement"]["checkpoint_uri"] != sft["full"]["checkpoint_uri"]
        # start model: the base model for RL only, the variant's own SFT checkpoint otherwise
        assert rl["rl_only"]["start_model"] == "tiny-random" and rl["base"]["start_model"] == "tiny-random"
        for v in ("full", "no_refinement", "format_accuracy", "ungated", "t_grpo"):
            assert rl[v]["start_model"] == sft[v]["checkpoint_uri"], v
            assert rl[v]["trained_on"] == "rl_set" and rl[v]["global_step"] == 2, v
        assert rl["sft_only"]["checkpoint_uri"] == sft["sft_only"]["checkpoint_uri"]  # no RL: SFT is final
        assert rl["sft_only"]["skipped_stage"] == "RL" and rl["base"]["stages"] == "none"
        twin_rl = _metadata(instance, "rl_checkpoint", "full_twin")
        assert twin_rl["reused_from_variant"] == "full" and twin_rl["checkpoint_uri"] == rl["full"]["checkpoint_uri"]
        assert twin_rl["mlflow_registered_model"] == "videorft-tests-full_twin v1"
        assert "mlflow_registered_model" not in sft["full"]  # reused, but not full's final model
        # rewards
        everything = "format_reward, accuracy_reward, semantic_consistency_reward"
        assert {v: rl[v]["rewards"] for v in ("rl_only", "full", "no_refinement", "format_accuracy", "t_grpo")} == {
            "rl_only": everything, "full": everything, "no_refinement": everything,
            "format_accuracy": "format_reward, accuracy_reward",
            "t_grpo": "format_reward, accuracy_reward, temporal_reward"}
        assert "reward.semantic.mode=ungated" in rl["ungated"]["overrides"]
        # each reward the run logged is a top-level float (Dagster's Plots tab), and no other
        assert "final_temporal_reward" in rl["t_grpo"] and "change_temporal_reward" in rl["t_grpo"]
        assert "final_semantic_consistency_reward" not in rl["format_accuracy"]

        storage = Path(isolated_env["VIDEORFT_STORAGE_ROOT"])
        for meta, asset, variant in ((sft["full"], "sft_checkpoint", "full"), (rl["full"], "rl_checkpoint", "full")):
            uri = Path(meta["checkpoint_uri"])
            assert uri.is_relative_to(storage / "training" / asset) and (uri / "COMPLETE").exists()
            assert uri.name == f"v-{data_version(instance, asset, variant)}"  # content hash = data version
        # lineage: the RL checkpoint names the SFT checkpoint and the datasets, which name the prompts
        assert rl["full"]["dataset_versions"]["start_checkpoint"] == Path(sft["full"]["checkpoint_uri"]).name[2:]
        assert sft["full"]["dataset_versions"]["cot_sft_set"]
        assert {k for k in sft["full"]["dataset_versions"] if k.startswith("prompt.")} == {
            "prompt.cot_generation", "prompt.cot_refinement", "prompt.structured_representation"}
        assert rl["no_refinement"]["dataset_versions"]["sft_data"] == "unrefined_cot_sft_set"
        for metric in ("loss", "reward", "format_reward", "accuracy_reward", "semantic_consistency_reward", "kl"):
            assert isinstance(rl["full"][f"final_{metric}"], float) and f"change_{metric}" in rl["full"], metric
        assert isinstance(sft["sft_only"]["final_loss"], float) and sft["sft_only"]["change_loss"] < 0
        assert re.match(r"\|\s+step \|\s+reward \|", rl["full"]["curve"]) and "kl" in rl["full"]["curve"]
        assert rl["full"]["curves_plot"].startswith("![rl_checkpoint[full] training curves](data:image/png;base64,")
        # the child's step logs reached the Dagster event log through Pipes
        logs = [e.user_message for r in results for e in instance.all_logs(r.run_id)]
        assert any("step 2/2" in m for m in logs)

    client = MlflowClient(tracking_uri=isolated_env["MLFLOW_TRACKING_URI"])
    runs = {(r.data.tags["dagster.asset_key"], r.data.tags.get("videorft.variant")): r for r in client.search_runs(
        [client.get_experiment_by_name("videorft-tests").experiment_id]) if "dagster.asset_key" in r.data.tags}
    sft_run, rl_run = runs[("sft_checkpoint", "sft_only")], runs[("rl_checkpoint", "full")]
    assert [m.step for m in client.get_metric_history(sft_run.info.run_id, "loss")] == [1, 2, 3, 4]
    for metric in ("rewards/format_reward/mean", "rewards/semantic_consistency_reward/mean", "kl",
                   "completions/mean_length", "learning_rate", "GRPO/reward", "GRPO/kl"):
        # a metric that varied is charted; one that never did is a tag, not a flat chart
        assert (client.get_metric_history(rl_run.info.run_id, metric)
                or f"constant_metric.{metric}" in rl_run.data.tags), metric
    # nested under one parent per Dagster run, with a description, the datasets read, the model registered
    parent = client.get_run(rl_run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["videorft.kind"] == "dagster_run"
    assert parent.data.tags["dagster.run_id"] == rl_run.data.tags["dagster.run_id"]
    assert rl_run.data.tags["mlflow.note.content"].startswith("**rl_checkpoint[full]**")
    [read] = rl_run.inputs.dataset_inputs
    assert read.dataset.name == "rl_set" and {t.key: t.value for t in read.tags}["mlflow.data.context"] == "training"
    [version] = client.search_model_versions("name = 'videorft-tests-full'")
    assert client.get_model_version_by_alias("videorft-tests-full", "current").version == version.version
    assert version.run_id == rl_run.info.run_id and version.tags["rl_set"] and version.tags["start_checkpoint"]
    assert version.tags["prompt.cot_generation"] and version.tags["rewards"].startswith("format_reward")
    assert client.search_model_versions("name = 'videorft-tests-sft_only'")  # SFT is sft_only's final model
    [twin] = client.search_model_versions("name = 'videorft-tests-full_twin'")  # linked to the run that trained it
    assert twin.run_id == rl_run.info.run_id and twin.source == version.source and twin.tags["variant"] == "full_twin"
    assert ("rl_checkpoint", "full_twin") not in runs  # nothing trained, so no training run
    artifacts = {a.path for a in client.list_artifacts(rl_run.info.run_id, "rl_checkpoint")}
    assert "rl_checkpoint/curves.png" in artifacts


def test_training_assets_never_materialize_on_their_own():
    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    graph = defs.resolve_asset_graph()
    training = {dg.AssetKey("sft_checkpoint"), dg.AssetKey("rl_checkpoint")}
    for key in training:
        assert graph.get(key).automation_condition is None
    for trigger in [*(defs.schedules or []), *(defs.sensors or [])]:  # re-evaluation only, never training
        if isinstance(trigger, dg.AutomationConditionSensorDefinition):  # targets assets, not a job
            assert not set(trigger.asset_selection.resolve(graph)) & training
            continue
        job = defs.resolve_job_def(trigger.job_name)
        assert not set(job.asset_layer.selected_asset_keys) & training


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


@pytest.mark.slow
def test_two_cpu_processes_train_sft_and_grpo_through_the_launcher(isolated_env, tmp_path):
    """``training.launcher.num_processes: 2`` on a CPU machine: torchrun, DDP over gloo, through the asset path."""
    import yaml

    raw = yaml.safe_load(SMALL.read_text())
    variants = {v: None for v in TABLE2 if v not in ("full", "sft_only", "base")}
    # ungated, so that the semantic reward is paid on every completion of both ranks: 2 steps x 4 x 2 ranks
    variants["full"] = {"sft": "cot_sft_set", "rl": {"semantic_mode": "ungated"}}
    raw["training"].update({"launcher": {"num_processes": 2}, "run_variants": ["full"], "variants": variants})
    profile = tmp_path / "two-processes.yaml"
    profile.write_text(yaml.safe_dump(raw))
    defs = build_definitions(load_profile(str(profile)), str(profile))
    with dg.instance_for_test() as instance:
        assert all(r.success for r in materialize_all(defs, instance))
        [result] = materialize_all(defs, instance, "group:training", variants=["full"])
        assert result.success
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
        launches = [m for m in logs if m.startswith("launching:")]
        assert len(launches) == 2 and all("torch.distributed.run --standalone --nproc_per_node 2" in m
                                          for m in launches)
        assert all(f"-m videorft.lifetime --parent {os.getpid()} -- " in m for m in launches)  # dies with the step
        steps = [m.split(":")[0] for m in logs if re.match(r"step \d+/\d+: ", m) and "train_runtime" not in m]
        for asset, total in (("sft_checkpoint", 4), ("rl_checkpoint", 2)):  # the fast recipes' max_steps
            meta = _metadata(instance, asset, "full")
            assert meta["global_step"] == total and isinstance(meta["final_loss"], float), asset
            # one checkpoint, written by rank 0 only
            published = list((Path(isolated_env["VIDEORFT_STORAGE_ROOT"]) / "training" / asset).glob("v-*"))
            assert [p.name for p in published] == [Path(meta["checkpoint_uri"]).name], asset
        # counts over both ranks, not rank 0's share
        assert _metadata(instance, "rl_checkpoint", "full")["semantic_paid_rows"] == 2 * 4 * 2
        # each step reported once (rank 0), not once per rank
        assert steps == [f"step {i}/4" for i in range(1, 5)] + [f"step {i}/2" for i in range(1, 3)]
    # each rank fed its own share of the videos to the loss forward (DDP's sampler), in SFT and in GRPO
    for asset in ("sft_checkpoint", "rl_checkpoint"):
        [run_dir] = (Path(isolated_env["VIDEORFT_RUNS_DIR"]) / asset).iterdir()
        seen = {}
        for rank in (0, 1):
            lines = (run_dir / "loss_media" / f"rank-{rank}.jsonl").read_text().splitlines()
            seen[rank] = [m for line in lines for m in json.loads(line)["media"]]
        assert seen[0] and seen[1] and seen[0] != seen[1], asset
        assert all(Path(m).exists() for m in seen[0] + seen[1]), asset


def test_two_local_processes_without_an_accelerate_config_run_under_torchrun():
    from videorft.profile import LauncherConfig

    command = entry_command(LauncherConfig(num_processes=2), "training.sft", ["--config", "x"], python="python")
    assert command == ["python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                       "training.sft", "--config", "x"]
    assert entry_command(LauncherConfig(), "training.sft", [], python="python") == ["python", "-m", "training.sft"]
    # evaluation is one process whatever training uses
    from resources.launchers import one_gpu

    assert entry_command(one_gpu(LauncherConfig(num_processes=2)), "evaluation.run", [], python="python") == [
        "python", "-m", "evaluation.run"]
