"""Training data: the curated sets (VideoRFT schema) read from a file or a folder, local or ``s3://``.

``cot_sft_set`` rows carry ``process`` (``<think>..</think>``) and ``solution`` (``<answer>..</answer>``);
``rl_set`` rows carry ``solution`` only. A relative media ``path`` resolves against the data file's folder.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.prompts import question_text
from videorft.storage import as_path, join_uri, parent_uri, read_parquet

REQUIRED = ("problem", "problem_type", "solution", "path", "data_type")


class DataError(ValueError):
    """Training data that cannot be used; the message names the URI and what is missing."""


@dataclass(frozen=True)
class TrainingData:
    rows: list[dict[str, Any]]
    files: list[str]
    content_hash: str  # of the files' bytes: what the checkpoint's metadata records as the dataset version
    skipped: dict[str, str] = field(default_factory=dict)  # media URI -> why its rows were left out


def check_media(uris: list[str], workers: int = 8, cache_dir: str | None = None) -> dict[str, str]:
    """Probe every distinct media file (headers only); returns the unreadable ones with the reason, so a
    broken or missing video is reported before training instead of killing the run hours in."""
    from concurrent.futures import ThreadPoolExecutor

    from videorft.media import MediaDecodeError, probe

    def one(uri: str) -> tuple[str, str]:
        try:
            probe(uri, cache_dir=cache_dir)
            return uri, ""
        except MediaDecodeError as exc:
            return uri, exc.reason + (f" ({exc.detail})" if exc.detail else "")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {uri: why for uri, why in pool.map(one, sorted(set(uris))) if why}


def _data_files(uri: str) -> list[str]:
    path = as_path(uri)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.name.endswith(".parquet") and p.name != "dropped.parquet")
        if not files:
            files = sorted(str(p) for p in path.iterdir() if p.name.endswith((".jsonl", ".json")))
        if not files:
            raise DataError(f"{uri}: a folder with no .parquet, .jsonl or .json data file")
        return files
    if not path.exists():
        raise DataError(f"{uri}: no such file or folder")
    return [str(path)]


def _read(file: str) -> pd.DataFrame:
    if file.endswith(".parquet"):
        return read_parquet(file)
    text = as_path(file).read_text(encoding="utf-8")
    if file.endswith(".jsonl"):
        return pd.read_json(io.StringIO(text), lines=True, dtype=False)
    return pd.DataFrame(json.loads(text))


def read_table(uri: str) -> pd.DataFrame:
    """Every row of a data file or folder (local or ``s3://``), as written by the curation assets."""
    return pd.concat([_read(f) for f in _data_files(uri)], ignore_index=True)


def _options(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [value]
    return [str(v) for v in list(value)]


def load_training_data(uri: str, require_process: bool, max_samples: int | None = None,
                       seed: int = 0, validate_media: bool = True, media_cache_dir: str | None = None
                       ) -> TrainingData:
    """Rows as plain dicts with the columns the trainers and reward functions read."""
    files = _data_files(uri)
    digest = hashlib.sha256()
    frames = []
    for file in files:
        digest.update(as_path(file).read_bytes())
        table = _read(file)
        missing = [c for c in (*REQUIRED, *(("process",) if require_process else ())) if c not in table.columns]
        if missing:
            raise DataError(f"{file}: missing columns {missing} (VideoRFT schema: problem, problem_type, options, "
                            f"process, solution, path, data_type)")
        base = parent_uri(file)
        table = table.assign(path=[join_uri(base, p) for p in table["path"].astype(str)])
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    if require_process:
        table = table[table["process"].astype(str).str.len() > 0]
    if max_samples is not None and len(table) > max_samples:
        table = table.sample(n=max_samples, random_state=seed).sort_index()
    skipped = check_media(table["path"].tolist(), cache_dir=media_cache_dir) if validate_media else {}
    if skipped:
        table = table[~table["path"].isin(skipped)]
    if table.empty:
        detail = f"; unreadable media: {dict(list(skipped.items())[:3])}" if skipped else ""
        raise DataError(f"{uri}: no usable rows{detail}")
    rows = []
    for i, r in enumerate(table.to_dict(orient="records")):
        options = _options(r.get("options"))
        rows.append({
            "sample_id": str(r.get("sample_id") or r.get("problem_id") or i),
            "problem": str(r["problem"]), "problem_type": str(r["problem_type"]), "options": options,
            "process": str(r.get("process") or ""), "solution": str(r["solution"]), "path": str(r["path"]),
            "data_type": str(r["data_type"]), "media_sha256": str(r.get("media_sha256") or "") or None,
            "question": question_text(str(r["problem"]), str(r["problem_type"]), options),
        })
    return TrainingData(rows=rows, files=files, content_hash=digest.hexdigest()[:16], skipped=skipped)
