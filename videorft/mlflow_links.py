"""Which MLflow UI addresses the links recorded for a local store point at: noted beside the store when a link is
made, read by ``make mlflow-ui`` so that every recorded link still opens when the UI is served elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

ADDRESSES_FILE = "ui_addresses.json"
# MLflow 3 opens an experiment or run in its GenAI view ("Evaluations", traces) unless the address asks for the
# model-training one; an experiment tag alone does not switch it (measured in Chromium, MLflow 3.18)
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def run_address(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"


def experiment_address(ui_url: str, experiment_id: str) -> str:
    """An experiment's page on its runs (the model-training view)."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}?{MODEL_TRAINING_VIEW}"


def find_experiment_address(tracking_uri: str, ui_url: str, experiment: str) -> str:
    """``experiment``'s page, or the UI's root when the store has no such experiment (yet) or cannot be read. Only a
    local store is asked: a tracking server that is down would hold the caller through MLflow's retries."""
    if local_store(tracking_uri) is None or not Path(tracking_uri[len("sqlite:///"):]).exists():
        return ui_url.rstrip("/")
    try:
        from mlflow import MlflowClient

        found = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    except Exception:  # a store that is not there yet, or unreachable: the root still opens
        found = None
    return experiment_address(ui_url, found.experiment_id) if found is not None else ui_url.rstrip("/")


def local_store(tracking_uri: str) -> Path | None:
    """The folder of a ``sqlite:///`` store (where the addresses file lives), None for a tracking server."""
    return Path(tracking_uri[len("sqlite:///"):]).parent if tracking_uri.startswith("sqlite:///") else None


def remember_address(tracking_uri: str, ui_url: str) -> None:
    """Note that links to ``ui_url`` were recorded for this store (idempotent; tracking servers need nothing)."""
    folder = local_store(tracking_uri)
    if folder is None:
        return
    path = folder / ADDRESSES_FILE
    known = recorded_addresses(tracking_uri)
    if ui_url.rstrip("/") not in known:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([*known, ui_url.rstrip("/")], indent=1))


def recorded_addresses(tracking_uri: str) -> list[str]:
    folder = local_store(tracking_uri)
    path = folder / ADDRESSES_FILE if folder is not None else None
    try:
        return list(json.loads(path.read_text())) if path is not None and path.exists() else []
    except (ValueError, OSError):
        return []
