"""lm-eval task files, generated from the benchmark registry (``evaluation.benchmarks.BENCHMARKS``).

Each benchmark gets ``evaluation/tasks/videorft_<name>.yaml``; they differ only in the benchmark's name, which
the task passes to the shared hooks in ``tasks/utils.py`` as metadata. The files are committed so that lm-eval
users can read them; ``python -m evaluation.task_files`` rewrites them after a benchmark is added, and
``--check`` (run by the tests) fails when they no longer match the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.benchmarks import BENCHMARKS

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
PREFIX = "videorft_"
TEMPLATE = """\
# {name} for lm-eval, loaded with TaskManager(include_path="evaluation/tasks"); data from task metadata.
# Generated from evaluation/benchmarks.py by `python -m evaluation.task_files`: edit the template, not this file.
task: {prefix}{name}
tag: videorft
custom_dataset: !function utils.load_benchmark
test_split: test
output_type: generate_until
doc_to_text: !function utils.doc_to_text
doc_to_image: !function utils.doc_to_visual
doc_to_target: !function utils.doc_to_target
process_results: !function utils.process_results
generation_kwargs:
  until: []            # no stop string: reasoning has blank lines
  max_gen_toks: 1024
  do_sample: false     # greedy (see evaluation/lm.py on top_p=0.001)
metric_list:
  - metric: videorft
    aggregation: !function utils.aggregate_videorft
    higher_is_better: true
  - metric: official
    aggregation: !function utils.aggregate_official
    higher_is_better: true
  - metric: failed
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1
  benchmark: {name}
"""


def render(name: str) -> str:
    return TEMPLATE.format(name=name, prefix=PREFIX)


def differences(folder: Path = TASKS_DIR) -> list[str]:
    """What differs between ``folder`` and the registry: stale, missing and unregistered task files."""
    problems = []
    for name in BENCHMARKS:
        path = folder / f"{PREFIX}{name}.yaml"
        if not path.exists():
            problems.append(f"{path.name}: missing")
        elif path.read_text(encoding="utf-8") != render(name):
            problems.append(f"{path.name}: stale")
    for path in sorted(folder.glob(f"{PREFIX}*.yaml")):
        if path.stem.removeprefix(PREFIX) not in BENCHMARKS:
            problems.append(f"{path.name}: no such benchmark in the registry")
    return problems


def write(folder: Path = TASKS_DIR) -> list[Path]:
    """(Re)write every registered benchmark's task file and remove the unregistered ones."""
    written = []
    for name in BENCHMARKS:
        path = folder / f"{PREFIX}{name}.yaml"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    for path in folder.glob(f"{PREFIX}*.yaml"):
        if path.stem.removeprefix(PREFIX) not in BENCHMARKS:
            path.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.task_files", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files differ from the registry")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
