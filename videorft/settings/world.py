"""Profile section: Media and the synthetic world: how frames are sampled (``FrameSpec``, ``video``), the generated
world, the QA sources and their ingest."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from videorft.media import MIN_PIXELS
from videorft.settings import Strict as _Strict


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
