"""The tiny model can learn from the video: a held-out result that a broken vision path (video not reaching
the loss forward, frames misaligned with rows, a processor resizing them away) would send back to chance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sft_teaches_the_tiny_model_to_read_the_background_colour_of_held_out_videos(isolated_env, tmp_path):
    out = subprocess.run([sys.executable, "bench/tiny_learning_probe.py", "--only", "short", "--work",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)["results"]["short"]
    # 60 held-out questions, 4 options in one order (a letter habit scores 25%): 30 right is far outside what
    # guessing gives (p < 1e-4), and the answers must not all be one letter
    right = round(result["held_out_accuracy"] * 60)
    assert right >= 30, result
    assert len(result["answers"]) >= 3, result
