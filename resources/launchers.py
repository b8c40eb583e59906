"""The launcher resource: runs a stage library's entry point where the GPUs are, through Dagster Pipes.

``subprocess``: plain ``python -m ...`` (or ``accelerate launch`` with a config from ``configs/accelerate/``)
on the machine running the step, via ``PipesSubprocessClient``. ``k8s``: a pod with GPU requests,
tolerations, volumes and Secrets, via ``PipesK8sClient``. Either way the child streams its step metrics,
its materialization and its checks back over Pipes. ``pod_spec`` renders the pod without a cluster, which
is how the paper profiles' specs are tested here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from videorft.lifetime import wrap
from videorft.pipes import QUIET_CHILD_ENV
from videorft.profile import K8sLaunchConfig, LauncherConfig, Profile, project_root

# Dagster's own Pipes client calls a preview API of itself on every launch; nothing for a user to act on.
warnings.filterwarnings("ignore", message=r".*PipesMessageReader\.expected_writer_count.*",
                        category=dg.PreviewWarning)

# Forwarded from the Dagster process to a local child; a pod gets its own from env_from_secrets instead.
PASSTHROUGH_ENV = ("VIDEORFT_PROFILE", "VIDEORFT_STORAGE_ROOT", "VIDEORFT_MEDIA_CACHE", "VIDEORFT_PROJECT_ROOT",
                   "VIDEORFT_CONFIG_DIR", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                   "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL", "PATH", "HOME", "CUDA_VISIBLE_DEVICES")


def entry_command(config: LauncherConfig, module: str, args: list[str], python: str = sys.executable,
                  rank: int = 0, main_host: str | None = None) -> list[str]:
    """``python -m module args``; with an accelerate config, ``accelerate launch ... -m module args`` (across
    ``k8s.nodes`` machines each rank gets the machine flags that meet at ``main_host``); with
    ``num_processes`` > 1 and no accelerate config, ``torchrun --standalone --nproc_per_node N -m module``."""
    if config.accelerate_config:
        accel = config.accelerate_config
        # a pod resolves a relative config against its image's working directory; here, against the checkout
        accel = accel if os.path.isabs(accel) or python != sys.executable else str(project_root() / accel)
        nodes = config.k8s.nodes if config.kind == "k8s" else 1
        machine = []
        if nodes > 1:
            machine = ["--num_machines", str(nodes), "--machine_rank", str(rank), "--main_process_ip",
                       main_host or "localhost", "--main_process_port", str(config.k8s.rendezvous_port)]
        return [python, "-m", "accelerate.commands.launch", "--config_file", accel, "--num_processes",
                str(config.num_processes * nodes), *machine, "-m", module, *args]
    if config.num_processes > 1:
        # plain DDP on one machine (gloo on CPU, NCCL on GPUs): torchrun sets RANK/WORLD_SIZE for the Trainer.
        # `accelerate launch --cpu` would start a single process whatever --num_processes says.
        return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                str(config.num_processes), "-m", module, *args]
    return [python, "-m", module, *args]


def launch_name(run_id: str, asset: str) -> str:
    """A DNS-1123 name shared by one launch's Service and worker pods."""
    return f"vrft-{run_id[:8]}-{asset.replace('_', '-')}"[:52].rstrip("-")


