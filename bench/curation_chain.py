"""The tiny profile's whole asset graph, cold and then re-run with a warm response cache.

    .venv/bin/python bench/curation_chain.py [--out bench/results/curation_chain.json]

Both runs go through the contract command (``python -m dagster_project materialize``) in fresh state folders
under bench/_work/. Reported: wall time of each run, expert requests sent and answered from cache (summed
from the stage assets' metadata), and whether every data version stayed the same on the warm re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("structured_video_representations", "initial_cots", "refined_cots")


def run(env: dict[str, str]) -> float:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dagster_project", "materialize"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stdout[-4000:] + out.stderr[-4000:])
    return time.perf_counter() - started


def stage_totals(home: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import dagster as dg

    totals: dict[str, Any] = {"requests_sent": 0, "cache_hits": 0, "data_versions": {}}
    with dg.DagsterInstance.from_config(home) as instance:
        for key in (*STAGES, "cot_sft_set", "rl_set"):
            records = instance.fetch_materializations(dg.AssetKey(key), limit=50).records
            latest: dict[str, Any] = {}
            for record in records:  # newest first: keep the latest per partition
                latest.setdefault(record.partition_key or "", record.asset_materialization)
            for partition, mat in latest.items():
                totals["data_versions"][f"{key}[{partition}]"] = mat.tags.get("dagster/data_version")
                if key in STAGES:
                    totals["requests_sent"] += mat.metadata["expert_requests_sent"].value
                    totals["cache_hits"] += mat.metadata["expert_cache_hits"].value
    return totals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "curation_chain.json"))
    args = parser.parse_args()
    work = ROOT / "bench" / "_work" / "curation_chain"
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "VIDEORFT_PROFILE": "tiny", "VIDEORFT_STORAGE_ROOT": str(work / "storage"),
           "DAGSTER_HOME": str(work / "dagster_home"), "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
           "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    cold = run(env)
    cold_totals = stage_totals(env["DAGSTER_HOME"])
    warm = run(env)
    warm_totals = stage_totals(env["DAGSTER_HOME"])
    result = {
        "command": "python bench/curation_chain.py",
        "profile": "tiny (60 videos, 20 images, 300 questions, 4 shards)",
        "cold": {"seconds": round(cold, 1), "requests_sent": cold_totals["requests_sent"],
                 "cache_hits": cold_totals["cache_hits"]},
        "warm": {"seconds": round(warm, 1), "requests_sent": warm_totals["requests_sent"],
                 "cache_hits": warm_totals["cache_hits"]},
        "data_versions_unchanged": cold_totals["data_versions"] == warm_totals["data_versions"],
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
