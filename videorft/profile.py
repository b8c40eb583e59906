"""Profiles: the one typed configuration object per run, loaded from ``configs/<name>/profile.yaml``.

Owns the schema of every knob (validated at load: an unknown key or a bad value is an error naming the key),
the environment overrides that outside tooling relies on (docs/architecture.md, "Contracts"), the names of
each expert role's variables, and where the project's local state lives. Secrets (expert API keys) come only
from the environment and never appear in a dump.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from videorft.media import MIN_PIXELS, media_cache_dir
from videorft.schema import PROBLEM_TYPES
from videorft.shipped import TINY_PRETRAINED, ShippedModelError, read_card, verified_dir

PROFILE_ENV = "VIDEORFT_PROFILE"
STORAGE_ROOT_ENV = "VIDEORFT_STORAGE_ROOT"
RUNS_DIR_ENV = "VIDEORFT_RUNS_DIR"
QA_SOURCES_ENV = "VIDEORFT_QA_SOURCES"
CONFIG_DIR_ENV = "VIDEORFT_CONFIG_DIR"
DEFAULT_PROFILE = "tiny"
LOG = logging.getLogger("videorft.profile")


class ProfileError(ValueError):
    """A profile that cannot be loaded: the message names the file, the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrameSpec(_Strict):
    """How frames are sampled from a video: a fixed count (uniform) or a rate, under a pixel budget."""

    frames: Annotated[int, Field(gt=0)] | None = None
    fps: Annotated[float, Field(gt=0)] | None = None
    max_pixels: Annotated[int, Field(gt=0)] = 128 * 28 * 28
    min_pixels: Annotated[int, Field(gt=0)] = MIN_PIXELS
    max_frames: Annotated[int, Field(gt=0)] = 768

    def key(self) -> str:
        """What decoded frames depend on, for cache keys: ``f16-px3136-100352`` (or ``fps1.0-...``)."""
        rule = f"f{self.frames}" if self.frames is not None else f"fps{self.fps}-max{self.max_frames}"
        return f"{rule}-px{self.min_pixels}-{self.max_pixels}"

    @model_validator(mode="after")
    def _one_rule(self) -> FrameSpec:
        if (self.frames is None) == (self.fps is None):
            raise ValueError("set exactly one of 'frames' (uniform count) or 'fps' (rate)")
        if self.min_pixels > self.max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        return self


class VideoConfig(_Strict):
    """Frames and pixels per use: the one owner of these knobs. Training and evaluation get theirs passed
    explicitly on the command line of the processes they launch; curation reads them from here."""

    train: FrameSpec = FrameSpec(frames=16, max_pixels=128 * 28 * 28)  # paper A.2
    eval: FrameSpec = FrameSpec(frames=32, max_pixels=256 * 28 * 28)
    describe: FrameSpec = FrameSpec(fps=1.0, max_pixels=256 * 28 * 28)  # the describer sees 1 frame per second
    refine: FrameSpec = FrameSpec(frames=16, max_pixels=256 * 28 * 28)

    @model_validator(mode="after")
    def _counts_where_needed(self) -> VideoConfig:
        # training batches and evaluation prompts are built for a fixed number of frames per video; a rate
        # cannot be honoured there (it used to fall back to 16 frames without a word)
        for use in ("train", "eval"):
            if getattr(self, use).frames is None:
                raise ValueError(f"video.{use}: {use} samples a fixed number of frames per video (the paper: "
                                 f"{'16' if use == 'train' else '32'}); set 'frames' instead of 'fps'")
        return self


