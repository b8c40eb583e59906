"""Stage-library command lines (no Dagster) and the CPU torchvision work-around."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def test_simulator_cli_serves_the_openai_protocol_on_localhost():
    import httpx

    from synthetic.simulator.server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "curation.simulator", "--port", str(port), "--no-world"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        for _ in range(300):
            try:
                models = httpx.get(f"{base}/models", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        assert {m["id"] for m in models["data"]} >= {"sim-describer", "sim-reasoner", "sim-refiner"}
        reply = httpx.post(f"{base}/chat/completions", json={"model": "sim-echo", "messages": [
            {"role": "user", "content": "hi"}]}, timeout=10).json()
        assert reply["choices"][0]["message"]["content"].startswith("<think>")
        assert httpx.post(f"{base}/chat/completions", json={"model": "gpt-9", "messages": []},
                          timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_curation_cli_runs_the_expert_chain_without_dagster(tmp_path, small_world):
    pool = tmp_path / "pool"
    out = subprocess.run([sys.executable, "-m", "curation", "ingest", "--source", f"{small_world.root}/qa_videos.json",
                          "--source", f"{small_world.root}/qa_images.jsonl", "--out", str(pool), "--shards", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    args = [sys.executable, "-m", "curation", "curate", "--pool", str(pool / "manifest.json"), "--out",
            str(tmp_path / "cot"), "--profile", str(ROOT / "tests" / "fixtures" / "small-profile.yaml"),
            "--world", small_world.root, "--shard", "0"]
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert summary["kept"] + summary["dropped"] == summary["pool"] > 0
    assert (tmp_path / "cot" / "cot_sft_set.jsonl").exists() and (tmp_path / "cot" / "rl_set.parquet").exists()
