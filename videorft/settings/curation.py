"""Profile section: Curation: the CoT filter and the curation stages' bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from videorft.schema import PROBLEM_TYPES
from videorft.settings import Strict as _Strict
from videorft.settings import project_root
from videorft.settings.experts import SimulatorConfig


class FilterConfig(_Strict):
    """The CoT filter (paper 2.2): structured types keep right answers, open types keep CLIP-similar answers."""

    structured_types: list[str] = Field(default_factory=lambda: ["multiple choice", "numerical", "regression"])
    open_types: list[str] = Field(default_factory=lambda: ["free-form", "OCR"])
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