class WorldConfig(_Strict):
    """Size and look of the procedurally generated video-QA world (deterministic by seed)."""

    seed: int = 0
    videos: Annotated[int, Field(ge=0)] = 60
    images: Annotated[int, Field(ge=0)] = 20
    questions: Annotated[int, Field(ge=0)] = 300
    min_side: Annotated[int, Field(ge=64, le=1024)] = 112
    max_side: Annotated[int, Field(ge=64, le=1024)] = 224
    fps: Annotated[int, Field(ge=1, le=60)] = 12
    min_seconds: Annotated[float, Field(gt=0)] = 2.0
    max_seconds: Annotated[float, Field(gt=0)] = 4.0
    # share of the questions drawn from a template (synthetic.qa) before the rest are balanced over all of them,
    # e.g. {background_colour: 0.3}: more of the one visual question a tiny model can learn (bench/RESULTS.md)
    template_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ranges(self) -> WorldConfig:
        if sum(self.template_shares.values()) > 1:
            raise ValueError(f"template_shares add up to {sum(self.template_shares.values()):g}; at most 1")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        if self.min_seconds > self.max_seconds:
            raise ValueError("min_seconds must not exceed max_seconds")
        return self


class SourceConfig(_Strict):
    """One QA source: the synthetic world, or a VideoRFT/Video-R1 JSON or JSONL file (local or s3://).

    A row's relative media path resolves against the QA file's folder unless ``media_root`` is given.
    """

    name: str
    kind: Literal["synthetic", "file"] = "file"
    uri: str | None = None
    media_root: str | None = None

    @model_validator(mode="after")
    def _uri_for_files(self) -> SourceConfig:
        if self.kind == "file" and not self.uri:
            raise ValueError(f"source '{self.name}': a file source needs 'uri'")
        return self


class IngestConfig(_Strict):
    shards: Annotated[int, Field(ge=1, le=4096)] = 4
    max_quarantine_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    probe_workers: Annotated[int, Field(ge=1, le=256)] = 4
    preview_rows: Annotated[int, Field(ge=0, le=100)] = 10


class ExpertConfig(_Strict):
    """One expert role's OpenAI-compatible endpoint. The key is read from the environment only."""

    base_url: str | None = None
    model: str
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    media: Literal["frames", "video"] = "frames"
    max_concurrency: Annotated[int, Field(ge=1)] = 8  # requests in flight at once
    # rows being prepared (media encoded) or awaiting their replies at once; None: 4 x max_concurrency, so the
    # next rows' media are ready when a request slot frees up
    max_rows_in_flight: Annotated[int, Field(ge=1)] | None = None
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_retries: Annotated[int, Field(ge=0)] = 6
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0
    max_tokens: Annotated[int, Field(ge=1)] = 4096
    api_key_required: bool = True
    # USD per million tokens, for the cost accounting in metadata and MLflow (0: not tracked)
    price_input_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    price_output_per_mtok: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _window(self) -> ExpertConfig:
        if self.max_rows_in_flight is not None and self.max_rows_in_flight < self.max_concurrency:
            raise ValueError(f"max_rows_in_flight ({self.max_rows_in_flight}) below max_concurrency "
                             f"({self.max_concurrency}) would leave request slots idle: raise it or lower both")
        return self

    @property
    def rows_in_flight(self) -> int:
        return self.max_rows_in_flight or 4 * self.max_concurrency


# The expert roles and their default endpoints: the one list of roles. A role in a profile's ``experts``
# mapping replaces its default; a new role is a prompt file, an entry here (or in the profile), a stage function
# and its asset (docs/architecture.md, "Where to add").
DEFAULT_EXPERTS: dict[str, dict[str, Any]] = {
    "describer": {"model": "gpt-4o-mini"},  # structured video representation from frames (paper Eq. 1's input)
    "reasoner": {"model": "deepseek-reasoner"},  # blind CoT from text only (Eq. 1)
    "refiner": {"model": "Qwen/Qwen2.5-VL-72B-Instruct", "media": "video"},  # revises the CoT with the video (Eq. 2)
}


def role_env_var(role: str, setting: str) -> str:
    """The environment variable of one expert role's setting: ``VIDEORFT_<ROLE>_<SETTING>`` (a contract)."""
    return f"VIDEORFT_{role.upper()}_{setting}"


