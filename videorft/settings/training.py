"""Profile section: Training: where runs launch (subprocess, Kubernetes), the Table 2 variants and the training
section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from videorft.settings import Strict as _Strict
from videorft.settings import project_root
from videorft.settings.world import WorldConfig


class K8sLaunchConfig(_Strict):
    """Pods for training/evaluation through Dagster Pipes (PipesK8sClient). Credentials never live here:
    ``env_from_secrets`` names Kubernetes Secrets whose keys become the pod's environment."""

    namespace: str = "videorft"
    image: str = "ghcr.io/videorft/videorft-train:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    gpus: Annotated[int, Field(ge=0)] = 8
    gpu_resource: str = "nvidia.com/gpu"
    # the GPU's memory for training.plan's fit check; None: known from node_selector's nvidia.com/gpu.product
    gpu_memory_gib: Annotated[float, Field(gt=0)] | None = None
    cpu: str = "32"
    memory: str = "512Gi"
    shm_size: str = "64Gi"  # /dev/shm for dataloader workers and NCCL
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=lambda: [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    volumes: list[dict[str, Any]] = Field(default_factory=list)  # e.g. a PVC holding the run folders
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    runs_dir: str = "/runs"  # run folders inside the pod (on a mounted volume, so a new pod resumes)
    # DeepSpeed across several nodes through accelerate: rank 0 is the Pipes pod, ranks 1..nodes-1 are worker
    # pods that join it through a headless Service on rendezvous_port (needs launcher.accelerate_config).
    nodes: Annotated[int, Field(ge=1)] = 1
    rendezvous_port: int = 29500
    service_account: str | None = None
    env_from_secrets: list[str] = Field(default_factory=list)
    load_incluster_config: bool = True
    kubeconfig_file: str | None = None


class LauncherConfig(_Strict):
    """Where training runs: a local subprocess (plain python; ``torchrun`` DDP when ``num_processes`` > 1, on
    CPU too; or ``accelerate launch`` with a config from ``configs/accelerate/``) or a Kubernetes pod with
    GPUs."""

    kind: Literal["subprocess", "k8s"] = "subprocess"
    accelerate_config: str | None = None
    num_processes: Annotated[int, Field(ge=1)] = 1  # per node
    k8s: K8sLaunchConfig = K8sLaunchConfig()

    @model_validator(mode="after")
    def _multinode_needs_accelerate(self) -> LauncherConfig:
        if self.k8s.nodes > 1 and (self.kind != "k8s" or not self.accelerate_config):
            raise ValueError("k8s.nodes > 1 needs kind: k8s and an accelerate_config (DeepSpeed across nodes)")
        return self


SFT_DATASETS = ("cot_sft_set", "unrefined_cot_sft_set")


class RLVariantConfig(_Strict):
    """How one variant's GRPO differs from the GRPO recipe (Table 2's reward ablations, Video-R1's T-GRPO)."""

    rewards: list[str] | None = None  # None: the recipe's reward.functions (checked against training.rewards)
    semantic_mode: Literal["gated", "ungated", "off"] | None = None  # None: the recipe's reward.semantic.mode
    temporal: bool = False  # T-GRPO: a shuffled-frame group per prompt and a bonus when order helps
    overrides: list[str] = Field(default_factory=list)  # more recipe changes, as `--set key=value`


class VariantConfig(_Strict):
    """One row of Table 2: which SFT data (None: no SFT) and which GRPO (None: no GRPO) make the model."""

    description: str = ""
    sft: Literal["cot_sft_set", "unrefined_cot_sft_set"] | None = None
    rl: RLVariantConfig | None = None

    @property
    def stages(self) -> str:
        return "+".join(s for s, on in (("sft", self.sft is not None), ("rl", self.rl is not None)) if on) or "none"


# Table 2 of the paper plus the closest peer's method; a profile's ``variants:`` adds to or replaces entries.
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "base": {"description": "the base model, untrained"},
    "sft_only": {"description": "SFT on the refined CoTs (VideoRFT-CoT), no RL", "sft": "cot_sft_set"},
    "rl_only": {"description": "GRPO with the VideoRFT reward from the base model, no SFT", "rl": {}},
    "full": {"description": "VideoRFT: SFT on the refined CoTs, then GRPO with the gated semantic reward",
             "sft": "cot_sft_set", "rl": {"semantic_mode": "gated"}},
    "no_refinement": {"description": "w/o CoT refinement: SFT on the blind CoTs, then the same GRPO",
                      "sft": "unrefined_cot_sft_set", "rl": {"semantic_mode": "gated"}},
    "format_accuracy": {"description": "GRPO with the format and accuracy rewards only", "sft": "cot_sft_set",
                        "rl": {"rewards": ["format_reward", "accuracy_reward"]}},
    "ungated": {"description": "the semantic reward paid on every row, not only on correct ones",
                "sft": "cot_sft_set", "rl": {"semantic_mode": "ungated"}},
    "t_grpo": {"description": "Video-R1's T-GRPO: format + accuracy + the temporal bonus (ordered vs shuffled "
               "frames)", "sft": "cot_sft_set", "rl": {"rewards": ["format_reward", "accuracy_reward"],
                                                       "temporal": True}},
}


class TrainingConfig(_Strict):
    """The training stage: recipes, the Table 2 variants (partitions of the training and evaluation assets),
    which of them ``materialize`` builds by default, and how to launch."""

    sft_recipe: str = "configs/tiny/sft.yaml"
    grpo_recipe: str = "configs/tiny/grpo.yaml"
    base_model: str | None = None  # None: the recipes' model
    variants: dict[str, VariantConfig] = Field(
        default_factory=lambda: {k: VariantConfig(**v) for k, v in DEFAULT_VARIANTS.items()})
    # what `python -m dagster_project materialize` builds unless --variants says otherwise (`make table2`: all)
    run_variants: list[str] = Field(default_factory=lambda: ["base", "sft_only", "full"])
    reference_variant: str = "full"  # the scoreboard's paired differences are against this one
    runs_dir: str | None = None  # local run folders (None: .videorft/runs)
    launcher: LauncherConfig = LauncherConfig()
    # GRPO's held-out probe (training.probe): the questions of a world of its own seed, drawn over the templates
    # as the training world's are, answered greedily every probe.every steps; None: no probe
    probe_world: WorldConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _merge_variants(cls, data: Any) -> Any:
        """A profile's ``variants:`` entries add to (or, by name, replace) the paper's; ``null`` removes one."""
        if isinstance(data, dict) and isinstance(data.get("variants"), dict):
            merged: dict[str, Any] = dict(DEFAULT_VARIANTS)
            for name, spec in data["variants"].items():
                if spec is None:
                    merged.pop(name, None)
                else:
                    merged[name] = spec
            data = {**data, "variants": merged}
        return data

    @model_validator(mode="after")
    def _variants_known(self) -> TrainingConfig:
        for name in self.variants:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"variant name {name!r}: use lower-case letters, digits and _ (a partition key)")
        unknown = [v for v in [*self.run_variants, self.reference_variant] if v not in self.variants]
        if unknown:
            raise ValueError(f"training.run_variants / reference_variant name unknown variants {unknown}; "
                             f"defined: {sorted(self.variants)}")
        return self

    def recipe_path(self, method: str) -> Path:
        path = Path(self.sft_recipe if method == "sft" else self.grpo_recipe).expanduser()
        return path if path.is_absolute() else project_root() / path
