"""The one configuration system: the base of every settings model (``Strict``: unknown keys are errors, loaded
models are frozen), the profile's sections (one module each: ``world``, ``experts``, ``curation``, ``training``,
``evaluation``, ``deployment``; ``videorft.profile`` assembles them) and the one YAML loader that profiles,
training recipes and the pretraining recipe use, so every error names the file and the full key path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


def project_root() -> Path:
    """The checkout this package runs from (``VIDEORFT_PROJECT_ROOT`` overrides)."""
    env = os.environ.get("VIDEORFT_PROJECT_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent.parent


class ProfileError(ValueError):
    """A profile that cannot be loaded: the message names the file, the key and what is wrong."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_mapping(path: Path, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The YAML mapping at ``path``; ``error`` (naming ``what`` and the file) when it is missing, not YAML or not
    a mapping."""
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{what} {path} must be a mapping at the top level")
    return raw


def validation_message(what: str, path: Path, err: ValidationError, show_input: bool = True) -> str:
    """One line per problem, each naming its full key path (``training.launcher.k8s.gpus: ...``)."""
    lines = [f"invalid {what} {path}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = "" if e["type"] == "missing" or not show_input else f" (got {e.get('input')!r})"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {key}: {msg}{got}")
    return "\n".join(lines)


def validated(model: type[BaseModel], raw: dict[str, Any], what: str, path: Path, error: type[ValueError],
              context: dict[str, Any] | None = None, show_input: bool = True) -> Any:
    """``model`` validated from ``raw``; ``error`` with ``validation_message`` when it is not valid."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise error(validation_message(what, path, exc, show_input)) from None
