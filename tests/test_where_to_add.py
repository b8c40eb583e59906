"""docs/architecture.md's "Where to add", followed exactly: each recipe is done with the files it names and nothing
else, and the product picks the addition up (the expert role's is tests/test_stage_table.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from graph_helpers import materialize_all
from test_curation_chain import SOURCES, defs_for, profile_with
from upath import UPath

import training  # noqa: F401  (the CPU torchvision work-around)
from training.rewards import REWARDS, RewardEntry

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _recipe_section(title: str) -> str:
    start = DOCS.index(f"**{title}**")
    ends = [i for i in (DOCS.find("\n\n**", start + 1), DOCS.find("\n## ", start + 1)) if i > 0]
    return DOCS[start:min(ends, default=len(DOCS))]


def brevity_reward(completions: list, **kwargs: object) -> list[float]:
    """r = 1 / (1 + n / 100), n the completion's characters: shorter replies score higher."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    brevity_reward.calls += 1  # type: ignore[attr-defined]
    return [1.0 / (1.0 + len(t) / 100) for t in texts]


def test_a_new_reward_is_a_function_with_its_entry_and_a_recipe_line(small_world, tmp_path, monkeypatch):
    section = _recipe_section("A reward")
    assert "training/rewards.py" in section and "reward.functions" in section
    # 1. the function and its entry in REWARDS
    brevity_reward.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setitem(REWARDS, "brevity_reward", RewardEntry(lambda context: brevity_reward))
    # 2. the recipe names it
    recipe = yaml.safe_load((ROOT / "tests" / "fixtures" / "grpo-fast.yaml").read_text())
    recipe["reward"]["functions"] = ["format_reward", "accuracy_reward", "brevity_reward"]
    recipe["trainer"].update(max_steps=1, max_completion_length=8, save_steps=10)
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("VIDEORFT_STORAGE_ROOT", str(tmp_path / "storage"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    from training import grpo

    out = tmp_path / "run"
    code = grpo.main(["--config", str(path), "--model", "tiny-random", "--data",
                      str(Path(small_world.root) / "qa_videos.json"), "--output-dir", str(out), "--no-resume"])
    assert code == 0
    assert brevity_reward.calls >= 1  # type: ignore[attr-defined]
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/brevity_reward/mean" in r for r in logged)


@pytest.mark.slow
def test_a_new_storage_backend_is_an_fsspec_url_in_the_profile(isolated_env, tmp_path, monkeypatch):
    section = _recipe_section("A storage backend")
    assert "storage_root" in section and "fsspec" in section
    # fsspec's in-memory filesystem ships with fsspec, so step 1 (its implementation in pyproject.toml) is done
    monkeypatch.setenv("VIDEORFT_STORAGE_ROOT", "memory://videorft-where-to-add")
    defs = defs_for(profile_with(tmp_path))
    with dg.instance_for_test() as instance:
        results = materialize_all(defs, instance, " or ".join((SOURCES, "key:structured_video_representations")))
        assert all(r.success for r in results)
    manifests = list((UPath("memory://videorft-where-to-add") / "manifests").rglob("*.json"))
    assert any("structured_video_representations" in str(p) for p in manifests)
    assert not (tmp_path / "storage").exists()  # nothing fell back to a local folder


NEW_BENCHMARK = '''    Benchmark("nextqa", "NExT-QA (multiple-choice)", ("causal", "temporal", "descriptive"),
              ("type", "category"), float("nan"), multiple_choice_only(mmvu_official),
              description="causal and temporal questions about everyday videos (not in the paper: no 7B number)"),
'''


def _copy_of_the_repository(dest: Path) -> Path:
    """The tracked files (as a fresh clone has them) and the working tree's edits to them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.slow
def test_a_new_benchmark_is_its_entry_and_its_generated_task_files(isolated_env, tmp_path):
    section = _recipe_section("A benchmark")
    assert "evaluation/benchmarks.py" in section and "python -m evaluation.task_files" in section
    repo = _copy_of_the_repository(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": str(repo), "VIDEORFT_PROJECT_ROOT": str(repo)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    # 1. its rule: NExT-QA's multiple-choice rule is one protocols.py already has (no new rule, no new reference)
    # 2. its entry in BENCHMARKS
    registry = repo / "evaluation" / "benchmarks.py"
    text = registry.read_text()
    registry.write_text(text.replace('              fixture_format="videomme_release"),\n)}',
                                     '              fixture_format="videomme_release"),\n' + NEW_BENCHMARK + ')}'))
    assert "nextqa" in registry.read_text()
    stale = run("-m", "evaluation.task_files", "--check")
    assert stale.returncode != 0 and "nextqa" in stale.stdout + stale.stderr  # the test that guards task files
    # 3. its task files
    assert run("-m", "evaluation.task_files").returncode == 0
    assert (repo / "evaluation" / "tasks" / "videorft_nextqa.yaml").is_file()
    # what follows the registry: the CLI scores it on its fixtures, Dagster partitions it
    scored = run("-m", "evaluation.run", "--model", "tiny-random", "--benchmarks", "nextqa", "--output",
                 str(tmp_path / "scores"), "--profile", str(ROOT / "tests" / "fixtures" / "small-profile.yaml"),
                 "--max-new-tokens", "4", "--bootstrap", "10")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads(scored.stdout)["scores"]["nextqa"]["failed"] == 0
    samples = (tmp_path / "scores" / "samples_nextqa.jsonl").read_text().splitlines()
    assert len(samples) > 0 and all(json.loads(s)["benchmark"] == "nextqa" for s in samples)
    partitions = run("-c", "from assets.evaluation import BENCHMARK_PARTITIONS as p; print(p.get_partition_keys())")
    assert "nextqa" in partitions.stdout, partitions.stderr[-2000:]
