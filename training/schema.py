"""The base of every validated settings model of training (recipes, reward settings): unknown keys are errors
and a loaded model is frozen. Its own module so that the rewards, which own their settings, and the recipes,
which hold them, both build on it and import one way."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
