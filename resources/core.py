"""Dagster resources: the profile, the storage root, MLflow tracking, the manifest IO manager, and
``build_resources``, which keys them all to a profile (the experts and the launcher have modules of their own).

Built per profile by ``build_resources`` (environment-keyed, as in hooli-data-eng-pipelines). No secret enters
resource config: the experts resource holds the profile's name and the process that calls an endpoint reads its
key from the environment (docs/architecture.md, "Contracts").
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr
from upath import UPath

from resources.experts import ExpertsResource
from resources.launchers import LauncherResource
from videorft.mlflow_links import remember_address, run_address
from videorft.profile import Profile, load_profile, local_state_dir
from videorft.provenance import git_sha
from videorft.storage import as_path, join_uri

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class ProfileResource(dg.ConfigurableResource):
    """The validated profile (name or YAML path), loaded once per process."""

    name: str

    @cached_property
    def profile(self) -> Profile:
        return load_profile(self.name)


class StorageResource(dg.ConfigurableResource):
    """The storage root every large artifact is written under: a local folder or ``s3://bucket/prefix``."""

    root: str

    def path(self, *parts: str) -> UPath:
        base = as_path(self.root)
        return base.joinpath(*parts) if parts else base

    def uri(self, *parts: str) -> str:
        return str(self.path(*parts))


class TrackedRun:
    """One MLflow run, driven through an explicit client (no global active-run state across threads)."""

    def __init__(self, client: Any, run_id: str, experiment_id: str, url: str) -> None:
        self.client, self.run_id, self.experiment_id, self.url = client, run_id, experiment_id, url

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def log_traces(self, name: str, records: list[dict[str, Any]]) -> int:
        """One MLflow trace per expert call record (already sampled), linked to this run: a CHAT_MODEL span
        with the call's real start and end and its token usage (MLflow's Tokens column)."""
        import mlflow
        from mlflow.tracing.constant import SpanAttributeKey

        mlflow.set_tracking_uri(self.client.tracking_uri)  # the tracer exports through the global store
        for record in records:
            ended = int(record.get("ended_ns") or time.time_ns())
            started = ended - int(float(record.get("latency_s") or 0.0) * 1e9)
            usage = record.get("usage") or {}
            attributes: dict[str, Any] = {"role": record["role"], "cache_key": record["key"],
                                          "cached": str(record["cached"]), "attempts": str(record["attempts"])}
            if usage.get("prompt_tokens") is not None or usage.get("completion_tokens") is not None:
                prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                attributes[SpanAttributeKey.CHAT_USAGE] = {"input_tokens": prompt, "output_tokens": completion,
                                                           "total_tokens": int(usage.get("total_tokens")
                                                                               or prompt + completion)}
            if record.get("model"):
                attributes[SpanAttributeKey.MODEL] = record["model"]
            span = self.client.start_trace(name, span_type="CHAT_MODEL", inputs={"messages": record["messages"]},
                                           attributes=attributes, experiment_id=self.experiment_id,
                                           run_id=self.run_id, start_time_ns=started)
            self.client.end_trace(span.trace_id, outputs={"content": record["content"],
                                                          "reasoning": record["reasoning"],
                                                          "usage": usage, "error": record["error"]},
                                  status="OK" if record["ok"] else "ERROR", end_time_ns=max(ended, started + 1))
        if records:
            mlflow.flush_trace_async_logging()
        return len(records)

    def log_dataset(self, name: str, uri: str, digest: str, context: str, rows: int | None = None) -> None:
        """Record a dataset this run read (``mlflow.data``): its name, where it lives and its content hash,
        without loading it (MLflow's Datasets column and the run's inputs)."""
        import warnings

        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        with warnings.catch_warnings():  # a local path matches two equivalent source kinds; either is right
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(uri)
        dataset = MetaDataset(source=source, name=name, digest=digest[:36])
        tags = [InputTag("mlflow.data.context", context), *([InputTag("rows", str(rows))] if rows is not None else [])]
        from mlflow.exceptions import MlflowException

        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=tags)])
                return
            except MlflowException as exc:
                # two runs logging the same new dataset at once (`--parallel`, a backfill): the store's look-up
                # and insert race, one insert loses on the unique key; the row now exists, so a retry links it
                if ("UNIQUE constraint" not in str(exc) and "duplicate key" not in str(exc)) or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def register_model(self, name: str, source: str, version_key: str, tags: dict[str, str],
                       description: str) -> str:
        """Register ``source`` as a version of the registered model ``name`` (created if new), once per
        ``version_key`` (the checkpoint's content hash): re-materializing the same checkpoint adds no version.
        Returns the version number."""
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # exists already
            self.client.create_registered_model(name, description=f"VideoRFT variant checkpoints: {name}")
        found = [v for v in self.client.search_model_versions(f"name = '{name}'")
                 if v.tags.get("checkpoint_version") == version_key]
        version = str(found[0].version) if found else str(self.client.create_model_version(
            name, source=source, run_id=self.run_id, description=description,
            tags={"checkpoint_version": version_key, **{k: str(v)[:5000] for k, v in tags.items()}}).version)
        # `models:/<name>@current` is the variant's model as of its latest materialization (MLflow reserves
        # "latest", which means the highest version number instead)
        self.client.set_registered_model_alias(name, "current", version)
        return version


