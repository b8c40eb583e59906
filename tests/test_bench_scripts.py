"""The benchmark scripts that only a GPU session runs for real still run here, end to end, at tiny sizes: a
device session should spend its minutes measuring, not debugging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_figures_script_measures_sft_and_grpo_steps_at_tiny_sizes_on_cpu(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_figures.py"), "--arch", "tiny", "--steps", "1",
                           "--frames", "4", "--completion", "8", "--group", "2", "--siglip", "", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and min(figures["parameters"].values()) > 0
    sft, grpo = figures["sft"], figures["grpo"]
    assert sft["tokens_per_step"] > sft["vision_patches_per_step"] / 4 > 0  # the video's merged tokens are in it
    assert sft["step_seconds"] > 0 and 0 < sft["mfu"] < 1 and sft["peak_memory_gib"] > 0
    assert grpo["completion_tokens"] == 8 and grpo["group"] == 2
    assert grpo["seconds"]["step"] >= grpo["seconds"]["generate"] > 0 and 0 < grpo["mfu_step"] < 1


def test_the_option_text_rewrite_names_the_option_where_the_cot_named_its_letter():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "experiments" / "sft_on_base" / "option_text_cots.py"
    spec = importlib.util.spec_from_file_location("option_text_cots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = {"problem_type": "multiple choice", "options": ["A. blue", "B. dark red", "C. white"],
           "process": "<think>The evidence points to option C (white). Checking again: option B (dark red). "
                      "So the answer is B.</think>", "solution": "<answer>B</answer>"}
    out = module.rewrite(row)
    assert out["solution"] == "<answer>dark red</answer>"
    assert out["process"] == ("<think>The evidence points to white. Checking again: dark red. "
                              "So the answer is dark red.</think>")
    numeric = {"problem_type": "numerical", "options": [], "process": "<think>3</think>",
               "solution": "<answer>3</answer>"}
    assert module.rewrite(numeric) == numeric
