"""Re-copy the reference code beside this file from local mirrors of its repositories (maintenance only; the
tests read the copies, never the mirrors): the functions are taken verbatim by their syntax-tree spans.

    python tests/references/vendor.py LMMS_EVAL_REPO VIDEORFT_REPO
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
LMMS_EVAL_TAG = "v0.7.2"
TASKS = "lmms_eval/tasks"
LMMS_EVAL_PICKS = [  # (file, names, title)
    (f"{TASKS}/_task_utils/mcq_extract.py",
     ["_DEFAULT_CHOICES", "_ANSWER_PHRASES", "_FORMAT_PRIORITY", "extract_mcq_answer"], ""),
    (f"{TASKS}/vsibench/utils.py",
     ["MCA_QUESTION_TYPES", "NA_QUESTION_TYPES", "METRICS_FOR_MCA", "METRICS_FOR_NA", "fuzzy_matching", "exact_match",
      "abs_dist_norm", "mean_relative_accuracy", "WORST_CASE_FOR_METRICS", "to_float", "vsibench_process_results"], ""),
    (f"{TASKS}/videomme/utils.py", ["extract_characters_regex", "videomme_process_results"],
     " (extract_characters_regex imports extract_mcq_answer above)"),
    (f"{TASKS}/mvbench/utils.py", ["mcq_acc", "mvbench_process_results"], ""),
    (f"{TASKS}/mmvu/utils.py", ["normalize_math_notation", "evaluate_with_rule_based"], ""),
    (f"{TASKS}/_task_utils/mmmu_mcq_utils.py", ["get_multi_choice_info"], ""),
    (f"{TASKS}/videommmu/utils.py",
     ["eval_multi_choice", "eval_open", "evaluate_videommmu", "parse_multi_choice_response", "extract_numbers",
      "check_is_number", "normalize_str", "parse_open_response"],
     " (parse_multi_choice_response imports extract_mcq_answer above)"),
    (f"{TASKS}/tempcompass/utils.py", ["tempcompass_process_results_multi_choice"], ""),
]
LOCAL_IMPORT = "    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer\n\n"
LMMS_EVAL_HEADER = '''"""lmms-eval v0.7.2 (commit {commit}), the per-sample scoring functions of the six
benchmarks' tasks, copied verbatim by ``tests/references/vendor.py`` (only module-level imports and the
statements that read dataset caches at import time are left out) so that ``tests/test_protocols.py`` can run the
reference itself. The GPT judges they call are replaced by ``get_eval_result`` below, which fails as an
unreachable judge does.

MIT License. Copyright (c) 2025 LMMs-Lab (https://github.com/EvolvingLMMs-Lab/lmms-eval/blob/v0.7.2/LICENSE).
"""
# ruff: noqa
# fmt: off
import re
import string
from typing import Any, Dict, List, Optional

import numpy as np
from functools import partial


def get_eval_result(prompt, maxtry=10, sys_prompt=None):
    """Stand-in for tempcompass.utils.get_eval_result with no reachable judge: every try fails, rating 0."""
    return None, 0


'''
VIDEORFT_HEADER = '''"""VideoRFT's evaluation script, ``src/eval_bench.py`` (commit {commit}): its answer extraction and
``reward_fn``, copied verbatim by ``tests/references/vendor.py`` (they are nested in the script's main function
there) so that ``tests/test_protocols.py`` can run the reference itself.

Apache License 2.0 (https://github.com/QiWang98/VideoRFT/blob/main/LICENSE).
"""
# ruff: noqa
# fmt: off
import re

import torch


'''


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.FunctionDef):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def pick(text: str, names: list[str], anywhere: bool = False) -> str:
    """The source of each top-level (or, with ``anywhere``, nested) definition in ``names``, in file order."""
    tree = ast.parse(text)
    nodes = [n for n in (ast.walk(tree) if anywhere else tree.body) if _name(n) in names]
    missing = set(names) - {_name(n) for n in nodes}
    if missing:
        raise SystemExit(f"not found: {sorted(missing)}")
    return "\n\n\n".join(textwrap.dedent(ast.get_source_segment(text, n) or "") for n in nodes)


def main(lmms_eval: str, videorft: str) -> None:
    parts = []
    for path, names, note in LMMS_EVAL_PICKS:
        code = pick(_git(lmms_eval, "show", f"{LMMS_EVAL_TAG}:{path}"), names).replace(LOCAL_IMPORT, "")
        title = f"# ---- {path.removeprefix('lmms_eval/')}{note} "
        parts.append(title + "-" * max(0, 120 - len(title)) + "\n\n" + code)
    commit = _git(lmms_eval, "rev-list", "-n", "1", LMMS_EVAL_TAG).strip()
    (HERE / "lmms_eval_v0_7_2.py").write_text(LMMS_EVAL_HEADER.format(commit=commit) + "\n\n\n".join(parts) + "\n")
    script = _git(videorft, "show", "HEAD:src/eval_bench.py")
    code = pick(script, ["extract_answer", "normalize_number", "mean_relative_accuracy", "reward_fn"], anywhere=True)
    commit = _git(videorft, "rev-parse", "HEAD").strip()
    (HERE / "videorft_eval_bench.py").write_text(VIDEORFT_HEADER.format(commit=commit) + code + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
