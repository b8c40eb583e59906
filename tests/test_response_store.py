"""The response cache's contract, for every store (one JSON file each locally and on S3, SQLite, PostgreSQL):
a put is read back, a miss is None, another cache format is a miss, and a run killed mid-write keeps every
response it had stored, which the next run reads instead of paying again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curation.response_store import (
    PostgresResponseCache,
    ResponseCache,
    SqliteResponseCache,
    open_response_cache,
)

ROOT = Path(__file__).resolve().parent.parent
STORES = ("files", "sqlite", "postgres", "s3")

WRITER = """
import sys
from curation.response_store import open_response_cache
store = open_response_cache(sys.argv[1])
i = 0
while True:
    store.put(f"{i:064x}", {"content": "x" * 3000, "i": i})
    print(i, flush=True)
    i += 1
"""


@pytest.fixture(params=STORES)
def location(request, tmp_path) -> str:
    if request.param == "files":
        return str(tmp_path / "expert_cache")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cache.db'}"
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"s3://{request.getfixturevalue('s3_env')}/storage/expert_cache"


def test_a_stored_response_is_read_back_and_a_miss_is_none(location):
    store = open_response_cache(location)
    record = {"content": "<think>Blue.</think><answer>B</answer>", "usage": {"prompt_tokens": 12}, "text": "é"}
    assert store.get("a" * 64) is None
    store.put("a" * 64, record)
    again = open_response_cache(location)  # another process, later
    assert again.get("a" * 64) == {"format": 1, **record}
    store.put("a" * 64, {**record, "content": "replaced"})
    assert open_response_cache(location).get("a" * 64)["content"] == "replaced"


def test_a_killed_writer_loses_no_response_it_had_stored(location):
    child = subprocess.Popen([sys.executable, "-c", WRITER, location], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(25)]
    child.send_signal(signal.SIGKILL)  # mid-write, most likely: it writes in a tight loop
    child.wait()
    store = open_response_cache(location)
    for i in acknowledged:
        assert store.get(f"{i:064x}") == {"format": 1, "content": "x" * 3000, "i": i}
    nxt = store.get(f"{acknowledged[-1] + 1:064x}")  # the one being written: whole or absent, never torn
    assert nxt is None or nxt["i"] == acknowledged[-1] + 1


def test_a_record_of_another_cache_format_is_a_miss(location):
    store = open_response_cache(location)
    if isinstance(store, SqliteResponseCache | PostgresResponseCache):
        from curation.response_store import TABLE

        placeholder = "?" if isinstance(store, SqliteResponseCache) else "%s"
        sql = f"INSERT INTO {TABLE} (key, record) VALUES ({placeholder}, {placeholder})"
        if isinstance(store, SqliteResponseCache):
            store._db.execute(sql, ("b" * 64, '{"format": 0, "content": "old"}'))
        else:
            with store._db.cursor() as cur:
                cur.execute(sql, ("b" * 64, '{"format": 0, "content": "old"}'))
    else:
        assert isinstance(store, ResponseCache)
        store._path("b" * 64).parent.mkdir(parents=True, exist_ok=True)
        store._path("b" * 64).write_text('{"format": 0, "content": "old"}')
    assert store.get("b" * 64) is None


def test_postgres_names_the_missing_database_url(monkeypatch):
    monkeypatch.delenv("DAGSTER_POSTGRES_URL", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_POSTGRES_URL"):
        open_response_cache("postgres")


def test_the_paper_profiles_keep_responses_in_the_instance_database_and_tiny_in_files():
    from videorft.profile import load_profile

    assert load_profile("paper-7b", env={}).curation.response_cache == "postgres"
    assert load_profile("paper-3b", env={}).curation.response_cache == "postgres"
    assert load_profile("tiny", env={}).curation.response_cache is None
