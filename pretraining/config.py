"""The pretraining recipe (``configs/tiny/pretrain.yaml``): the world, the held-out split, the frames, and the
two models' architectures and schedules. Validated at load; an error names the file and the full key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from videorft.profile import FrameSpec, WorldConfig, project_root

DEFAULT_RECIPE = "configs/tiny/pretrain.yaml"


class PretrainRecipeError(ValueError):
    """A pretraining recipe that cannot be loaded; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiglipRecipe(_Strict):
    """SigLIP (sigmoid loss, Zhai et al. 2023) on (frames, caption) pairs: a video's embedding is the mean of its
    frames' (Eq. 5's video side), the text a random subset of its caption's facts."""

    image_size: Annotated[int, Field(ge=16)] = 64
    patch_size: Annotated[int, Field(ge=2)] = 8
    width: Annotated[int, Field(ge=16)] = 96
    layers: Annotated[int, Field(ge=1)] = 2
    text_width: Annotated[int, Field(ge=16)] = 96
    text_layers: Annotated[int, Field(ge=1)] = 2
    heads: Annotated[int, Field(ge=1)] = 4
    embed_dim: Annotated[int, Field(ge=8)] = 96
    context_length: Annotated[int, Field(ge=8)] = 64  # M, the reward's span_tokens
    frames: Annotated[int, Field(ge=1)] = 4  # F, the reward's frames
    steps: Annotated[int, Field(ge=1)] = 2500
    batch_videos: Annotated[int, Field(ge=2)] = 32
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.05
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    max_facts: Annotated[int, Field(ge=1)] = 4  # a training caption names 1..max_facts facts of its video

    @model_validator(mode="after")
    def _divisible(self) -> SiglipRecipe:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for key in ("width", "text_width"):
            if getattr(self, key) % self.heads:
                raise ValueError(f"{key} {getattr(self, key)} is not a multiple of heads {self.heads}")
        return self


class BaseRecipe(_Strict):
    """The Qwen2.5-VL base: its sizes (``training.tiny.TinySpec``) and how it is trained on captions and
    direct-answer QA (the answer only, no ``<think>``)."""

    hidden_size: Annotated[int, Field(ge=16)] = 128
    layers: Annotated[int, Field(ge=1)] = 4
    heads: Annotated[int, Field(ge=1)] = 4
    kv_heads: Annotated[int, Field(ge=1)] = 2
    intermediate_size: Annotated[int, Field(ge=16)] = 256
    vision_depth: Annotated[int, Field(ge=1)] = 4
    vision_hidden: Annotated[int, Field(ge=16)] = 128
    vision_heads: Annotated[int, Field(ge=1)] = 4
    steps: Annotated[int, Field(ge=1)] = 5000
    batch_size: Annotated[int, Field(ge=1)] = 16
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    warmup_steps: Annotated[int, Field(ge=0)] = 200
    # the first steps train on captions only (LLaVA's alignment stage): a caption cannot be guessed from the prompt,
    # so the vision path is used before the question answers' text priors are learned
    align_steps: Annotated[int, Field(ge=0)] = 0
    # the vision tower's and merger's learning rate as a fraction of the language model's
    vision_lr_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    # what a batch is drawn from: captions, direct-answer QA with a short instruction, and direct-answer QA with
    # the benchmarks' own reasoning prompt (so the base answers a benchmark question briefly)
    mix: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"caption": 0.25, "qa": 0.4, "benchmark_prompt": 0.35})
    eval_questions: Annotated[int, Field(ge=1)] = 600  # held-out questions scored at the end (the card's metric)

    @model_validator(mode="after")
    def _mix(self) -> BaseRecipe:
        unknown = set(self.mix) - {"caption", "qa", "benchmark_prompt"}
        if unknown or not sum(self.mix.values()):
            raise ValueError(f"mix: kinds are caption, qa, benchmark_prompt with weights > 0 in all (got "
                             f"{dict(self.mix)})")
        if self.hidden_size % self.heads or self.heads % self.kv_heads or self.vision_hidden % self.vision_heads:
            raise ValueError("hidden_size must divide by heads, heads by kv_heads, vision_hidden by vision_heads")
        if self.align_steps >= self.steps:
            raise ValueError(f"align_steps ({self.align_steps}) leaves none of steps ({self.steps}) for the mix")
        return self


class PretrainRecipe(_Strict):
    seed: int = 0
    world: WorldConfig
    held_out_videos: Annotated[int, Field(ge=1)] = 300  # the world's last videos: metrics only, never trained on
    video: FrameSpec = FrameSpec(frames=4, max_pixels=12544)  # what the base sees (the tiny profile's video.train)
    siglip: SiglipRecipe = SiglipRecipe()
    base: BaseRecipe = BaseRecipe()

    @model_validator(mode="after")
    def _split(self) -> PretrainRecipe:
        if self.held_out_videos >= self.world.videos:
            raise ValueError(f"held_out_videos ({self.held_out_videos}) leaves no video of world.videos "
                             f"({self.world.videos}) to train on")
        if self.video.frames is None:
            raise ValueError("video: pretraining samples a fixed number of frames per video; set 'frames'")
        return self

    @property
    def train_videos(self) -> int:
        return self.world.videos - self.held_out_videos


def recipe_path(path: str | Path | None = None) -> Path:
    candidate = Path(path or DEFAULT_RECIPE)
    return candidate if candidate.is_absolute() else project_root() / candidate


def load_pretrain_recipe(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PretrainRecipe:
    """The recipe at ``path`` (default ``configs/tiny/pretrain.yaml``), with ``overrides`` merged per section."""
    file = recipe_path(path)
    if not file.is_file():
        raise PretrainRecipeError(f"pretraining recipe {file} does not exist")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PretrainRecipeError(f"pretraining recipe {file} is not valid YAML: {exc}") from exc
    for section, values in (overrides or {}).items():
        raw[section] = {**(raw.get(section) or {}), **values} if isinstance(values, dict) else values
    try:
        return PretrainRecipe.model_validate(raw)
    except ValidationError as exc:
        lines = [f"invalid pretraining recipe {file}:"]
        for e in exc.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            lines.append(f"  {key}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}")
        raise PretrainRecipeError("\n".join(lines)) from None
