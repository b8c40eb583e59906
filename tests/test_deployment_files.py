"""The deployment files are valid without a Docker engine: the compose file against the Compose
specification (and Debian's ``docker-compose config`` where installed), every file the images copy exists,
the instance and workspace YAML load in Dagster, and the cluster executor's config validates."""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yaml"
# The Compose specification's schema as shipped by Debian's docker-compose 1.29.2 (Apache-2.0).
COMPOSE_SCHEMA = Path(__file__).parent / "fixtures" / "compose_spec.json"
COMPOSE_ENV = {"POSTGRES_PASSWORD": "pw", "S3_ACCESS_KEY": "ak", "S3_SECRET_KEY": "sk"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft201909Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification():
    assert _schema_errors(_compose()) == []
    broken = copy.deepcopy(_compose())
    broken["services"]["webserver"]["restart_policy"] = "always"  # not a service key: the schema must say so
    assert any("restart_policy" in e for e in _schema_errors(broken))


def test_docker_compose_config_accepts_the_file_and_demands_the_secrets():
    if shutil.which("docker-compose") is None:
        # scripts/setup.sh installs it as root; the schema test above validates the file either way
        reason = "Debian's docker-compose is not installed (apt install docker-compose)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    base = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    ok = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], env={**base, **COMPOSE_ENV},
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], env=base,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD in docker/.env" in missing.stderr


