"""The curation chain at 3K and 30K questions: each stage's wall time and peak memory, and how cost grows.

    .venv/bin/python bench/curation_scale.py [--sizes 3000,30000] [--rows-per-shard 500]

One synthetic world is rendered once (300 videos, 100 images, 3,000 questions; under bench/_work/). A size of
N questions is N / 3,000 copies of that pool: copy c of a medium is its file with c bytes appended (a new
content hash, so a new medium to describe, decoded as the original), with the same questions. So every size
has the same questions per medium (7.5, media shared as in the real pools), and 30K questions are 4,000 media.
Shards: N / ``--rows-per-shard`` (the paper profiles' ratio: 256 shards for 310K rows is ~1,200 a shard).

Each size runs in its own process against the expert simulator in another process (``python -m
synthetic.simulator``, zero latency, the tiny profile's error rates): ingest, then per shard (as the Dagster
assets run them) describe -> reason -> refine, then the filter (CLIP text similarity) and the writes of the
two datasets. Reported per stage: wall seconds and the process's peak RSS during the stage (sampled every
0.1 s); the fitted exponent of cost against size, log(t_30K / t_3K) / log(10), is 1.0 for linear growth.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / "_work" / "curation_scale"
BASE_QUESTIONS = 3000


class PeakRss:
    """The process's RSS sampled every 0.1 s; ``stage()`` returns the peak since the last call."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._peak = 0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(0.1)

    def stage(self) -> float:
        peak = max(self._peak, self._proc.memory_info().rss)
        self._peak = 0
        return round(peak / 2**20, 1)


def world() -> Path:
    from synthetic.world import build_world
    from videorft.profile import WorldConfig

    root = WORK / "world"
    build_world(WorldConfig(seed=11, videos=300, images=100, questions=BASE_QUESTIONS), str(root))
    return root


def pool_files(base: Path, size: int) -> Path:
    """QA rows for ``size`` questions: copies of the world's media with the same questions."""
    copies = size // BASE_QUESTIONS
    out = WORK / f"pool-{size}"
    qa = out / "qa.jsonl"
    if qa.exists():
        return qa
    out.mkdir(parents=True, exist_ok=True)
    rows = json.loads((base / "qa_videos.json").read_text())
    rows += [json.loads(x) for x in (base / "qa_images.jsonl").read_text().splitlines() if x.strip()]
    with qa.open("w") as fh:
        for c in range(copies):
            for row in rows:
                source = base / row["path"]
                target = out / "media" / f"c{c}" / row["path"]
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    if c:
                        with target.open("ab") as media:
                            media.write(b"\0" * c)  # trailing bytes: a new content hash, the same pictures
                fh.write(json.dumps({**row, "path": str(target), "problem_id": f"{c}-{row['problem_id']}"}) + "\n")
    return qa


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_size(size: int, rows_per_shard: int, base: Path) -> dict[str, Any]:
    from curation import cot
    from curation.clip_filter import text_similarity
    from curation.experts import build_client
    from curation.ingest import QASource, ingest, write_pool
    from curation.prompts import load_prompt
    from curation.stages import STAGES
    from videorft.profile import load_profile
    from videorft.storage import write_parquet

    qa = pool_files(base, size)
    out = WORK / f"run-{size}"
    shutil.rmtree(out, ignore_errors=True)
    shards = max(1, size // rows_per_shard)
    prof = load_profile("tiny")
    port = _free_port()
    sim = subprocess.Popen([sys.executable, "-m", "synthetic.simulator", "--port", str(port), "--world", str(base),
                            "--latency-ms", "0", "--jitter-ms", "0"], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    rss = PeakRss()
    stages: dict[str, dict[str, float]] = {}

    def record(name: str, started: float) -> None:
        entry = stages.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
        entry["seconds"] = round(entry["seconds"] + time.perf_counter() - started, 2)
        entry["peak_rss_mb"] = max(entry["peak_rss_mb"], rss.stage())

    try:
        for _ in range(300):  # the simulator indexes the world's frames before it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/v1"
        t0 = time.perf_counter()
        rss.stage()
        result = ingest([QASource("bench", str(qa))], shards=shards, probe_workers=2)
        manifest = write_pool(result, str(out / "pool"), shards)
        pool = result.pool
        record("ingest", t0)
        folder = prof.curation.resolved_prompts_dir()
        prompts = {stage.prompt: load_prompt(stage.prompt, folder) for stage in STAGES.values()}
        c = prof.curation
        cache = str(out / "expert_cache")

        def client(role: str) -> Any:
            return build_client(role, prof.expert(role), cache, media_cache=str(out / "media_cache"),
                                simulator_url=url)

        import pandas as pd

        shard_tables: dict[str, list[Any]] = {name: [] for name in STAGES}
        for shard in range(shards):
            part = pool[pool["shard"] == shard].reset_index(drop=True)
            tables: dict[str, Any] = {}
            for stage in STAGES.values():  # the stage table's order is the chain's
                t0 = time.perf_counter()
                tables[stage.name] = cot.run(stage.run(stage.inputs(part, tables, prompts, client(stage.role), prof)))
                write_parquet(tables[stage.name], out / stage.name / f"{shard}.parquet")
                record(stage.name, t0)
                shard_tables[stage.name].append(tables[stage.name])
        reps_all, initial_all, refined_all = (shard_tables[n] for n in ("structured_video_representations",
                                                                          "initial_cots", "refined_cots"))

        t0 = time.perf_counter()
        kept, dropped = cot.filter_cots(pool, pd.concat(reps_all), pd.concat(initial_all), pd.concat(refined_all),
                                        c.filter, lambda a, b: text_similarity(a, b, c.filter.clip_model,
                                                                                c.filter.clip_pretrained))
        write_parquet(kept, out / "cot_sft_set.parquet")
        write_parquet(cot.rl_rows(pool), out / "rl_set.parquet")
        record("cot_sft_set_and_rl_set", t0)
    finally:
        sim.terminate()
        sim.wait()
    return {"questions": len(pool), "media": int(pool["media_sha256"].nunique()), "shards": shards,
            "kept": len(kept), "dropped": len(dropped), "pool_version": manifest["content_hash"],
            "stages": stages, "seconds": round(sum(s["seconds"] for s in stages.values()), 1),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3000,30000")
    parser.add_argument("--rows-per-shard", type=int, default=500)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "curation_scale.json"))
    args = parser.parse_args()
    base = world()
    if args.one is not None:
        print(json.dumps(run_size(args.one, args.rows_per_shard, base)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"command": "python bench/curation_scale.py " + " ".join(sys.argv[1:]), "sizes": {}}
    for size in sizes:
        child = subprocess.run([sys.executable, __file__, "--one", str(size), "--rows-per-shard",
                                str(args.rows_per_shard)], cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "VIDEORFT_PROFILE": "tiny"})
        if child.returncode != 0:
            raise SystemExit(child.stderr[-4000:])
        results["sizes"][str(size)] = json.loads(child.stdout.strip().splitlines()[-1])
        print(size, json.dumps(results["sizes"][str(size)]), flush=True)
    if len(sizes) >= 2:
        lo, hi = results["sizes"][str(sizes[0])], results["sizes"][str(sizes[-1])]
        ratio = math.log(sizes[-1] / sizes[0])
        results["exponent"] = {stage: round(math.log(hi["stages"][stage]["seconds"] /
                                                     max(lo["stages"][stage]["seconds"], 1e-9)) / ratio, 3)
                               for stage in lo["stages"]}
        results["exponent"]["total"] = round(math.log(hi["seconds"] / lo["seconds"]) / ratio, 3)
        print(json.dumps(results["exponent"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
