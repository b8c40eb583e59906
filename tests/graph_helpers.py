"""Running the asset graph in-process from tests, partition by partition, as the materialize CLI does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.__main__ import plan_batches, variant_keys

ROOT = Path(__file__).resolve().parent.parent


def pool_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    """raw_qa_pool and what it is built from (the unpartitioned source assets)."""
    return list(dg.AssetSelection.assets("raw_qa_pool").upstream().resolve(defs.resolve_asset_graph()))


def run_pool(defs: dg.Definitions, instance: dg.DagsterInstance, **kwargs: Any) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=pool_keys(defs), raise_on_error=False,
                                  **kwargs)


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, selection: str | None = None,
                    variants: list[str] | None = None) -> list[dg.ExecuteInProcessResult]:
    """Every selected asset (default: all but the training and evaluation groups), every partition (of the
    Table 2 variants: ``variants``, default all), in dependency order; stops after the first failed batch."""
    graph = defs.resolve_asset_graph()
    sft = graph.get(dg.AssetKey("sft_checkpoint")).partitions_def
    defined = set(sft.get_partition_keys()) if sft is not None else set()
    selected = set(dg.AssetSelection.from_string(selection or "not group:training and not group:evaluation")
                   .resolve(graph))
    job = defs.resolve_implicit_global_asset_job_def()
    results = []
    for batch in plan_batches(graph, selected):
        keys = (variant_keys(batch.partitions_def, batch.partitions_def.get_partition_keys(),
                             set(variants or defined), defined) if batch.partitions_def else [None])
        for key in keys:
            results.append(job.execute_in_process(instance=instance, asset_selection=batch.keys, partition_key=key,
                                                  raise_on_error=False))
        if not all(r.success for r in results):
            break
    return results


def data_versions(instance: dg.DagsterInstance, defs: dg.Definitions) -> dict[str, str]:
    """Latest data version of every asset (partition) as ``key[partition] -> version``."""
    out = {}
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        pdef = graph.get(key).partitions_def
        for partition in (pdef.get_partition_keys() if pdef else [None]):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1)
            if records.records:
                tags = records.records[0].asset_materialization.tags or {}
                out[f"{key.to_user_string()}[{partition or ''}]"] = tags.get("dagster/data_version")
    return out


def latest_metadata(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> dict[str, Any]:
    """The latest materialization's metadata of ``key`` (one partition's, if given), as plain values."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None), limit=1).records
    return {k: plain(v) for k, v in records[0].asset_materialization.metadata.items()}


def plain(value: Any) -> Any:
    """A metadata value as a plain value; a table as ``{first column: its "rows" (or second) column}``."""
    if isinstance(value, dg.TableMetadataValue):
        columns = [c.name for c in value.schema.columns]
        shown = "rows" if "rows" in columns else columns[1]
        return {r.data[columns[0]]: r.data[shown] for r in value.records}
    return getattr(value, "value", value)


def data_version(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> str:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None), limit=1).records
    return records[0].asset_materialization.tags["dagster/data_version"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(command: list[str], env: dict[str, str], ready: str) -> Iterator[subprocess.Popen]:
    """A UI process in its own session (Dagster's webserver ignores a signal sent to it alone), up at ``ready``."""
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(ready, timeout=3)
                break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError(f"nothing served at {ready} within 120 s")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
