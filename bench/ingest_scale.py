"""Ingest at scale: 10K, 100K and 310K QA rows over a pool of real synthetic videos.

Each size runs in its own process (fresh probe cache, so each distinct video is probed exactly once) and
reports wall time of ingest + writing the sharded pool, and peak RSS. Target on 2 cores: 310K rows under
60 s and under 3 GB.

    .venv/bin/python bench/ingest_scale.py [--sizes 10000,100000,310000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORK = Path(__file__).resolve().parent / "_work"
RESULTS = Path(__file__).resolve().parent / "results"


def make_qa_file(world: Path, n: int) -> Path:
    path = world / f"qa_{n}.jsonl"
    if path.exists():
        return path
    rows = json.loads((world / "qa_videos.json").read_text())
    rows += [json.loads(x) for x in (world / "qa_images.jsonl").read_text().splitlines()]
    with path.open("w") as fh:
        for i in range(n):
            row = dict(rows[i % len(rows)])
            row["problem_id"] = i
            row["problem"] = f"{row['problem']} (variant {i // len(rows)})"
            fh.write(json.dumps(row) + "\n")
    return path


def run_one(qa: Path, shards: int) -> dict:
    from curation.ingest import QASource, ingest, write_pool

    start = time.perf_counter()
    result = ingest([QASource("bench", str(qa))], shards=shards, probe_workers=2)
    ingested = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_pool(result, tmp, shards)
    total = time.perf_counter() - start
    return {
        "rows_in": result.rows_in, "kept": manifest["row_count"], "quarantined": manifest["quarantined_rows"],
        "duplicates": manifest["duplicate_rows"], "distinct_media": len(result.media),
        "media_probed": result.media.attrs["probed"], "ingest_s": round(ingested, 2), "total_s": round(total, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,310000")
    parser.add_argument("--shards", type=int, default=256)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one), args.shards)))
        return

    from synthetic.world import build_world
    from videorft.profile import WorldConfig

    world = WORK / "world"
    manifest = build_world(WorldConfig(), str(world))
    print(f"pool of media: {manifest.videos} videos + {manifest.images} images (tiny world)")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        qa = make_qa_file(world, n)
        out = subprocess.run([sys.executable, __file__, "--one", str(qa), "--shards", str(args.shards)],
                             capture_output=True, text=True, check=True)
        row = {"rows": n, **json.loads(out.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(f"{n:>7} rows: {row['total_s']:6.2f} s (ingest {row['ingest_s']:.2f} s), "
              f"peak {row['peak_rss_mb']:.0f} MB, "
              f"{row['media_probed']} media probed for {row['distinct_media']} distinct, kept {row['kept']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_scale.json").write_text(json.dumps({
        "command": f"python bench/ingest_scale.py --sizes {args.sizes} --shards {args.shards}",
        "machine": platform.machine(), "cpus": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
