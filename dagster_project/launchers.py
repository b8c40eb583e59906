"""The launcher resource: runs a stage library's entry point where the GPUs are, through Dagster Pipes.

``subprocess``: plain ``python -m ...`` (or ``accelerate launch`` with a config from ``configs/accelerate/``)
on the machine running the step, via ``PipesSubprocessClient``. ``k8s``: a pod with GPU requests,
tolerations, volumes and Secrets, via ``PipesK8sClient``. Either way the child streams its step metrics,
its materialization and its checks back over Pipes. ``pod_spec`` renders the pod without a cluster, which
is how the paper profiles' specs are tested here.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import dagster as dg

from videorft.profile import K8sLaunchConfig, LauncherConfig, project_root

# Forwarded from the Dagster process to a local child; a pod gets its own from env_from_secrets instead.
PASSTHROUGH_ENV = ("VIDEORFT_PROFILE", "VIDEORFT_STORAGE_ROOT", "VIDEORFT_MEDIA_CACHE", "VIDEORFT_PROJECT_ROOT",
                   "VIDEORFT_CONFIG_DIR", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                   "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL", "PATH", "HOME", "CUDA_VISIBLE_DEVICES")


def entry_command(config: LauncherConfig, module: str, args: list[str], python: str = sys.executable
                  ) -> list[str]:
    """``python -m module args`` or, with an accelerate config, ``accelerate launch ... -m module args``."""
    if config.accelerate_config:
        accel = config.accelerate_config
        accel = accel if os.path.isabs(accel) else str(project_root() / accel)
        return [python, "-m", "accelerate.commands.launch", "--config_file", accel, "--num_processes",
                str(config.num_processes), "-m", module, *args]
    return [python, "-m", module, *args]


def pod_spec(k8s: K8sLaunchConfig, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The pod spec PipesK8sClient merges its Pipes plumbing into (it names the container and injects the
    Pipes environment itself): GPU requests and limits, tolerations, node selector, volumes + /dev/shm."""
    resources = {"cpu": k8s.cpu, "memory": k8s.memory}
    if k8s.gpus:
        resources[k8s.gpu_resource] = str(k8s.gpus)
    volumes = [*k8s.volumes, {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s.shm_size}}]
    mounts = [*k8s.volume_mounts, {"name": "dshm", "mountPath": "/dev/shm"}]
    container: dict[str, Any] = {
        "image": k8s.image, "imagePullPolicy": k8s.image_pull_policy, "command": command,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "envFrom": [{"secretRef": {"name": name}} for name in k8s.env_from_secrets],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": volumes,
                            "tolerations": list(k8s.tolerations), "nodeSelector": dict(k8s.node_selector)}
    if k8s.service_account:
        spec["serviceAccountName"] = k8s.service_account
    return spec


class LauncherResource(dg.ConfigurableResource):
    """Launches ``python -m <module>`` for an asset, locally or as a Kubernetes pod, over Dagster Pipes."""

    config_json: str  # LauncherConfig as JSON (from the profile's training.launcher)

    @property
    def config(self) -> LauncherConfig:
        return LauncherConfig.model_validate_json(self.config_json)

    @property
    def runs_dir_in_child(self) -> str | None:
        """Where the child keeps its run folders when that is not this machine's disk (a pod's volume)."""
        return self.config.k8s.runs_dir if self.config.kind == "k8s" else None

    def launch(self, context: dg.AssetExecutionContext, module: str, args: list[str], env: dict[str, str],
               extras: dict[str, Any] | None = None, single_process: bool = False
               ) -> dg.PipesClientCompletedInvocation:
        """``single_process`` (evaluation): plain python, and one GPU in a pod, whatever training uses."""
        cfg = self.config
        if single_process:
            cfg = cfg.model_copy(update={"accelerate_config": None,
                                         "k8s": cfg.k8s.model_copy(update={"gpus": min(cfg.k8s.gpus, 1)})})
        if cfg.kind == "k8s":
            from dagster_k8s import PipesK8sClient

            command = entry_command(cfg, module, args, python="python")
            spec = pod_spec(cfg.k8s, command, env)
            context.log.info(f"launching pod in {cfg.k8s.namespace}: {shlex.join(command)}")
            client = PipesK8sClient(load_incluster_config=cfg.k8s.load_incluster_config,
                                    kubeconfig_file=cfg.k8s.kubeconfig_file)
            return client.run(context=context, image=cfg.k8s.image, namespace=cfg.k8s.namespace,
                              base_pod_spec=spec, extras=extras)
        command = entry_command(cfg, module, args)
        child_env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        child_env.setdefault("VIDEORFT_PROJECT_ROOT", str(project_root()))
        context.log.info(f"launching: {shlex.join(command)}")
        return dg.PipesSubprocessClient(cwd=str(project_root())).run(
            command=command, context=context, env={**child_env, **env}, extras=extras)