# what MLflow's run list shows of a long asset name (it cuts names at its column's width: every score run read
# "benchmark_score…"); assets not named here show their key
RUN_LABELS = {"benchmark_scores": "score", "sft_checkpoint": "sft", "rl_checkpoint": "rl",
              "structured_video_representations": "describe", "initial_cots": "reason", "refined_cots": "refine",
              "video_embeddings": "embed"}


def run_label(key: str, partition: str = "") -> str:
    """An asset run's MLflow name, distinct and short: ``score mvbench/full``, ``rl full``, ``raw_qa_pool``."""
    label = RUN_LABELS.get(key, key)
    return f"{label} {partition.replace('|', '/')}" if partition else label


# MLflow 3's UI opens an experiment by its kind: without it, in the GenAI view (traces, "Evaluations" in a training
# run's breadcrumb); this project trains models
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: one run per materialization, tagged with where it came from.

    Tags: ``dagster.run_id``, ``dagster.asset_key``, ``dagster.partition``, ``dagster.code_version``,
    ``mlflow.source.git.commit``, ``videorft.profile``. ``ui_url`` is where people browse runs
    (``Profile.resolved_mlflow_ui_url``: the configured address, the HTTP tracking server, or ``make mlflow-ui``'s).
    """

    tracking_uri: str
    experiment: str
    ui_url: str
    profile: str = "tiny"

    _client: Any = PrivateAttr(default=None)

    def _get_client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self) -> str:
        client = self._get_client()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # an experiment from before the tag
                client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return found.experiment_id
        location = None
        if self.tracking_uri.startswith("sqlite:///"):
            # sqlite stores default artifacts to ./mlruns of whatever cwd: pin them beside the database
            location = (Path(self.tracking_uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
        try:
            return client.create_experiment(self.experiment, artifact_location=location,
                                            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception:  # created concurrently by another step
            return client.get_experiment_by_name(self.experiment).experiment_id

    def tracked(self, run_id: str) -> TrackedRun:
        """An existing run of this experiment (one that finished earlier), to add to what it recorded."""
        experiment_id = self._experiment_id()
        return TrackedRun(self._get_client(), run_id, experiment_id, self.run_url(experiment_id, run_id))

    def run_url(self, experiment_id: str, run_id: str) -> str:
        remember_address(self.tracking_uri, self.ui_url)  # so `make mlflow-ui` on another port keeps it working
        return run_address(self.ui_url, experiment_id, run_id)

    def parent_run_id(self, context: dg.AssetExecutionContext, experiment_id: str) -> str:
        """The MLflow run standing for this Dagster run (every asset run of it nests under it), created by
        whichever step comes first. Steps of one run may race to create it: the earliest one wins and a
        duplicate is deleted, so every step ends up under the same parent."""
        client = self._get_client()
        run_id = context.run.run_id
        query = f"tags.`dagster.run_id` = '{run_id}' and tags.`videorft.kind` = 'dagster_run'"

        def existing() -> list[Any]:
            return sorted(client.search_runs([experiment_id], query, max_results=10),
                          key=lambda r: (r.info.start_time, r.info.run_id))

        found = existing()
        if found:
            return found[0].info.run_id
        job = context.run.job_name
        assets = sorted(k.to_user_string() for k in (context.run.asset_selection or []))
        partition = context.run.tags.get("dagster/partition") or ""
        # named like its children ("score mvbench/full"), so the list's first column tells runs apart
        shown = (", ".join(dict.fromkeys(run_label(a, partition) for a in assets)) if 0 < len(assets) <= 3
                 else f"{len(assets)} assets{f' [{partition}]' if partition else ''}" if assets else job)
        name = f"{shown} · dagster {run_id[:8]}"
        created = client.create_run(experiment_id, run_name=name[:250], tags={
            "dagster.run_id": run_id, "videorft.kind": "dagster_run", "videorft.profile": self.profile,
            "mlflow.source.git.commit": git_sha(), "mlflow.source.name": f"dagster_project · run of {job}",
            "mlflow.source.type": "JOB",
            "mlflow.note.content": f"Dagster run {run_id} ({job}): each asset (and partition) it materialized "
                                   "is a nested run."})
        winner = existing()[0].info.run_id
        if winner != created.info.run_id:
            client.delete_run(created.info.run_id)
        return winner

    @contextlib.contextmanager
    def start_run(self, context: dg.AssetExecutionContext, run_name: str | None = None,
                  extra_tags: dict[str, str] | None = None) -> Iterator[TrackedRun]:
        client = self._get_client()
        experiment_id = self._experiment_id()
        key = context.asset_key.to_user_string()
        partition = context.partition_key if context.has_partition_key else ""
        code_version = context.assets_def.code_versions_by_key.get(context.asset_key) or ""
        parent = self.parent_run_id(context, experiment_id)
        description = context.assets_def.descriptions_by_key.get(context.asset_key) or ""
        tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": key,
            "dagster.partition": partition,
            "dagster.code_version": code_version,
            "mlflow.source.git.commit": git_sha(),
            "mlflow.parentRunId": parent,
            "mlflow.note.content": f"**{key}{f'[{partition}]' if partition else ''}**: {description}",
            "videorft.profile": self.profile,
            **(extra_tags or {}),
        }
        tags.update({"mlflow.source.name": f"dagster_project · asset {key}", "mlflow.source.type": "JOB"})
        run = client.create_run(experiment_id, tags=tags, run_name=run_name or run_label(key, partition))
        tracked = TrackedRun(client, run.info.run_id, experiment_id, self.run_url(experiment_id, run.info.run_id))
        try:
            yield tracked
        except BaseException:
            client.set_terminated(run.info.run_id, status="FAILED")
            client.set_terminated(parent, status="FAILED")
            raise
        client.set_terminated(run.info.run_id, status="FINISHED")
        client.set_terminated(parent, status="FINISHED")  # as of its latest step (a later step may add a child)


class ManifestIOManager(dg.UPathIOManager):
    """Asset values are small JSON manifests (URIs, counts, hashes) stored beside the data they describe."""

    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        return json.loads(path.read_text())


class ManifestIOManagerFactory(dg.ConfigurableIOManagerFactory):
    root: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ManifestIOManager:
        return ManifestIOManager(base_path=as_path(self.root) / "manifests")


def build_resources(profile: Profile, profile_ref: str) -> dict[str, Any]:
    storage_root = profile.resolved_storage_root()
    return {
        "profile": ProfileResource(name=profile_ref),
        "storage": StorageResource(root=storage_root),
        "io_manager": ManifestIOManagerFactory(root=storage_root),
        "mlflow": MlflowResource(tracking_uri=profile.resolved_mlflow_uri(), experiment=profile.mlflow.experiment,
                                 profile=profile.name, ui_url=profile.resolved_mlflow_ui_url()),
        "experts": ExpertsResource(
            profile=profile_ref,
            cache_root=profile.curation.response_cache or join_uri(storage_root, "expert_cache"),
            media_cache=profile.media_cache_dir(),
            simulator_world=join_uri(storage_root, "world") if profile.curation.simulator.enabled else None,
        ),
        "launcher": LauncherResource(config_json=profile.training.launcher.model_dump_json()),
    }


def default_dagster_home() -> Path:
    return local_state_dir() / "dagster_home"