def test_compose_runs_the_whole_deployment_with_ports_on_loopback_only():
    services = _compose()["services"]
    assert {"postgres", "s3", "mlflow", "code", "webserver", "daemon", "dagster-init"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "mlflow" in services["mlflow"]["command"] and any(
        a.startswith("--backend-store-uri=postgresql") for a in services["mlflow"]["command"])
    assert "--artifacts-destination=s3://mlflow/artifacts" in services["mlflow"]["command"]
    assert services["code"]["command"][:3] == ["dagster", "code-server", "start"]
    assert services["dagster-init"]["command"] == ["python", "-m", "dagster_project", "pools"]
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/workspace.yaml" in services[name]["command"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()


def test_no_secret_has_a_default_in_the_compose_file():
    text = COMPOSE.read_text()
    for var in ("POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        assert f"${{{var}:-" not in text and f"${{{var}:?" in text
    for role in ("DESCRIBER", "REASONER", "REFINER"):
        assert f"VIDEORFT_{role}_API_KEY: ${{VIDEORFT_{role}_API_KEY:-}}" in text


def _copies(dockerfile: Path) -> list[str]:
    """Sources of every COPY/ADD from the build context (multi-stage ``--from`` copies excluded)."""
    sources: list[str] = []
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.train"])
def test_every_file_an_image_copies_exists_and_is_not_dockerignored(dockerfile):
    sources = _copies(DOCKER / dockerfile)
    assert sources
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile} copies {source}, which is not in the repository"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is .dockerignored"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in packages["include"]:
        package = pattern.rstrip("*")
        assert package in sources, f"{dockerfile} does not copy the package {package}"


def test_training_image_is_cuda_with_deepspeed_and_pipes():
    text = (DOCKER / "Dockerfile.train").read_text()
    assert "nvidia/cuda:" in text and "download.pytorch.org/whl/cu" in text
    assert "import torch, deepspeed, trl, dagster_pipes, training, evaluation" in text


def test_production_instance_yaml_loads_with_storage_monitoring_retries_and_pools(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(DOCKER / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@127.0.0.1:5432/d")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", "logs")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] >= 1
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"


def test_compose_workspace_loads_the_code_server_over_grpc(monkeypatch):
    from dagster._core.workspace.config_schema import process_workspace_config

    environment = _compose()["x-videorft-env"]
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", environment["DAGSTER_CODE_SERVER_HOST"])
    monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", environment["DAGSTER_CODE_SERVER_PORT"])

    for path in (DOCKER / "workspace.yaml", ROOT / "workspace.yaml"):
        result = process_workspace_config(yaml.safe_load(path.read_text()))
        assert result.success, (path, result.errors)
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    assert result.success and workspace["load_from"][0]["grpc_server"]["location_name"] == "videorft"
    code = _compose()["services"]["code"]["command"]
    assert code[-4:] == ["-p", environment["DAGSTER_CODE_SERVER_PORT"], "-m", "dagster_project.definitions"]


def test_assets_that_call_experts_or_hold_gpus_are_in_their_pools():
    from assets.curation import build_curation_assets
    from assets.evaluation import build_evaluation_assets
    from assets.training import build_training_assets
    from videorft.profile import GPU_POOL, LLM_API_POOL, load_profile

    profile = load_profile("tiny", env={})
    pools = {}
    for assets_def in [*build_curation_assets(profile), *build_training_assets(profile),
                       *build_evaluation_assets(profile)]:
        for key in assets_def.keys:
            pools[key.to_user_string()] = assets_def.node_def.pool if hasattr(assets_def.node_def, "pool") else None
    for name in ("structured_video_representations", "initial_cots", "refined_cots"):
        assert pools[name] == LLM_API_POOL
    for name in ("sft_checkpoint", "rl_checkpoint", "benchmark_scores"):
        assert pools[name] == GPU_POOL
    assert pools["cot_sft_set"] is None and pools["scoreboard"] is None


def test_cluster_profiles_run_steps_as_kubernetes_jobs_with_a_valid_executor_config():
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    from dagster_project.definitions import build_definitions
    from dagster_project.executors import k8s_executor_config
    from videorft.profile import load_profile

    for name in ("paper-3b", "paper-7b"):
        profile = load_profile(name, env={})
        assert profile.dagster.executor == "k8s"
        config = k8s_executor_config(profile.dagster)
        result = process_config(k8s_job_executor.config_schema.config_type, config)
        assert result.success, result.errors
        assert config["job_image"].endswith("videorft-code:latest") and "videorft-experts" in config["env_secrets"]
        job = build_definitions(profile, name).resolve_implicit_global_asset_job_def()
        assert job.executor_def.name == "k8s"
    tiny = load_profile("tiny", env={})
    multi = tiny.dagster.model_copy(update={"executor": "multiprocess", "max_concurrent": 4})
    from dagster_project.executors import build_executor

    assert build_executor(multi).name == "multiprocess"


def _k8s_documents() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        if path.name == "values.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def test_example_manifests_define_everything_the_paper_profiles_refer_to():
    from videorft.profile import load_profile

    docs = _k8s_documents()
    values = yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())
    for name in ("paper-3b", "paper-7b"):
        profile = load_profile(name, env={})
        k8s, executor = profile.training.launcher.k8s, profile.dagster.k8s
        for secret in {*k8s.env_from_secrets, *executor.env_secrets}:
            assert ("Secret", secret) in docs, f"{name} names Secret {secret}, which docker/k8s does not define"
            assert all(v in ("", "us-east-1") or not v.startswith(("sk-", "AKIA"))
                       for v in docs[("Secret", secret)]["stringData"].values())
        for volume in k8s.volumes:
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                assert ("PersistentVolumeClaim", claim) in docs
        assert ("ServiceAccount", executor.service_account) in docs
        assert k8s.namespace == executor.namespace == docs[("Namespace", "videorft")]["metadata"]["name"]
    role = docs[("Role", "videorft-launcher")]
    granted = {r for rule in role["rules"] for r in rule["resources"] if "create" in rule["verbs"]}
    assert {"pods", "services", "jobs"} <= granted
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "dagster_project.definitions"]
    assert values["dagsterWebserver"]["enableReadOnly"] is True


def test_the_committed_paper_7b_pod_specs_are_what_the_launcher_renders():
    done = subprocess.run([sys.executable, "-m", "dagster_project", "pod-specs", "--profile", "paper-7b"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "VIDEORFT_PROFILE": "tiny"})
    assert done.returncode == 0, done.stderr
    committed = DOCKER / "k8s" / "rendered" / "paper-7b-pods.yaml"
    assert done.stdout == committed.read_text(), (
        "docker/k8s/rendered/paper-7b-pods.yaml is stale: regenerate it with "
        "python -m dagster_project pod-specs --profile paper-7b > docker/k8s/rendered/paper-7b-pods.yaml")
    specs = yaml.safe_load(done.stdout)
    sft = specs["sft_checkpoint"]["pod"]["containers"][0]
    assert sft["command"][:3] == ["python", "-m", "accelerate.commands.launch"]
    assert sft["resources"]["limits"]["nvidia.com/gpu"] == "8"
    evaluation = specs["benchmark_scores"]["pod"]["containers"][0]
    assert evaluation["command"][:3] == ["python", "-m", "evaluation.run"]
    assert evaluation["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_multi_node_deepspeed_renders_ranked_workers_that_meet_rank_zero_through_a_headless_service():
    from resources.launchers import launch_name, multinode_specs
    from videorft.profile import LauncherConfig, load_profile

    launcher = load_profile("paper-7b", env={}).training.launcher
    two = launcher.model_copy(update={"k8s": launcher.k8s.model_copy(update={"nodes": 2})})
    name = launch_name("0123456789abcdef", "rl_checkpoint")
    rank0, workers, service = multinode_specs(two, "training.grpo", ["--config", "x.yaml"], {"A": "1"}, name)
    assert name == "vrft-01234567-rl-checkpoint"
    host = f"{name}.videorft.svc"
    for rank, command in enumerate([rank0["containers"][0]["command"], workers[0]["spec"]["containers"][0]["command"]]):
        assert command[command.index("--num_machines") + 1] == "2"
        assert command[command.index("--machine_rank") + 1] == str(rank)
        assert command[command.index("--main_process_ip") + 1] == host
        assert command[command.index("--num_processes") + 1] == "16"  # 8 per node
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"videorft/launch": name, "videorft/rank": "0"}
    assert workers[0]["metadata"]["labels"]["videorft/rank"] == "1"
    assert workers[0]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    with pytest.raises(ValueError, match="accelerate_config"):
        LauncherConfig.model_validate({"kind": "k8s", "k8s": {"nodes": 2}})
