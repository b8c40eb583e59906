"""Ingest QA sources into the raw QA pool: validate, normalise, de-duplicate, assign ids and shards.

Every row read is accounted for exactly once: ``rows_in = kept + quarantined + duplicates``. A row that
fails a check goes to the quarantine table with one short reason (and the detail and the raw row); a row
whose content equals an earlier row's goes to the duplicates table with the id of the row it duplicates.
Media are probed once per distinct file (in parallel) and the probe results are cached by file version, so a
re-run decodes nothing it has already decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from videorft.answers import extract_answer, option_letter, parse_number
from videorft.media import MediaDecodeError, media_cache_dir, media_kind, probe
from videorft.provenance import shard_of
from videorft.schema import CATEGORIES, DATA_TYPES, infer_category, normalize_options, normalize_problem_type
from videorft.storage import (
    as_path,
    is_remote,
    is_within,
    join_uri,
    local_copy,
    normalize_uri,
    parent_uri,
    write_parquet,
)

_BAD_UTF8 = re.compile("[\udc80-\udcff]")
POOL_COLUMNS: dict[str, str] = {
    "sample_id": "string", "shard": "int32", "problem_id": "string", "problem": "string",
    "data_type": "string", "problem_type": "string", "category": "string", "category_inferred": "bool",
    "options": "object", "process": "string", "solution": "string", "answer": "string", "path": "string",
    "media_uri": "string", "media_sha256": "string", "media_width": "int32", "media_height": "int32",
    "media_duration": "float64", "media_fps": "float64", "media_num_frames": "int32",
    "data_source": "string", "source": "string", "source_row": "int64",
}
POOL_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "sample_id": "stable id: hash of source, problem id and media (the key every stage joins on)",
    "shard": "curation shard (sample_id hash mod ingest.shards)",
    "problem_id": "the question's id in its source",
    "problem": "the question text",
    "data_type": "video or image",
    "problem_type": "multiple choice, numerical, OCR, free-form or regression",
    "category": "the paper's category; inferred from the source name when the row had none",
    "category_inferred": "true when category was inferred",
    "options": "answer options of a multiple-choice question",
    "process": "the source's own reasoning, if any",
    "solution": "the reference answer, <answer>...</answer>",
    "answer": "the reference answer without the tags (derived from solution)",
    "path": "the media path as the source wrote it",
    "media_uri": "the media's resolved URI (derived from path and the source's media root)",
    "media_sha256": "content hash of the media file",
    "media_width": "width in pixels (probed)",
    "media_height": "height in pixels (probed)",
    "media_duration": "duration in seconds (probed; 0 for an image)",
    "media_fps": "frames per second (probed)",
    "media_num_frames": "frame count (probed)",
    "data_source": "the dataset the question came from",
    "source": "the configured source this row was read from",
    "source_row": "the row's index in that source",
}
QUARANTINE_COLUMNS = ("source", "source_uri", "source_row", "reason", "detail", "raw")
DUPLICATE_COLUMNS = ("source", "source_uri", "source_row", "problem_id", "duplicate_of")


class IngestError(RuntimeError):
    """A source that cannot be read at all (missing file, not JSON): fix the source list, then re-run."""


@dataclass(frozen=True)
class QASource:
    name: str
    uri: str
    media_root: str | None = None

    @property
    def root(self) -> str:
        return normalize_uri(self.media_root) if self.media_root else parent_uri(normalize_uri(self.uri))


@dataclass
class _Rejected(Exception):
    reason: str
    detail: str = ""


@dataclass
class IngestResult:
    pool: pd.DataFrame
    quarantine: pd.DataFrame
    duplicates: pd.DataFrame
    media: pd.DataFrame
    rows_in: int
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def accounted(self) -> bool:
        return self.rows_in == len(self.pool) + len(self.quarantine) + len(self.duplicates)


# ---- reading -------------------------------------------------------------------------------------------

def read_source(source: QASource) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(row_index, parsed_row, error)`` for a JSON list or JSONL file (local or remote).

    Bytes that are not UTF-8 are kept as surrogates so the row they belong to can be quarantined alone.
    """
    path = as_path(source.uri)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise IngestError(f"QA source '{source.name}' not found: {source.uri}") from exc
    except OSError as exc:
        raise IngestError(f"QA source '{source.name}' unreadable: {source.uri}: {exc}") from exc
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IngestError(
                f"QA source '{source.name}' ({source.uri}) is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}; fix the file or convert it to JSONL so bad lines are quarantined alone"
            ) from exc
        for i, row in enumerate(rows):
            yield i, row, None
        return
    for i, line in enumerate(line for line in text.splitlines() if line.strip()):
        try:
            yield i, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield i, line, f"malformed JSON: {exc.msg}"


