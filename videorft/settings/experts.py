"""Profile section: The expert roles of curation (describer, reasoner, refiner): endpoints, models, rates, and the
simulator that stands in for them on the tiny profile."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator

from videorft.settings import Strict as _Strict


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
