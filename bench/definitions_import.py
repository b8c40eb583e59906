"""What a Dagster process pays to load our definitions: every run worker, the code server, each ``--parallel``
worker and each step of the multiprocess executor imports ``dagster_project.definitions`` first.

Run: ``.venv/bin/python bench/definitions_import.py [--repeat 5]``. Each repeat is a fresh interpreter; it
prints the median wall time of the import, the same for ``dagster`` alone (the floor), and which heavy libraries
the import pulled in (none of torch, transformers, trl, matplotlib.pyplot should be: they load in the steps that
use them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "trl", "matplotlib.pyplot", "deepspeed", "mlflow", "open_clip", "pandas")
PROBE = ("import sys, time; t = time.perf_counter(); import {module}; dt = time.perf_counter() - t; "
         "print(dt); print(','.join(m for m in {heavy!r} if m in sys.modules))")


def measure(module: str, repeat: int) -> dict[str, object]:
    times, loaded = [], ""
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        seconds, loaded = out.stdout.split("\n")[:2]
        times.append(float(seconds))
    return {"median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
            "heavy_modules_loaded": loaded.split(",") if loaded else []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps({"dagster_project.definitions": measure("dagster_project.definitions", args.repeat),
                      "dagster": measure("dagster", args.repeat)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