class SimulatorConfig(_Strict):
    """The offline expert simulator (tiny profile, tests): error rates of each role and HTTP fault knobs."""

    enabled: bool = False
    seed: int = 0
    describer_drop_rate: Annotated[float, Field(ge=0, le=1)] = 0.15
    describer_alter_rate: Annotated[float, Field(ge=0, le=1)] = 0.1
    reasoner_wrong_rate: Annotated[float, Field(ge=0, le=1)] = 0.3
    reasoner_invent_rate: Annotated[float, Field(ge=0, le=1)] = 0.3
    refiner_fix_rate: Annotated[float, Field(ge=0, le=1)] = 0.8
    refiner_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    rate_429: Annotated[float, Field(ge=0, le=1)] = 0.0
    rate_500: Annotated[float, Field(ge=0, le=1)] = 0.0
    rate_truncated: Annotated[float, Field(ge=0, le=1)] = 0.0
    rate_malformed: Annotated[float, Field(ge=0, le=1)] = 0.0
    retry_after_s: Annotated[float, Field(ge=0)] = 1.0
    latency_ms: Annotated[float, Field(ge=0)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0)] = 0.0


class FilterConfig(_Strict):
    """The CoT filter (paper 2.2): structured types keep right answers, open types keep CLIP-similar answers."""

    structured_types: list[str] = ["multiple choice", "numerical", "regression"]
    open_types: list[str] = ["free-form", "OCR"]
    clip_model: str = "ViT-L-14"
    clip_pretrained: str | None = "openai"
    clip_threshold: Annotated[float, Field(ge=-1, le=1)] = 0.85
    regression_tolerance: Annotated[float, Field(ge=0)] = 0.05
    # synthetic-world question templates kept out of the CoT sets but not the RL set: skills SFT does not teach and
    # RL may (the miniature's room for RL); names checked against synthetic.qa when the definitions load
    rl_only_templates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _types_disjoint(self) -> FilterConfig:
        if set(self.structured_types) & set(self.open_types):
            raise ValueError("a problem type cannot be both structured and open")
        missing = set(PROBLEM_TYPES) - set(self.structured_types) - set(self.open_types)
        unknown = (set(self.structured_types) | set(self.open_types)) - set(PROBLEM_TYPES)
        if missing or unknown:
            raise ValueError(f"structured_types + open_types must be exactly the problem types {PROBLEM_TYPES}"
                             f" (missing {sorted(missing)}, unknown {sorted(unknown)})")
        return self


class CurationConfig(_Strict):
    prompts_dir: str | None = None  # None: the prompts shipped in curation/prompts
    repair_attempts: Annotated[int, Field(ge=0, le=10)] = 2  # invalid responses re-asked with the error shown
    min_parse_rate: Annotated[float, Field(ge=0, le=1)] = 0.9
    retention_bounds: tuple[float, float] = (0.05, 0.95)  # paper: 102K of 310K = 0.33
    trace_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    report_samples: Annotated[int, Field(ge=0, le=100)] = 5
    # where paid responses live (curation.response_store): None = one JSON file each under
    # <storage root>/expert_cache; sqlite:///path (one machine); postgresql://... or postgres (the Dagster
    # instance's DAGSTER_POSTGRES_URL): one table every pod shares
    response_cache: str | None = None
    filter: FilterConfig = FilterConfig()
    simulator: SimulatorConfig = SimulatorConfig()

    @model_validator(mode="after")
    def _bounds(self) -> CurationConfig:
        lo, hi = self.retention_bounds
        if not 0 <= lo <= hi <= 1:
            raise ValueError("retention_bounds must be [low, high] with 0 <= low <= high <= 1")
        return self

    def resolved_prompts_dir(self) -> Path:
        if self.prompts_dir is None:
            return project_root() / "curation" / "prompts"
        path = Path(self.prompts_dir).expanduser()
        return path if path.is_absolute() else project_root() / path


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


class BenchmarkSource(_Strict):
    """Where one benchmark's questions and videos are (local or s3://)."""

    questions: str  # Video-R1-eval JSON or the official release's JSON/JSONL
    video_root: str | None = None  # None: the questions file's folder
    limit: Annotated[int, Field(gt=0)] | None = None


class FixturesConfig(_Strict):
    """Benchmark fixtures generated from a held-out synthetic world (used for benchmarks without a source)."""

    world: WorldConfig = WorldConfig(seed=1001, videos=12, images=0, questions=0)
    per_benchmark: Annotated[int, Field(gt=0)] = 8