# ---- validation ----------------------------------------------------------------------------------------

def _text(row: dict[str, Any], key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise _Rejected(f"missing field: {key}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in {"solution", "problem_id"}:
        value = str(value)
    if not isinstance(value, str):
        raise _Rejected(f"wrong type: {key} must be a string", type(value).__name__)
    if _BAD_UTF8.search(value):
        raise _Rejected(f"invalid UTF-8 in {key}")
    if required and not value.strip():
        raise _Rejected(f"empty field: {key}")
    return value


def validate_row(row: Any, source: QASource) -> dict[str, Any]:
    """Check and normalise one row; raise ``_Rejected`` with the first problem found."""
    if not isinstance(row, dict):
        raise _Rejected("not a JSON object", type(row).__name__)
    problem = " ".join(_text(row, "problem").split())
    problem_type = normalize_problem_type(_text(row, "problem_type"))
    if problem_type is None:
        raise _Rejected("unknown problem_type", str(row.get("problem_type")))
    solution = _text(row, "solution")
    answer = extract_answer(solution)
    if not answer:
        raise _Rejected("empty answer")
    path = _text(row, "path")
    data_type = _text(row, "data_type", required=False).strip().lower() or (media_kind(path) or "")
    if data_type not in DATA_TYPES:
        raise _Rejected("unknown data_type", data_type)
    if media_kind(path) != data_type:
        raise _Rejected("media extension does not match data_type", f"{path} vs {data_type}")

    raw_options = row.get("options") or []
    if not isinstance(raw_options, list) or not all(isinstance(o, str) for o in raw_options):
        raise _Rejected("wrong type: options must be a list of strings")
    if any(_BAD_UTF8.search(o) for o in raw_options):
        raise _Rejected("invalid UTF-8 in options")
    options: list[str] = []
    if problem_type == "multiple choice":
        if len(raw_options) < 2:
            raise _Rejected("multiple choice without options")
        options = normalize_options(raw_options)
        letter = option_letter(answer, options)
        if letter is None:
            raise _Rejected("answer is not one of the options", answer)
        answer = letter
    elif problem_type in {"numerical", "regression"} and parse_number(answer) is None:
        raise _Rejected(f"{problem_type} answer does not parse as a number", answer)

    category = row.get("category")
    data_source = _text(row, "data_source", required=False) or source.name
    inferred = category is None
    if inferred:
        category = infer_category(data_source)
    elif not isinstance(category, str) or category.strip().lower() not in CATEGORIES:
        raise _Rejected("unknown category", str(category))
    category = category.strip().lower()

    media_uri = join_uri(source.root, path)
    if not is_within(media_uri, source.root):
        raise _Rejected("media path escapes the media root", path)

    process = row.get("process") or ""
    if not isinstance(process, str) or _BAD_UTF8.search(process):
        raise _Rejected("invalid field: process")
    return {
        "problem_id": str(row.get("problem_id", "")),
        "problem": problem,
        "data_type": data_type,
        "problem_type": problem_type,
        "category": category,
        "category_inferred": inferred,
        "options": options,
        "process": process,
        "solution": f"<answer>{answer}</answer>",
        "answer": answer,
        "path": path,
        "media_uri": media_uri,
        "data_source": data_source,
    }


# ---- media probing -------------------------------------------------------------------------------------

def _file_version(uri: str) -> str:
    """A cheap identity of the file's current content: size + mtime (local) or size + ETag (remote)."""
    try:
        if is_remote(uri):
            path = as_path(uri)
            info = path.fs.info(path.path)
            return f"{info.get('size')}:{info.get('ETag') or info.get('LastModified') or ''}"
        st = os.stat(uri)
        return f"{st.st_size}:{st.st_mtime_ns}"
    except (FileNotFoundError, OSError):
        return "missing"


def _sha256(local: str) -> str:
    digest = hashlib.sha256()
    with open(local, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _probe_one(uri: str, version: str, cache_dir: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {"uri": uri, "version": version, "ok": False, "reason": "", "detail": ""}
    if version == "missing":
        record["reason"] = "missing media file"
        return record
    try:
        info = probe(uri, cache_dir=cache_dir)
        # hash the local copy probe() just used: a remote file is never fetched a second time
        local = local_copy(uri, cache_dir or media_cache_dir())
        record.update(ok=True, kind=info.kind, width=info.width, height=info.height, duration=info.duration,
                      fps=info.fps, num_frames=info.num_frames, sha256=_sha256(str(local)))
    except MediaDecodeError as exc:
        record.update(reason="missing media file" if exc.reason == "missing file" else exc.reason,
                      detail=exc.detail[:300])
    return record


def probe_media(uris: Iterable[str], workers: int = 4, cache: pd.DataFrame | None = None,
                cache_dir: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Probe each distinct media once; rows of ``cache`` whose file version is unchanged are reused."""
    uris = sorted(set(uris))
    with ThreadPoolExecutor(workers) as pool:
        versions = dict(zip(uris, pool.map(_file_version, uris), strict=True))
    known: dict[str, dict[str, Any]] = {}
    if cache is not None and len(cache):
        for rec in cache.to_dict("records"):
            if versions.get(rec["uri"]) == rec["version"] and rec["version"] != "missing":
                known[rec["uri"]] = rec
    todo = [u for u in uris if u not in known]
    results = list(known.values())
    with ThreadPoolExecutor(workers) as pool:
        for n, rec in enumerate(pool.map(lambda u: _probe_one(u, versions[u], cache_dir), todo)):
            results.append(rec)
            if progress is not None:
                progress(n + 1, len(todo))
    columns = ["uri", "version", "ok", "reason", "detail", "kind", "width", "height", "duration", "fps",
               "num_frames", "sha256"]
    frame = pd.DataFrame(results, columns=columns)
    frame.attrs["probed"] = len(todo)
    frame.attrs["reused"] = len(known)
    return frame


# ---- the whole ingest ----------------------------------------------------------------------------------

def content_key(row: dict[str, Any]) -> str:
    """Identity of a QA sample: question, type, options, answer and the media's bytes (not its path)."""
    payload = json.dumps([row["problem"].lower(), row["problem_type"], row["options"], row["answer"].lower(),
                          row["media_sha256"]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _raw_text(row: Any) -> str:
    text = row if isinstance(row, str) else json.dumps(row, ensure_ascii=True, default=str)
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")[:2000]


def ingest(sources: list[QASource], shards: int, probe_workers: int = 4, probe_cache: pd.DataFrame | None = None,
           media_cache_dir: str | None = None, log: Callable[[str], None] | None = None) -> IngestResult:
    log = log or (lambda _msg: None)
    quarantine: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    by_source: dict[str, dict[str, int]] = {}
    rows_in = 0
    for source in sources:
        counts = by_source.setdefault(source.name, {"rows_in": 0, "kept": 0, "quarantined": 0, "duplicates": 0})
        for index, row, error in read_source(source):
            rows_in += 1
            counts["rows_in"] += 1
            where = {"source": source.name, "source_uri": source.uri, "source_row": index}
            try:
                if error:
                    raise _Rejected("malformed JSON", error)
                candidates.append({**validate_row(row, source), **where})
            except _Rejected as rej:
                quarantine.append({**where, "reason": rej.reason, "detail": rej.detail, "raw": _raw_text(row)})
        log(f"read {counts['rows_in']} rows from {source.name} ({source.uri})")

    media = probe_media((c["media_uri"] for c in candidates), probe_workers, probe_cache, media_cache_dir,
                        progress=lambda n, t: log(f"probed {n}/{t} media") if n == t or n % 500 == 0 else None)
    log(f"media: {len(media)} distinct, {media.attrs['probed']} probed, {media.attrs['reused']} from cache")
    info = media.set_index("uri").to_dict("index") if len(media) else {}

    kept: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for row in candidates:
        m = info[row["media_uri"]]
        if not m["ok"]:
            quarantine.append({k: row[k] for k in ("source", "source_uri", "source_row")} |
                              {"reason": m["reason"], "detail": m["detail"], "raw": row["path"]})
            continue
        if m["kind"] != row["data_type"]:
            quarantine.append({k: row[k] for k in ("source", "source_uri", "source_row")} |
                              {"reason": "media kind does not match data_type", "detail": m["kind"],
                               "raw": row["path"]})
            continue
        row.update(media_sha256=m["sha256"], media_width=m["width"], media_height=m["height"],
                   media_duration=m["duration"], media_fps=m["fps"], media_num_frames=m["num_frames"])
        sample_id = "s" + content_key(row)[:16]
        if sample_id in seen:
            duplicates.append({k: row[k] for k in ("source", "source_uri", "source_row", "problem_id")} |
                              {"duplicate_of": sample_id})
            continue
        seen[sample_id] = row["source"]
        row["sample_id"] = sample_id
        row["shard"] = shard_of(row["media_sha256"], shards)
        kept.append(row)

    for q in quarantine:
        by_source[q["source"]]["quarantined"] += 1
    for d in duplicates:
        by_source[d["source"]]["duplicates"] += 1
    for k in kept:
        by_source[k["source"]]["kept"] += 1

    pool = pd.DataFrame(kept, columns=list(POOL_COLUMNS))
    pool = pool.astype({k: v for k, v in POOL_COLUMNS.items() if v != "object"})
    pool = pool.sort_values("sample_id", kind="stable").reset_index(drop=True)
    result = IngestResult(
        pool=pool,
        quarantine=pd.DataFrame(quarantine, columns=list(QUARANTINE_COLUMNS)),
        duplicates=pd.DataFrame(duplicates, columns=list(DUPLICATE_COLUMNS)),
        media=media,
        rows_in=rows_in,
        by_source=by_source,
    )
    if not result.accounted:  # an internal bug, never a data problem: refuse to publish a lossy pool
        raise AssertionError(f"ingest lost rows: {rows_in} in, {len(pool)} kept, {len(result.quarantine)} "
                             f"quarantined, {len(result.duplicates)} duplicates")
    return result


# ---- publishing ----------------------------------------------------------------------------------------

def pool_content_hash(pool: pd.DataFrame, shards: int) -> str:
    """Data version of a pool: its sample ids (content hashes) and the shard count."""
    digest = hashlib.sha256(f"shards={shards}\n".encode())
    for sample_id in pool["sample_id"]:
        digest.update(sample_id.encode())
    return digest.hexdigest()[:16]


def write_pool(result: IngestResult, root: str, shards: int) -> dict[str, Any]:
    """Write the pool (one Parquet file per shard), quarantine and duplicates under an immutable version folder.

    Returns the manifest that the asset stores as its value: URIs, counts and the content hash.
    """
    content_hash = pool_content_hash(result.pool, shards)
    base = as_path(root) / f"v-{content_hash}"
    shard_uris: dict[str, str] = {}
    for shard in range(shards):
        part = result.pool[result.pool["shard"] == shard]
        target = base / "pool" / f"shard-{shard:05d}.parquet"
        write_parquet(part, target)
        shard_uris[str(shard)] = str(target)
    write_parquet(result.quarantine, base / "quarantine.parquet")
    write_parquet(result.duplicates, base / "duplicates.parquet")
    return {
        "uri": str(base),
        "content_hash": content_hash,
        "shards": shards,
        "shard_uris": shard_uris,
        "quarantine_uri": str(base / "quarantine.parquet"),
        "duplicates_uri": str(base / "duplicates.parquet"),
        "row_count": len(result.pool),
        "rows_in": result.rows_in,
        "quarantined_rows": len(result.quarantine),
        "duplicate_rows": len(result.duplicates),
    }


def read_pool(manifest: dict[str, Any], shard: int | None = None) -> pd.DataFrame:
    """The pool (or one shard of it) from a manifest written by ``write_pool``."""
    uris = [manifest["shard_uris"][str(shard)]] if shard is not None else list(manifest["shard_uris"].values())
    frames = []
    for uri in uris:
        with as_path(uri).open("rb") as fh:
            frames.append(pd.read_parquet(fh))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(POOL_COLUMNS))


def load_probe_cache(uri: str) -> pd.DataFrame | None:
    path = as_path(uri)
    if not path.exists():
        return None
    try:
        with path.open("rb") as fh:
            return pd.read_parquet(fh)
    except Exception:  # a corrupt cache only costs a re-probe
        return None


def save_probe_cache(media: pd.DataFrame, uri: str) -> None:
    write_parquet(media.astype({"detail": "string", "reason": "string"}), as_path(uri))
