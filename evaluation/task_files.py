"""lm-eval task files, generated from the benchmark registry (``evaluation.benchmarks.BENCHMARKS``).

Each benchmark gets two tasks, one per answer mode (``ANSWER_MODES``): ``videorft_<name>.yaml`` generates the
reply (every model, every question); ``videorft_<name>_choice.yaml`` is lm-eval's ``multiple_choice`` over the
multiple-choice questions: the option whose text is the likeliest whole reply is the model's answer, the way a
base model is scored when whether it writes a letter is not the question. Files differ only in the benchmark's
name, which the task passes to the shared hooks in ``tasks/utils.py`` as metadata. The files are committed so that
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
  - metric: lenient
    aggregation: !function utils.aggregate_lenient
    higher_is_better: true
  - metric: failed
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1
  benchmark: {name}
"""
CHOICE_TEMPLATE = """\
# {name} for lm-eval, answer mode "choice": the likeliest option text (multiple-choice questions only).
# Generated from evaluation/benchmarks.py by `python -m evaluation.task_files`: edit the template, not this file.
task: {prefix}{name}_choice
tag: videorft_choice
custom_dataset: !function utils.load_multiple_choice
test_split: test
output_type: multiple_choice
doc_to_text: !function utils.doc_to_text
doc_to_image: !function utils.doc_to_visual
doc_to_choice: !function utils.doc_to_choice
doc_to_target: !function utils.doc_to_choice_target
target_delimiter: ""   # the option text is the whole reply (the model class adds the chat turns)
process_results: !function utils.process_choice_results
metric_list:
  - metric: videorft
    aggregation: !function utils.aggregate_videorft
    higher_is_better: true
  - metric: official
    aggregation: !function utils.aggregate_official
    higher_is_better: true
  - metric: lenient
    aggregation: !function utils.aggregate_lenient
    higher_is_better: true
  - metric: failed
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1
  benchmark: {name}
"""
VIDEO_CONTROLS = ("none", "blank")  # the frames a run shows: its own, or blank ones of the same size (a control)
ANSWER_MODES = {"generate": ("", TEMPLATE), "choice": ("_choice", CHOICE_TEMPLATE)}


def task_name(benchmark: str, answer_mode: str = "generate") -> str:
    if answer_mode not in ANSWER_MODES:
        raise ValueError(f"answer_mode {answer_mode!r}: expected one of {sorted(ANSWER_MODES)}")
    return f"{PREFIX}{benchmark}{ANSWER_MODES[answer_mode][0]}"


def render(name: str, answer_mode: str = "generate") -> str:
    return ANSWER_MODES[answer_mode][1].format(name=name, prefix=PREFIX)


def rendered() -> dict[str, str]:
    """Every task file the registry asks for: ``{file name: content}``."""
    return {f"{task_name(name, mode)}.yaml": render(name, mode) for name in BENCHMARKS for mode in ANSWER_MODES}


def differences(folder: Path = TASKS_DIR) -> list[str]:
    """What differs between ``folder`` and the registry: stale, missing and unregistered task files."""
    expected = rendered()
    problems = []
    for file_name, content in expected.items():
        path = folder / file_name
        if not path.exists():
            problems.append(f"{file_name}: missing")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{file_name}: stale")
    for path in sorted(folder.glob(f"{PREFIX}*.yaml")):
        if path.name not in expected:
            problems.append(f"{path.name}: no such benchmark in the registry")
    return problems


def write(folder: Path = TASKS_DIR) -> list[Path]:
    """(Re)write every registered benchmark's task files and remove the unregistered ones."""
    expected = rendered()
    for path in folder.glob(f"{PREFIX}*.yaml"):
        if path.name not in expected:
            path.unlink()
    written = []
    for file_name, content in expected.items():
        (folder / file_name).write_text(content, encoding="utf-8")
        written.append(folder / file_name)
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
