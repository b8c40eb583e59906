"""Where the expert client keeps a paid response, so that no call is paid twice: three stores, one interface.

``get(key) -> record | None`` and ``put(key, record)``; a record is the client's JSON-able dict. Every store
writes a record atomically (a killed run leaves a whole response or none) and returns None for a record of
another cache format, so a format change is a miss, never a crash.

* ``ResponseCache``: one JSON file per response under a folder or ``s3://`` prefix.
  Simple, shareable through the storage root; at the paper's scale (about 1M responses) that is 1M objects.
* ``SqliteResponseCache`` (``sqlite:///path/cache.db``): one database file on local disk (WAL, a commit per
  put). For one machine: a laptop, one node.
* ``PostgresResponseCache`` (``postgresql://...``, or ``postgres``: the Dagster instance's database from
  ``DAGSTER_POSTGRES_URL``): one table, shared by every pod of a Kubernetes deployment. The production default
  (bench/RESULTS.md, "Response cache at 1M entries", says why).

``open_response_cache(location)`` picks the store from the location's form.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

from videorft.storage import as_path, is_remote

CACHE_FORMAT = 1
POSTGRES_URL_ENV = "DAGSTER_POSTGRES_URL"
TABLE = "videorft_responses"


class ResponseStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, record: dict[str, Any]) -> None: ...


def encode_record(record: dict[str, Any]) -> str:
    return json.dumps({"format": CACHE_FORMAT, **record}, ensure_ascii=False)


def decode_record(text: str | bytes | None) -> dict[str, Any] | None:
    """The record, or None for nothing, a torn write or another cache format."""
    if text is None:
        return None
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("format") == CACHE_FORMAT else None


class ResponseCache:
    """One JSON file per request key under ``root`` (local folder or ``s3://``), shared by all workers.

    Writes are atomic (temp file + rename locally, a single PUT on object stores), so a killed run leaves
    either a whole response or none.
    """

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.remote = is_remote(root)
        self._base = as_path(self.root)

    def _path(self, key: str) -> Any:
        return self._base / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._path(key).read_text()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return None  # a torn file from a crash: a miss, overwritten
        return decode_record(text)

    def put(self, key: str, record: dict[str, Any]) -> None:
        text = encode_record(record)
        path = self._path(key)
        if self.remote:
            path.write_text(text)
            return
        local = Path(str(path))
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, local)


class SqliteResponseCache:
    """Responses in one SQLite file (``sqlite:///path``): WAL journal, one transaction per put."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # the async client calls from one thread; Dagster may hand the resource to another: one guarded connection
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a killed process loses nothing committed (WAL)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT record FROM {TABLE} WHERE key = ?", (key,)).fetchone()
        return decode_record(row[0] if row else None)

    def put(self, key: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO {TABLE} (key, record) VALUES (?, ?)",
                             (key, encode_record(record)))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresResponseCache:
    """Responses in one PostgreSQL table, shared by every process that reaches the database."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.url = url
        self._lock = threading.Lock()
        self._db = psycopg2.connect(_libpq_url(url))
        self._db.autocommit = True  # each put is its own transaction: a killed run loses nothing it was told
        with self._lock, self._db.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock, self._db.cursor() as cur:
            cur.execute(f"SELECT record FROM {TABLE} WHERE key = %s", (key,))
            row = cur.fetchone()
        return decode_record(row[0] if row else None)

    def put(self, key: str, record: dict[str, Any]) -> None:
        with self._lock, self._db.cursor() as cur:
            cur.execute(f"INSERT INTO {TABLE} (key, record) VALUES (%s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record", (key, encode_record(record)))

    def __len__(self) -> int:
        with self._lock, self._db.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {TABLE}")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _libpq_url(url: str) -> str:
    """SQLAlchemy-style ``postgresql+psycopg2://`` (Dagster's form) as the ``postgresql://`` libpq reads."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def open_response_cache(location: str) -> ResponseStore:
    """The store a location names: ``sqlite:///path``, ``postgresql[+driver]://...``, ``postgres`` (the Dagster
    instance's database, ``$DAGSTER_POSTGRES_URL``), else a folder or ``s3://`` prefix of JSON files."""
    if location == "postgres":
        url = os.environ.get(POSTGRES_URL_ENV)
        if not url:
            raise ValueError(f"curation.response_cache is 'postgres' but {POSTGRES_URL_ENV} is not set: set it to "
                             "the Dagster instance's database URL, or name a postgresql:// URL or a folder")
        return PostgresResponseCache(url)
    if location.startswith(("postgresql://", "postgresql+", "postgres://")):
        return PostgresResponseCache(location)
    if location.startswith("sqlite:///"):  # SQLAlchemy's form: sqlite:////absolute/path, sqlite:///relative/path
        return SqliteResponseCache(location.removeprefix("sqlite:///"))
    return ResponseCache(location)
