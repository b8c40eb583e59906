"""Command line of the curation library (no Dagster needed): build the synthetic world, ingest QA sources.

    python -m curation world --out DIR [--videos 60 --images 20 --questions 300 --seed 0]
    python -m curation ingest --source URI [--source URI ...] [--media-root URI] --out DIR [--shards 4]
    python -m curation curate --pool DIR/manifest.json --out DIR [--profile NAME] [--shard K ...]

``curate`` runs the expert chain and the filter on a pool without Dagster: experts from the profile and the
``VIDEORFT_<ROLE>_*`` variables (the simulator when a role has no URL and the profile enables it), the
response cache under ``--out`` (or ``--cache``), so an interrupted run resumes without repeating a call.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from curation.ingest import IngestError, QASource, ingest, write_pool
from videorft.profile import WorldConfig
from videorft.storage import as_path


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
    cur = sub.add_parser("curate", help="structured representations -> CoTs -> refined CoTs -> SFT and RL sets")
    cur.add_argument("--pool", required=True, help="manifest.json written by 'ingest'")
    cur.add_argument("--out", required=True)
    cur.add_argument("--profile", default=None, help="profile name or YAML (default $VIDEORFT_PROFILE or tiny)")
    cur.add_argument("--shard", type=int, action="append", default=None, help="only these shards (repeatable)")
    cur.add_argument("--cache", default=None, help="response cache: a folder, sqlite:///path or postgresql://... "
                     "(default OUT/expert_cache)")
    cur.add_argument("--world", default=None, help="synthetic world folder for the simulator")
    args = parser.parse_args(argv)
    if args.command == "curate":
        return curate(args)

    if args.command == "world":
        from synthetic.world import build_world  # the embedded default's world: only this command needs it

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
    manifest = write_pool(result, args.out, args.shards)
    (as_path(args.out) / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest, indent=1))
    return 0


def curate(args: argparse.Namespace) -> int:
    from curation import cot
    from curation.clip_filter import text_similarity
    from curation.experts import ExpertClient, ExpertConfigError, build_client
    from curation.ingest import read_pool
    from curation.prompts import load_prompt
    from curation.stages import STAGES
    from videorft.profile import ProfileError, load_profile
    from videorft.storage import write_parquet

    try:
        prof = load_profile(args.profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = json.loads(as_path(args.pool).read_text())
    shards = args.shard if args.shard is not None else list(range(int(manifest["shards"])))
    pool = read_pool(manifest)
    pool = pool[pool["shard"].isin(shards)].reset_index(drop=True)
    out = as_path(args.out)
    cache_root = args.cache or str(out / "expert_cache")
    simulator = None
    folder = prof.curation.resolved_prompts_dir()
    prompts = {stage.prompt: load_prompt(stage.prompt, folder) for stage in STAGES.values()}

    def simulator_url() -> str:
        nonlocal simulator
        if simulator is None:  # the embedded default's stand-in for the endpoints, started on first use
            from synthetic.simulator.server import start_simulator

            simulator = start_simulator(prof.curation.simulator, args.world)
        return simulator.base_url

    def client(role: str) -> ExpertClient:
        use_simulator = prof.curation.simulator.enabled and args.world
        return build_client(role, prof.expert(role), cache_root, media_cache=prof.media_cache_dir(),
                            simulator_url=simulator_url if use_simulator else None)

    def progress(done: str) -> Any:
        return lambda n, t: print(f"{done}: {n}/{t}", file=sys.stderr) if n == t else None

    tables: dict[str, Any] = {}
    try:
        for stage in STAGES.values():  # the table's order is the chain's
            tables[stage.name] = cot.run(stage.run(stage.inputs(pool, tables, prompts, client(stage.role), prof,
                                                                progress(stage.done))))
    except ExpertConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if simulator is not None:
            simulator.stop()
    c = prof.curation
    reps, initial, refined = (tables[n] for n in ("structured_video_representations", "initial_cots",
                                                  "refined_cots"))
    kept, dropped = cot.filter_cots(pool, reps, initial, refined, c.filter,
                                    lambda a, b: text_similarity(a, b, c.filter.clip_model, c.filter.clip_pretrained))
    for name, table in (*tables.items(), ("cot_sft_set", kept), ("dropped", dropped),
                        ("rl_set", cot.rl_rows(pool))):
        write_parquet(table, out / f"{name}.parquet")
    (out / "cot_sft_set.jsonl").write_text(kept.to_json(orient="records", lines=True, force_ascii=False))
    print(json.dumps({"pool": len(pool), "kept": len(kept), "dropped": len(dropped), "out": str(out),
                      "dropped_by_stage": dropped["stage"].value_counts().to_dict()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
