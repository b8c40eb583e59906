"""Stage-library command lines (no Dagster) and the CPU torchvision work-around."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_curation_cli_builds_a_world_and_ingests_it(tmp_path):
    world = tmp_path / "w"
    out = subprocess.run([sys.executable, "-m", "curation", "world", "--out", str(world), "--videos", "3",
                          "--images", "2", "--questions", "20"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["questions"] == 20
    out = subprocess.run([sys.executable, "-m", "curation", "ingest", "--source", str(world / "qa_videos.json"),
                          "--source", str(world / "qa_images.jsonl"), "--out", str(tmp_path / "pool"), "--shards", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(out.stdout)
    assert manifest["rows_in"] == manifest["row_count"] + manifest["quarantined_rows"] + manifest["duplicate_rows"]
    assert manifest["rows_in"] == 20
    missing = subprocess.run([sys.executable, "-m", "curation", "ingest", "--source", str(tmp_path / "nope.json"),
                              "--out", str(tmp_path / "p2")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_torchvision_users_import_on_cpu_torch_after_the_work_around():
    code = ("from videorft.compat import make_torchvision_importable; make_torchvision_importable(); "
            "import torchvision, open_clip; print(torchvision.__version__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