class EvaluationConfig(_Strict):
    """The benchmarks (paper 4.1; the registry is ``evaluation.benchmarks``): data, decoding, intervals and the
    re-evaluation schedule."""

    # missing ones: fixtures. The names are checked against the evaluation library's registry where the
    # library is loaded (evaluation.benchmarks.check_names), since the core imports no stage library.
    benchmarks: dict[str, BenchmarkSource] = Field(default_factory=dict)
    fixtures: FixturesConfig = FixturesConfig()
    max_new_tokens: Annotated[int, Field(gt=0)] = 1024
    batch_size: Annotated[int, Field(gt=0)] = 4
    chunk_size: Annotated[int, Field(gt=0)] = 16  # generations cached per chunk: the most an interruption loses
    backend: Literal["hf", "vllm"] = "hf"
    dtype: str = "auto"
    bootstrap: Annotated[int, Field(ge=0)] = 1000  # clustered-bootstrap iterations for errors and intervals
    # benchmark_scores' failure_rate check warns above this share of samples whose generation failed
    max_failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    schedule: str = "0 4 * * 1"  # weekly re-evaluation (cron)
    schedule_timezone: str = "UTC"
    # the scoreboard's pooled multiple-choice table also reports these subsets and the rest: name -> a phrase
    # of the question (case-insensitive), e.g. {background: "colour is the background"}
    pooled_subsets: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> EvaluationConfig:
        fields = self.schedule.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
            raise ValueError(f"schedule {self.schedule!r} is not a five-field cron expression")
        return self


MLFLOW_UI_URL_ENV = "MLFLOW_UI_URL"
MLFLOW_PORT_ENV = "MLFLOW_PORT"  # where `make mlflow-ui` serves a local store


class MlflowConfig(_Strict):
    tracking_uri: str | None = None  # None: a SQLite store under the project's local state folder
    experiment: str = "videorft"
    # Where people open MLflow's UI (the links in Dagster and the summary). None: the tracking server itself
    # when it is HTTP, else `make mlflow-ui`'s address (127.0.0.1:$MLFLOW_PORT, default 5000).
    ui_url: str | None = None


# Concurrency pools (docker/dagster.yaml): expert-calling steps and GPU-holding steps across all runs.
LLM_API_POOL = "llm_api"
GPU_POOL = "gpu"


class K8sExecutorConfig(_Strict):
    """``k8s_job_executor``: each step of a run in its own Kubernetes Job (curation shards in parallel pods).
    The code image runs the steps; GPU work still goes to training pods through the launcher."""

    image: str = "ghcr.io/videorft/videorft-code:latest"
    namespace: str = "videorft"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str | None = "videorft"
    env_secrets: list[str] = Field(default_factory=list)
    env_config_maps: list[str] = Field(default_factory=list)
    cpu: str = "2"
    memory: str = "8Gi"
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)


class DagsterConfig(_Strict):
    """How a run executes its steps: in one process (tiny), in parallel local processes (a workstation), or
    as one Kubernetes Job per step (a cluster); ``pools`` are the limits written to the instance."""

    executor: Literal["in_process", "multiprocess", "k8s"] = "in_process"
    max_concurrent: Annotated[int, Field(ge=1)] = 2
    # how often the daemon evaluates the re-evaluation sensors (Dagster's default is 30 s); a new checkpoint
    # waits at most this long for its evaluations
    sensor_interval_seconds: Annotated[int, Field(ge=1)] = 30
    k8s: K8sExecutorConfig = K8sExecutorConfig()
    pools: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {LLM_API_POOL: 4, GPU_POOL: 1})


