"""Training recipes: one YAML per model and method (open-r1 style), validated at load.

A recipe names the model, the data, the rewards (GRPO) and the TRL trainer arguments. Frames and pixels are not
a recipe's: the profile's ``video.train`` owns them and the entry points take them on the command line
(``--frames``, ``--max-pixels``, ``--min-pixels``), so one value reaches every process. ``trainer`` keys are
checked against the TRL config class's fields at load, so a typo is an error naming the key, not a silently
ignored setting. Command-line flags of the entry points override the recipe (``--model``, ``--data``,
``--output-dir``, ``--max-steps``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationInfo, model_validator

from training.rewards import REWARDS, SemanticRewardConfig, TemporalRewardConfig, rule_rewards
from training.schema import Strict as _Strict
from videorft.profile import VariantConfig
from videorft.settings import read_mapping, validated

Method = Literal["sft", "grpo"]


class RecipeError(ValueError):
    """A recipe that cannot be loaded; the message names the file and the key."""


class ModelSpec(_Strict):
    name_or_path: str = "tiny-random"
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    attn_implementation: str | None = None  # e.g. flash_attention_2 on GPU nodes
    freeze_vision: bool = False  # the vision encoder and its merger stay as loaded (Qwen's tune_mm_vision: false)


class DataSpec(_Strict):
    uri: str | None = None  # a .parquet / .jsonl file or a folder of them (local or s3://); --data overrides
    max_samples: Annotated[int, Field(gt=0)] | None = None
    frame_cache: str | None = None  # decoded frames kept across runs (None: <project>/.videorft/frame_cache)
    shuffle_seed: int = 0


class RewardConfig(_Strict):
    functions: list[str] = Field(default_factory=lambda: ["format_reward", "accuracy_reward",
                                                          "semantic_consistency_reward"])
    weights: list[float] | None = None
    semantic: SemanticRewardConfig = SemanticRewardConfig()
    temporal: TemporalRewardConfig = TemporalRewardConfig()

    @model_validator(mode="after")
    def _known(self) -> RewardConfig:
        unknown = [f for f in self.functions if f not in REWARDS]
        if unknown:
            raise ValueError(f"unknown reward functions {unknown}; known: {list(REWARDS)}")
        if self.weights is not None and len(self.weights) != len(self.functions):
            raise ValueError("reward weights must have one entry per function")
        rules = rule_rewards()
        if self.semantic.gate_reward not in rules:
            raise ValueError(f"semantic.gate_reward must name one of {list(rules)}")
        return self


class ChecksConfig(_Strict):
    """What a finished run's checks demand (``training.checks``): GRPO's total and accuracy rewards compared
    between the first and last ``window`` of logged steps, its KL bounded, judged on at least ``min_steps``."""

    max_kl: Annotated[float, Field(gt=0)] = 0.5
    window: Annotated[float, Field(gt=0, le=0.5)] = 0.1
    min_steps: Annotated[int, Field(ge=2)] = 10


class ProbeConfig(_Strict):
    """GRPO's held-out probe (``training.probe``): questions no training set holds, answered greedily before the
    first step and every ``every`` steps; ``uri`` (or ``--probe``) is a file or folder in the RL set's schema."""

    uri: str | None = None  # None: no probe (the rl_checkpoint asset passes the profile's probe set)
    every: Annotated[int, Field(gt=0)] = 10
    max_new_tokens: Annotated[int, Field(gt=0)] = 256
    batch_size: Annotated[int, Field(gt=0)] = 16


class Recipe(_Strict):
    method: Method
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    reward: RewardConfig = RewardConfig()
    checks: ChecksConfig = ChecksConfig()
    probe: ProbeConfig = ProbeConfig()
    trainer: dict[str, Any] = Field(default_factory=dict)
    deepspeed: str | None = None  # a DeepSpeed JSON under configs/deepspeed/ (relative to the project root)

    @model_validator(mode="before")
    @classmethod
    def _no_video(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "video" in raw:
            raise ValueError("video: frames and pixels are owned by the profile's video.train (one value for "
                             "every process); override them with --frames / --max-pixels / --min-pixels")
        return raw

    @model_validator(mode="after")
    def _trainer_keys(self, info: ValidationInfo) -> Recipe:
        if info.context and not info.context.get("trainer_keys", True):
            return self
        cls = trl_config_class(self.method)
        fields = {f.name for f in dataclasses.fields(cls)}
        reserved = {"output_dir", "deepspeed"}
        unknown = sorted(set(self.trainer) - fields)
        clash = sorted(set(self.trainer) & reserved)
        if unknown:
            raise ValueError(f"trainer: unknown {cls.__name__} keys {unknown}")
        if clash:
            raise ValueError(f"trainer: {clash} come from the command line / the recipe's top level, not trainer")
        return self


def trl_config_class(method: Method) -> type:
    if method == "sft":
        from trl import SFTConfig

        return SFTConfig
    from trl import GRPOConfig

    return GRPOConfig


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.sub=value`` assignments (value parsed as YAML) applied to a raw recipe mapping."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected key=value (e.g. reward.semantic.mode=ungated)")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {item!r}: {part} is not a section")
        node[parts[-1]] = _scalar(value)
    return raw


def _scalar(text: str) -> Any:
    """A ``--set`` value parsed as YAML, except that ``1e-3`` is the number it looks like (YAML 1.1 reads a
    mantissa without a dot as a string, which TRL then rejects with a traceback)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_recipe(path: str | Path, method: Method | None = None, overrides: list[str] | None = None,
                check_trainer_keys: bool = True) -> Recipe:
    """The recipe at ``path`` with ``overrides`` applied, validated. ``check_trainer_keys=False`` skips checking
    ``trainer:`` against TRL's config class, which imports TRL, transformers and torch (seconds): for callers
    that validate everything else cheaply (the Dagster definitions, loaded by every run worker)."""
    path = Path(path)
    raw = read_mapping(path, "recipe", RecipeError)
    if method is not None and raw.get("method", method) != method:
        raise RecipeError(f"recipe {path} is for method {raw.get('method')!r}, not {method!r}")
    raw.setdefault("method", method)
    raw = apply_overrides(raw, overrides or [])
    return validated(Recipe, raw, "recipe", path, RecipeError, context={"trainer_keys": check_trainer_keys},
                     show_input=False)


def grpo_overrides(variant: VariantConfig) -> list[str]:
    """The variant's GRPO as ``--set`` overrides of the recipe (rewards, semantic mode, T-GRPO, extras)."""
    rl = variant.rl
    if rl is None:
        return []
    out = []
    if rl.rewards is not None:
        out.append(f"reward.functions=[{', '.join(rl.rewards)}]")
    if rl.semantic_mode is not None:
        out.append(f"reward.semantic.mode={rl.semantic_mode}")
    if rl.temporal:
        out.append("reward.temporal.enabled=true")
    return out + list(rl.overrides)
