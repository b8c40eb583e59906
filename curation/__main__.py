"""Command line of the curation library (no Dagster needed): build the synthetic world, ingest QA sources.

    python -m curation world --out DIR [--videos 60 --images 20 --questions 300 --seed 0]
    python -m curation ingest --source URI [--source URI ...] [--media-root URI] --out DIR [--shards 4]
"""

from __future__ import annotations

import argparse
import json
import sys

from curation.ingest import IngestError, QASource, ingest, write_pool
from curation.synthetic.world import build_world
from videorft.profile import WorldConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curation", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    world = sub.add_parser("world", help="build the synthetic video-QA world")
    world.add_argument("--out", required=True)
    for name, default in (("videos", 60), ("images", 20), ("questions", 300), ("seed", 0)):
        world.add_argument(f"--{name}", type=int, default=default)
    world.add_argument("--force", action="store_true", help="render again even if an identical world exists")
    pool = sub.add_parser("ingest", help="validate, de-duplicate and shard QA files into a pool")
    pool.add_argument("--source", action="append", required=True, help="JSON/JSONL QA file (local or s3://)")
    pool.add_argument("--media-root", default=None, help="resolve relative media paths here instead")
    pool.add_argument("--out", required=True)
    pool.add_argument("--shards", type=int, default=4)
    pool.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)

    if args.command == "world":
        cfg = WorldConfig(videos=args.videos, images=args.images, questions=args.questions, seed=args.seed)
        manifest = build_world(cfg, args.out, force=args.force,
                               progress=lambda n, t: print(f"rendered {n}/{t}", file=sys.stderr) if n == t else None)
        print(json.dumps(manifest.to_dict(), indent=1))
        return 0
    sources = [QASource(f"source{i}", uri, args.media_root) for i, uri in enumerate(args.source)]
    try:
        result = ingest(sources, args.shards, args.workers, log=lambda m: print(m, file=sys.stderr))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(write_pool(result, args.out, args.shards), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