class Profile(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    storage_root: str = ".videorft/storage"
    world: WorldConfig | None = None
    sources: list[SourceConfig] = Field(default_factory=list)
    ingest: IngestConfig = IngestConfig()
    video: VideoConfig = VideoConfig()
    experts: dict[str, ExpertConfig] = Field(
        default_factory=lambda: {role: ExpertConfig(**cfg) for role, cfg in DEFAULT_EXPERTS.items()})
    curation: CurationConfig = CurationConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    mlflow: MlflowConfig = MlflowConfig()
    dagster: DagsterConfig = DagsterConfig()

    @model_validator(mode="after")
    def _sources_consistent(self) -> Profile:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"source names must be unique, got {names}")
        if any(s.kind == "synthetic" for s in self.sources) and self.world is None:
            raise ValueError("a 'synthetic' source needs the 'world' section")
        if not self.sources:
            raise ValueError(f"no QA sources: list some under 'sources' or set {QA_SOURCES_ENV}")
        return self

    @model_validator(mode="after")
    def _probe_held_out(self) -> Profile:
        """The probe world shares no seed (so no video) with the training world or the benchmark fixtures."""
        probe = self.training.probe_world
        for key, world in (("world", self.world), ("evaluation.fixtures.world", self.evaluation.fixtures.world)):
            if probe is not None and world is not None and world.seed == probe.seed:
                raise ValueError(f"training.probe_world.seed: {probe.seed} is also {key}.seed; the probe must be "
                                 "held out from training and evaluation: choose another seed")
        return self

    @model_validator(mode="after")
    def _shipped_base_fits(self) -> Profile:
        """``tiny-pretrained`` only with the files its card lists (its tokenizer included) and with worlds other
        than the one it was pretrained on (a shared seed would put its pretraining videos in the training set or
        the benchmarks)."""
        if self.training.base_model != TINY_PRETRAINED:
            return self
        try:
            verified_dir(TINY_PRETRAINED)
            seed = int(read_card(TINY_PRETRAINED)["pretraining_world"]["seed"])
        except ShippedModelError as exc:
            raise ValueError(f"training.base_model: {exc}") from None
        for key, world in (("world", self.world), ("evaluation.fixtures.world", self.evaluation.fixtures.world),
                           ("training.probe_world", self.training.probe_world)):
            if world is not None and world.seed == seed:
                raise ValueError(f"{key}.seed: {seed} is the seed of {TINY_PRETRAINED}'s pretraining world "
                                 f"(configs/tiny/pretrain.yaml); training or evaluating on it would reuse the "
                                 "videos the base was pretrained on: choose another seed")
        return self

    @cached_property
    def uses_synthetic_world(self) -> bool:
        return any(s.kind == "synthetic" for s in self.sources)

    def resolved_storage_root(self) -> str:
        """The storage root as an absolute local path or a URI (relative paths hang off the project root)."""
        root = self.storage_root
        if "://" in root:
            return root.rstrip("/")
        path = Path(root).expanduser()
        return str(path if path.is_absolute() else project_root() / path)

    def resolved_mlflow_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        db = local_state_dir() / "mlflow" / "mlflow.db"
        return f"sqlite:///{db}"

    def resolved_mlflow_ui_url(self, env: Mapping[str, str] | None = None) -> str:
        """The MLflow UI address links point at: ``mlflow.ui_url`` (or ``$MLFLOW_UI_URL``), else the tracking
        server when it is HTTP(S), else where ``make mlflow-ui`` serves the local store."""
        env = os.environ if env is None else env
        if self.mlflow.ui_url:
            return self.mlflow.ui_url.rstrip("/")
        tracking = self.resolved_mlflow_uri()
        if tracking.startswith(("http://", "https://")):
            return tracking.rstrip("/")
        return f"http://127.0.0.1:{env.get(MLFLOW_PORT_ENV) or 5000}"

    def expert(self, role: str) -> ExpertConfig:
        """One role's endpoint settings; an unknown role is an error listing the configured ones."""
        if role not in self.experts:
            raise ProfileError(f"no expert role {role!r} in profile {self.name}; roles: {', '.join(self.experts)}")
        return self.experts[role]

    def media_cache_dir(self) -> str:
        """Where remote media are downloaded once (``VIDEORFT_MEDIA_CACHE`` or beside a local storage root)."""
        return media_cache_dir(self.resolved_storage_root())

    def public_dump(self) -> dict[str, Any]:
        """The profile as plain data, without secrets: safe to log and to store as run metadata."""
        return self.model_dump(mode="json")


