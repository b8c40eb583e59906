"""Curation shards in parallel through Dagster on this machine: sequential runs vs ``--parallel 2`` with the
multiprocess executor, in the same session, from fresh state each time.

    .venv/bin/python bench/dagster_parallel.py [--select '*cot_sft_set']

Each mode runs ``python -m dagster_project materialize --select SELECTION`` on the tiny profile (4 shards,
the simulator as the experts) in its own DAGSTER_HOME and storage root, so nothing is cached between modes.
Reported: the whole command's wall time, its ratio to the sequential mode's, and (sequential only) the span
of the shard batch read off the command's progress lines.

* ``sequential``: ``dagster.executor: in_process``, one shard run after the other (the tiny default).
* ``parallel_processes``: in_process executor, ``--parallel 2`` (two shard runs at once, each in a worker
  process of the command).
* ``parallel_multiprocess``: ``dagster.executor: multiprocess``, ``--parallel 2`` (the same, and every step of
  a run in a process of its own: Dagster's multiprocess executor).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work" / "dagster_parallel"
SHARD_RUN = re.compile(r"videorft: run (\d+)/\d+(:| ok| FAILED).*\[\d{3}\]")


def profile_file(executor: str) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "tiny" / "profile.yaml").read_text())
    raw.setdefault("dagster", {})["executor"] = executor
    raw["dagster"]["max_concurrent"] = 2
    path = WORK / f"tiny-{executor}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def run_mode(name: str, executor: str, parallel: int, select: str) -> dict[str, float]:
    state = WORK / name
    shutil.rmtree(state, ignore_errors=True)
    env = {**os.environ, "VIDEORFT_PROFILE": str(profile_file(executor)), "VIDEORFT_STORAGE_ROOT": str(state / "s"),
           "DAGSTER_HOME": str(state / "home"), "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
           "VIDEORFT_MEDIA_CACHE": str(state / "media")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dagster_project", "materialize", "--select", select,
                             "--parallel", str(parallel)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    first = last = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if SHARD_RUN.search(line):
            now = time.perf_counter() - started
            first = now if first is None else first
            last = now
    if proc.wait() != 0:
        raise SystemExit(f"{name} failed")
    # with --parallel the shard lines arrive together when the batch ends: no span to read off them
    span = round((last or 0) - (first or 0), 1) if parallel == 1 else None
    return {"seconds": round(time.perf_counter() - started, 1), "shard_batch_seconds": span}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--select", default="*cot_sft_set")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "dagster_parallel.json"))
    args = parser.parse_args()
    modes = {"sequential": ("in_process", 1), "parallel_processes": ("in_process", 2),
             "parallel_multiprocess": ("multiprocess", 2)}
    result: dict[str, object] = {"command": "python bench/dagster_parallel.py " + " ".join(sys.argv[1:]),
                                 "cores": os.cpu_count(), "modes": {}}
    for name, (executor, parallel) in modes.items():
        result["modes"][name] = run_mode(name, executor, parallel, args.select)  # type: ignore[index]
        print(name, result["modes"][name], flush=True)  # type: ignore[index]
    seq = result["modes"]["sequential"]  # type: ignore[index]
    result["speedup"] = {name: round(seq["seconds"] / m["seconds"], 2)
                         for name, m in result["modes"].items()}  # type: ignore[union-attr]
    print(json.dumps(result["speedup"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
