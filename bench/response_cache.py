"""The expert response cache at the paper's scale: get/put latency with 1M responses stored, per store.

    .venv/bin/python bench/response_cache.py [--entries 1000000] [--record-bytes 1500] [--ops 2000]
        [--stores files,sqlite,postgres,s3]

Each store is filled to ``--entries`` responses of about ``--record-bytes`` bytes of JSON (a CoT-sized reply),
then measured with ``--ops`` operations of each kind in random key order: ``get`` of a stored key (a resumed
run), ``get`` of a missing key (every new request asks first), ``put`` of a new response. Latencies are per
call through the store's public ``get`` / ``put`` (``curation.response_store``), reported as median and p99
microseconds; the fill rate is what writing the 1M responses cost.

* ``files``: one JSON file per response (``ResponseCache`` on a local folder; filled through ``put``).
* ``sqlite``: ``SqliteResponseCache`` (one WAL database file; filled in one transaction, then measured
  through ``get`` / ``put``, a commit per put).
* ``postgres``: ``PostgresResponseCache`` on the PostgreSQL at 127.0.0.1:5432 (filled with ``COPY``).
* ``s3``: ``ResponseCache`` on ``s3://`` against moto's server in this process (objects inserted into moto's
  backend directly to reach 1M in minutes; every measured call goes over HTTP through s3fs). moto answers
  from memory on localhost: real S3 adds tens of milliseconds per request.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _record(i: int, size: int) -> dict[str, Any]:
    text = (f"response {i}: " + "the red circle moves left while the square turns blue. " * (size // 55))[:size]
    return {"model": "reasoner", "content": text, "usage": {"prompt_tokens": 900, "completion_tokens": 400}}


def _key(i: int) -> str:
    return uuid.UUID(int=random.Random(i).getrandbits(128)).hex + uuid.UUID(int=i).hex  # request_key-like: 64 hex


def _measure(store: Any, entries: int, ops: int, size: int) -> dict[str, Any]:
    rng = random.Random(7)
    hits = [_key(rng.randrange(entries)) for _ in range(ops)]
    misses = [_key(entries + 10_000_000 + i) for i in range(ops)]
    news = [(_key(entries + i), _record(entries + i, size)) for i in range(ops)]

    def timed(fn: Any, items: list[Any]) -> list[float]:
        out = []
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - t0) * 1e6)
        return out

    got = timed(store.get, hits)
    assert store.get(hits[0]) is not None, "a stored key must be found"
    missed = timed(store.get, misses)
    put = timed(lambda kv: store.put(*kv), news)

    def summary(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        return {"median_us": round(statistics.median(values), 1), "p99_us": round(values[int(len(values) * 0.99)], 1),
                "ops_per_second": round(1e6 / statistics.mean(values), 1)}

    return {"get_hit": summary(got), "get_miss": summary(missed), "put": summary(put)}


def fill_files(root: Path, entries: int, size: int) -> Any:
    from curation.response_store import ResponseCache

    store = ResponseCache(str(root))
    for i in range(entries):
        store.put(_key(i), _record(i, size))
    return store


def fill_sqlite(path: Path, entries: int, size: int) -> Any:
    from curation.response_store import TABLE, SqliteResponseCache, encode_record

    store = SqliteResponseCache(str(path))
    db = store._db
    db.execute("BEGIN")
    db.executemany(f"INSERT OR REPLACE INTO {TABLE} (key, record) VALUES (?, ?)",
                   ((_key(i), encode_record(_record(i, size))) for i in range(entries)))
    db.execute("COMMIT")
    return store


def fill_postgres(url: str, entries: int, size: int) -> Any:
    from curation.response_store import TABLE, PostgresResponseCache, encode_record

    store = PostgresResponseCache(url)
    with store._db.cursor() as cur:
        cur.execute(f"TRUNCATE {TABLE}")
        batch = 100_000
        for start in range(0, entries, batch):
            buf = io.StringIO()
            for i in range(start, min(entries, start + batch)):
                text = encode_record(_record(i, size)).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                buf.write(f"{_key(i)}\t{text}\n")
            buf.seek(0)
            cur.copy_expert(f"COPY {TABLE} (key, record) FROM STDIN", buf)
        cur.execute(f"ANALYZE {TABLE}")
    return store


def fill_s3(entries: int, size: int) -> tuple[Any, Any]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "FSSPEC_S3_ENDPOINT_URL": endpoint})
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket="bench")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    from curation.response_store import ResponseCache, encode_record

    store = ResponseCache("s3://bench/expert_cache")
    for i in range(entries):
        key = _key(i)
        backend.put_object("bench", f"expert_cache/{key[:2]}/{key}.json", encode_record(_record(i, size)).encode())
    return store, server


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--record-bytes", type=int, default=1500)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--stores", default="files,sqlite,postgres,s3")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "response_cache.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="response-cache-bench-", dir=os.environ.get("BENCH_DIR")))
    results: dict[str, Any] = {"command": "python bench/response_cache.py " + " ".join(sys.argv[1:]),
                               "entries": args.entries, "record_bytes": args.record_bytes, "ops": args.ops,
                               "stores": {}}
    for name in args.stores.split(","):
        started = time.perf_counter()
        server = None
        if name == "files":
            store = fill_files(work / "files", args.entries, args.record_bytes)
        elif name == "sqlite":
            store = fill_sqlite(work / "cache.db", args.entries, args.record_bytes)
        elif name == "postgres":
            store = fill_postgres(args.postgres, args.entries, args.record_bytes)
        elif name == "s3":
            store, server = fill_s3(args.entries, args.record_bytes)
        else:
            raise SystemExit(f"unknown store {name}")
        fill = time.perf_counter() - started
        measured = _measure(store, args.entries, args.ops, args.record_bytes)
        entry: dict[str, Any] = {"fill_seconds": round(fill, 1), "fill_per_second": round(args.entries / fill, 1),
                                 **measured, "peak_rss_mb": round(_rss_mb(), 1)}
        if name == "files":
            entry["disk_mb"] = round(sum(p.stat().st_blocks * 512 for p in (work / "files").rglob("*")) / 2**20, 1)
        if name == "sqlite":
            entry["disk_mb"] = round(sum(p.stat().st_size for p in work.glob("cache.db*")) / 2**20, 1)
        if name == "postgres":
            from curation.response_store import TABLE

            with store._db.cursor() as cur:
                cur.execute(f"SELECT pg_total_relation_size('{TABLE}')")
                entry["disk_mb"] = round(cur.fetchone()[0] / 2**20, 1)
                cur.execute(f"DROP TABLE {TABLE}")
        if server is not None:
            server.stop()
        results["stores"][name] = entry
        print(name, json.dumps(entry), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