def resolve_frames(base: FrameSpec, source: str, **overrides: int | None) -> FrameSpec:
    """The frames/pixels a process uses: ``base`` (the profile's entry for that use) with the explicit
    overrides given (``frames=``, ``max_pixels=``, ``min_pixels=``; None: not given), each one that changes a
    value logged; a combination that cannot be honoured is an error naming it."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        if value != getattr(base, key):
            LOG.warning("video.%s=%s overrides %s (%s)", key, value, source, getattr(base, key))
    try:
        return FrameSpec.model_validate({**base.model_dump(), **given})
    except ValidationError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in given.items())
        raise ProfileError(f"{shown} cannot be honoured with {source}: "
                           f"{'; '.join(e['msg'] for e in exc.errors())}") from None


def project_root() -> Path:
    """The checkout this package runs from (``VIDEORFT_PROJECT_ROOT`` overrides)."""
    env = os.environ.get("VIDEORFT_PROJECT_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def local_state_dir() -> Path:
    """The one git-ignored folder holding the tiny profile's state (storage, Dagster home, MLflow)."""
    return project_root() / ".videorft"


def config_dir() -> Path:
    env = os.environ.get(CONFIG_DIR_ENV)
    return Path(env).resolve() if env else project_root() / "configs"


def available_profiles() -> list[str]:
    return sorted(p.parent.name for p in config_dir().glob("*/profile.yaml"))


def profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return candidate.resolve()
    path = config_dir() / name_or_path / "profile.yaml"
    if not path.is_file():
        raise ProfileError(
            f"unknown profile '{name_or_path}' ({PROFILE_ENV}); available: {', '.join(available_profiles())}"
            f" (from {config_dir()}), or give a path to a profile YAML file"
        )
    return path


def _env_overrides(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    raw = dict(raw)
    if env.get(STORAGE_ROOT_ENV):
        raw["storage_root"] = env[STORAGE_ROOT_ENV]
    if env.get(QA_SOURCES_ENV):
        uris = [u.strip() for u in env[QA_SOURCES_ENV].split(",") if u.strip()]
        raw["sources"] = [{"name": f"env{i}", "kind": "file", "uri": uri} for i, uri in enumerate(uris)]
    if env.get("MLFLOW_TRACKING_URI"):
        raw["mlflow"] = {**(raw.get("mlflow") or {}), "tracking_uri": env["MLFLOW_TRACKING_URI"]}
    if env.get(MLFLOW_UI_URL_ENV):
        raw["mlflow"] = {**(raw.get("mlflow") or {}), "ui_url": env[MLFLOW_UI_URL_ENV]}
    if env.get(RUNS_DIR_ENV):  # where local training runs keep checkpoints (a volume in compose)
        raw["training"] = {**(raw.get("training") or {}), "runs_dir": env[RUNS_DIR_ENV]}
    experts = {**DEFAULT_EXPERTS, **(raw.get("experts") or {})}
    for role in experts:
        section = dict(experts[role] or {})
        if "api_key" in section:
            raise ProfileError(f"experts.{role}.api_key: keys are never read from profile files; set "
                               f"{role_env_var(role, 'API_KEY')} instead")
        for suffix, key in (("BASE_URL", "base_url"), ("MODEL", "model"), ("API_KEY", "api_key")):
            if env.get(role_env_var(role, suffix)):
                section[key] = env[role_env_var(role, suffix)]
        experts[role] = section
    raw["experts"] = experts
    return raw


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"invalid profile {path}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {key}: {msg}{got}")
    return "\n".join(lines)


def load_profile(name_or_path: str | None = None, env: dict[str, str] | None = None) -> Profile:
    """Load, override from the environment and validate a profile (default: ``$VIDEORFT_PROFILE`` or tiny)."""
    env = dict(os.environ if env is None else env)
    name_or_path = name_or_path or env.get(PROFILE_ENV) or DEFAULT_PROFILE
    path = profile_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {path} must be a mapping at the top level")
    raw = _env_overrides(raw, env)
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(_format_validation_error(path, exc)) from None
