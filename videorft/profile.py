"""Profiles: the one typed configuration object per run, loaded from ``configs/<name>/profile.yaml``.

Assembles the sections (``videorft.settings.<section>``: each owns its knobs' schema, validated at load: an
unknown key or a bad value is an error naming the full key), and owns the environment overrides that outside
tooling relies on (docs/architecture.md, "Contracts") and where the project's local state lives. Secrets
(expert API keys) come only from the environment and never appear in a dump.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from videorft.media import media_cache_dir
from videorft.settings import ProfileError, project_root, read_mapping, validated
from videorft.settings import Strict as _Strict
from videorft.settings.curation import CurationConfig, FilterConfig
from videorft.settings.deployment import (
    GPU_POOL,
    LLM_API_POOL,
    MLFLOW_PORT_ENV,
    MLFLOW_UI_URL_ENV,
    DagsterConfig,
    K8sExecutorConfig,
    MlflowConfig,
)
from videorft.settings.evaluation import BenchmarkSource, EvaluationConfig, FixturesConfig
from videorft.settings.experts import DEFAULT_EXPERTS, ExpertConfig, SimulatorConfig, role_env_var
from videorft.settings.training import (
    DEFAULT_VARIANTS,
    SFT_DATASETS,
    K8sLaunchConfig,
    LauncherConfig,
    RLVariantConfig,
    TrainingConfig,
    VariantConfig,
)
from videorft.settings.world import FrameSpec, IngestConfig, SourceConfig, VideoConfig, WorldConfig
from videorft.shipped import TINY_PRETRAINED, ShippedModelError, read_card, verified_dir

PROFILE_ENV = "VIDEORFT_PROFILE"
STORAGE_ROOT_ENV = "VIDEORFT_STORAGE_ROOT"
RUNS_DIR_ENV = "VIDEORFT_RUNS_DIR"
QA_SOURCES_ENV = "VIDEORFT_QA_SOURCES"
CONFIG_DIR_ENV = "VIDEORFT_CONFIG_DIR"
DEFAULT_PROFILE = "tiny"
LOG = logging.getLogger("videorft.profile")

# the names the rest of the project imports from here (one import path for every profile type)
__all__ = [
    "DEFAULT_EXPERTS", "DEFAULT_VARIANTS", "GPU_POOL", "LLM_API_POOL", "MLFLOW_PORT_ENV", "MLFLOW_UI_URL_ENV",
    "SFT_DATASETS", "BenchmarkSource", "CurationConfig", "DagsterConfig", "EvaluationConfig", "ExpertConfig",
    "FilterConfig", "FixturesConfig", "FrameSpec", "IngestConfig", "K8sExecutorConfig", "K8sLaunchConfig",
    "LauncherConfig", "MlflowConfig", "Profile", "ProfileError", "RLVariantConfig", "SimulatorConfig",
    "SourceConfig", "TrainingConfig", "VariantConfig", "VideoConfig", "WorldConfig", "load_profile",
    "project_root", "resolve_frames", "role_env_var",
]


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


def load_profile(name_or_path: str | None = None, env: dict[str, str] | None = None) -> Profile:
    """Load, override from the environment and validate a profile (default: ``$VIDEORFT_PROFILE`` or tiny)."""
    env = dict(os.environ if env is None else env)
    name_or_path = name_or_path or env.get(PROFILE_ENV) or DEFAULT_PROFILE
    path = profile_path(name_or_path)
    raw = _env_overrides(read_mapping(path, "profile", ProfileError), env)
    return validated(Profile, raw, "profile", path, ProfileError)