def multinode_specs(config: LauncherConfig, module: str, args: list[str], env: dict[str, str], name: str
                    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(rank-0 pod spec, worker pod manifests, headless Service) for one launch. With one node: the Pipes pod
    alone. Workers find rank 0 through the Service, which selects the Pipes pod by its labels."""
    k8s = config.k8s
    if k8s.nodes == 1:
        return pod_spec(k8s, entry_command(config, module, args, python="python"), env), [], None
    host = f"{name}.{k8s.namespace}.svc"
    rank0 = pod_spec(k8s, entry_command(config, module, args, python="python", rank=0, main_host=host), env)
    rank0["containers"][0]["ports"] = [{"containerPort": k8s.rendezvous_port, "name": "rendezvous"}]
    rank0["hostname"], rank0["subdomain"] = "rank-0", name
    workers = []
    for rank in range(1, k8s.nodes):
        spec = pod_spec(k8s, entry_command(config, module, args, python="python", rank=rank, main_host=host), env)
        spec["containers"][0]["name"] = "worker"
        workers.append({"apiVersion": "v1", "kind": "Pod", "spec": spec,
                        "metadata": {"name": f"{name}-rank-{rank}", "namespace": k8s.namespace,
                                     "labels": {"videorft/launch": name, "videorft/rank": str(rank)}}})
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": k8s.namespace, "labels": {"videorft/launch": name}},
               "spec": {"clusterIP": "None", "selector": {"videorft/launch": name, "videorft/rank": "0"},
                        "ports": [{"name": "rendezvous", "port": k8s.rendezvous_port}]}}
    return rank0, workers, service


@contextlib.contextmanager
def worker_pods(k8s: K8sLaunchConfig, workers: list[dict[str, Any]], service: dict[str, Any] | None
                ) -> Iterator[None]:
    """Create the Service and the worker ranks for the duration of the rank-0 Pipes pod; always delete them."""
    if not workers:
        yield
        return
    import kubernetes

    if k8s.load_incluster_config:
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config(k8s.kubeconfig_file)
    api = kubernetes.client.CoreV1Api()
    created: list[str] = []
    try:
        if service is not None:
            api.create_namespaced_service(k8s.namespace, service)
        for pod in workers:
            api.create_namespaced_pod(k8s.namespace, pod)
            created.append(pod["metadata"]["name"])
        yield
    finally:
        for name in created:
            api.delete_namespaced_pod(name, k8s.namespace, grace_period_seconds=30)
        if service is not None:
            api.delete_namespaced_service(service["metadata"]["name"], k8s.namespace)


def render_pod_specs(profile: Profile) -> dict[str, Any]:
    """What the launcher submits for each GPU asset of ``profile`` (data and output flags are appended at
    launch from the asset's inputs): the pod specs and, across nodes, the worker pods and Service."""
    launcher = profile.training.launcher
    if launcher.kind != "k8s":
        raise ValueError(f"profile {profile.name} launches locally (training.launcher.kind: {launcher.kind})")
    launches = {"sft_checkpoint": ("training.sft", ["--config", profile.training.sft_recipe], launcher),
                "rl_checkpoint": ("training.grpo", ["--config", profile.training.grpo_recipe], launcher),
                "benchmark_scores": ("evaluation.run", ["--profile", profile.name], one_gpu(launcher))}
    out: dict[str, Any] = {}
    for asset, (module, args, cfg) in launches.items():
        name = launch_name("00000000", asset)
        rank0, workers, service = multinode_specs(cfg, module, args, {"VIDEORFT_PROFILE": profile.name}, name)
        out[asset] = {"pod": rank0, **({"workers": workers, "service": service} if workers else {})}
    return out


def one_gpu(config: LauncherConfig) -> LauncherConfig:
    """Evaluation: plain python on one GPU of one node, whatever training uses."""
    k8s = config.k8s.model_copy(update={"gpus": min(config.k8s.gpus, 1), "nodes": 1})
    return config.model_copy(update={"accelerate_config": None, "num_processes": 1, "k8s": k8s})


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
    def on_this_machine(self) -> bool:
        """A single-process job (evaluation, the embeddings precompute) may then run in the asset's own process:
        a launch would pay torch's and transformers' import for each partition (~8 s on CPU)."""
        return self.config.kind != "k8s"

    @property
    def runs_dir_in_child(self) -> str | None:
        """Where the child keeps its run folders when that is not this machine's disk (a pod's volume)."""
        return self.config.k8s.runs_dir if self.config.kind == "k8s" else None

    def launch(self, context: dg.AssetExecutionContext, module: str, args: list[str], env: dict[str, str],
               extras: dict[str, Any] | None = None, single_process: bool = False
               ) -> dg.PipesClientCompletedInvocation:
        """``single_process`` (evaluation): plain python, and one GPU in a pod, whatever training uses."""
        cfg = one_gpu(self.config) if single_process else self.config
        env = {**QUIET_CHILD_ENV, **env}  # the child's logs reach Dagster over Pipes: no console chatter
        if cfg.kind == "k8s":
            from dagster_k8s import PipesK8sClient

            name = launch_name(context.run.run_id, context.asset_key.to_python_identifier())
            spec, workers, service = multinode_specs(cfg, module, args, env, name)
            context.log.info(f"launching {cfg.k8s.nodes} pod(s) in {cfg.k8s.namespace}: "
                             f"{shlex.join(spec['containers'][0]['command'])}")
            client = PipesK8sClient(load_incluster_config=cfg.k8s.load_incluster_config,
                                    kubeconfig_file=cfg.k8s.kubeconfig_file)
            with worker_pods(cfg.k8s, workers, service):
                return client.run(context=context, image=cfg.k8s.image, namespace=cfg.k8s.namespace,
                                  base_pod_spec=spec, extras=extras,
                                  base_pod_meta={"labels": {"videorft/launch": name, "videorft/rank": "0"}})
        command = entry_command(cfg, module, args)
        child_env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        child_env.setdefault("VIDEORFT_PROJECT_ROOT", str(project_root()))
        command = wrap(command)  # killing this step, even with SIGKILL, takes the launch and its ranks with it
        context.log.info(f"launching: {shlex.join(command)}")
        return dg.PipesSubprocessClient(cwd=str(project_root())).run(
            command=command, context=context, env={**child_env, **env}, extras=extras)
