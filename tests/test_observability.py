"""What people read: step lines, MLflow metric streams without flat charts, curve summaries, metadata tables,
and a child's console kept quiet under Dagster Pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.metadata import counts_table, curve_markdown, funnel_table, rounded, versions_table
from training.checks import curve_summary
from training.runtime import MetricStream, step_line
from videorft.pipes import QUIET_CHILD_ENV

ROOT = Path(__file__).resolve().parent.parent


def test_a_step_line_shows_loss_reward_components_and_kl_in_that_order():
    line = step_line({"step": 3, "time": 1.0, "grad_norm": 2.0, "kl": 0.0031, "loss": -0.02, "reward": 1.25,
                      "rewards/format_reward/mean": 1.0, "rewards/accuracy_reward/mean": 0.25, "learning_rate": 1e-3})
    assert line == ("loss=-0.02 reward=1.25 (format_reward 1, accuracy_reward 0.25) kl=0.0031 "
                    "learning_rate=0.001")


def test_the_metric_stream_holds_a_metric_back_until_it_varies_and_tags_the_constant_ones():
    sent: list[tuple[dict[str, float], int]] = []
    tags: dict[str, str] = {}
    stream = MetricStream(lambda m, s: sent.append((m, s)), tags.update)
    for step, (loss, clip, reward) in enumerate([(0.9, 0.0, 0.1), (0.8, 0.0, 0.1), (0.7, 0.0, 0.5)], start=1):
        stream.add({"loss": loss, "clip_ratio/low_mean": clip, "reward": reward}, step)
    stream.close()
    history = {k: [(s, m[k]) for m, s in sent if k in m] for k in ("loss", "reward", "clip_ratio/low_mean")}
    assert history["loss"] == [(1, 0.9), (2, 0.8), (3, 0.7)]  # whole history, once it varied
    assert history["reward"] == [(1, 0.1), (2, 0.1), (3, 0.5)]
    assert history["clip_ratio/low_mean"] == []  # never a flat chart of zeros...
    assert tags == {"constant_metric.clip_ratio/low_mean": "0"}  # ...but findable
    # within a batch, what GRPO is judged on comes first
    assert list(sent[-1][0]) == ["reward", "loss"]


def test_curve_summary_reports_last_tenth_and_its_change_per_metric():
    records = [{"step": i, "loss": 1.0 - i / 20, "rewards/accuracy_reward/mean": i / 20} for i in range(20)]
    summary = curve_summary(records, ["loss", "rewards/accuracy_reward/mean", "kl"])
    assert rounded(summary["final_loss"]) == 0.075 and rounded(summary["change_loss"]) == -0.9
    assert rounded(summary["final_accuracy_reward"]) == 0.925 and "final_kl" not in summary  # never logged


def test_metadata_tables_keep_stage_order_and_say_what_each_column_is():
    funnel = funnel_table({"pool": 600, "described": 590, "reasoned": 500, "refined": 490, "kept": 487})
    assert [r.data["stage"] for r in funnel.records] == ["pool", "described", "reasoned", "refined", "kept"]
    assert funnel.records[-1].data["of_pool_pct"] == 81.2 and funnel.records[-1].data["of_previous_pct"] == 99.4
    assert all(c.description for c in funnel.schema.columns)
    counts = counts_table({"b": 1, "a": 3}, "problem_type")
    assert [(r.data["problem_type"], r.data["rows"], r.data["share_pct"]) for r in counts.records] == [
        ("a", 3, 75.0), ("b", 1, 25.0)]
    assert isinstance(versions_table({"prompt.cot_generation": "abc"}), dg.TableMetadataValue)
    table = curve_markdown([{"step": s, "loss": 1 / s} for s in range(1, 41)], ["loss"], rows=4)
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:3]] == ["step", "loss"]
    assert [int(line.split("|")[1]) for line in lines[2:]] == [1, 11, 21, 31, 40]  # always the last step


def test_a_child_under_pipes_keeps_the_libraries_quiet(tmp_path):
    code = ("import logging, warnings, os\n"
            "from videorft.pipes import quiet_console\n"
            "quiet_console()\n"
            "warnings.warn('`gradient_checkpointing` is deprecated and will be removed in v6.', FutureWarning)\n"
            "logging.getLogger('lm_eval.evaluator').info('Building contexts')\n"
            "from tqdm import tqdm\n"
            "list(tqdm(range(3)))\n"
            "print(os.environ['DS_ACCELERATOR'] if 'DS_ACCELERATOR' in os.environ else 'detected')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **QUIET_CHILD_ENV})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no warning, no INFO line, no progress bar
    assert out.stdout.strip() in ("cpu", "detected")


def test_every_asset_has_an_owner_a_domain_tag_and_a_description():
    from dagster_project.definitions import build_definitions
    from videorft.profile import load_profile

    graph = build_definitions(load_profile("tiny", env={}), "tiny").resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and node.owners[0].startswith("team:"), key
        assert node.tags.get("domain") == node.group_name and node.tags.get("paper_section"), key
        assert node.description, key


def test_each_group_names_the_paper_sections_where_its_method_is():
    import re

    from assets.metadata import PAPER_SECTIONS

    # the paper's numbered headings (../shared/paper/videorft-paper.txt, read again below where it is present)
    headings = {"1", "2", "2.1", "2.2", "2.3", "3", "3.1", "3.2", "3.2.1", "3.3", "4", "4.1", "4.2", "4.3", "5",
                "5.1", "5.2", "6"}
    paper = Path(__file__).resolve().parent.parent.parent / "shared" / "paper" / "videorft-paper.txt"
    if paper.is_file():
        assert set(re.findall(r"^(\d+(?:\.\d+)*) [A-Z]", paper.read_text(encoding="utf-8"), re.MULTILINE)) == headings
    for group, section in PAPER_SECTIONS.items():
        for number in section.split("-"):
            assert number in headings, f"{group}: paper_section {section} is not a heading of the paper"
    assert PAPER_SECTIONS["curation"] == "2.2"  # "Cognitively Inspired CoT Generation", as the README says



def test_a_dataset_logged_by_two_runs_at_once_is_linked_after_the_losing_insert(tmp_path):
    from mlflow.exceptions import MlflowException

    from resources.core import TrackedRun

    class RacingClient:
        calls = 0

        def log_inputs(self, run_id, datasets):
            RacingClient.calls += 1
            if RacingClient.calls == 1:  # the other run inserted the same dataset between look-up and insert
                raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id")

    TrackedRun(RacingClient(), "run", "0", "http://mlflow").log_dataset("cot_sft_set", str(tmp_path), "abc", "training")
    assert RacingClient.calls == 2

    class BrokenClient:
        def log_inputs(self, run_id, datasets):
            raise MlflowException("permission denied")

    with pytest.raises(MlflowException, match="permission denied"):
        TrackedRun(BrokenClient(), "run", "0", "http://mlflow").log_dataset("x", str(tmp_path), "abc", "training")


def test_partitioned_assets_say_which_variants_make_run_builds_and_how_to_build_the_rest():
    from dagster_project.definitions import build_definitions
    from videorft.profile import load_profile

    graph = build_definitions(load_profile("tiny", env={}), "tiny").resolve_asset_graph()
    for name in ("sft_checkpoint", "rl_checkpoint", "benchmark_scores"):
        text = graph.get(dg.AssetKey(name)).description
        assert "`make run` builds the variants base, sft_only, full" in text and "`make table2` builds" in text, name


def test_mlflow_run_names_are_short_and_distinct_for_every_partition():
    from resources.core import run_label

    assert run_label("benchmark_scores", "mvbench|full") == "score mvbench/full"
    assert run_label("rl_checkpoint", "full") == "rl full" and run_label("sft_checkpoint", "full") == "sft full"
    assert run_label("raw_qa_pool") == "raw_qa_pool"
    names = {run_label("benchmark_scores", f"{b}|{v}") for b in ("mvbench", "videomme") for v in ("base", "full")}
    assert len(names) == 4 and max(map(len, names)) <= 24  # readable at the list's width


def test_what_a_run_is_judged_on_is_also_sent_under_a_section_mlflow_shows_first():
    from training.runtime import headline_metrics

    grpo = {"reward": 0.6, "rewards/accuracy_reward/mean": 0.25, "kl": 0.01, "completions/mean_length": 90.0}
    assert headline_metrics(grpo) == {"GRPO/reward": 0.6, "GRPO/accuracy_reward": 0.25, "GRPO/kl": 0.01}
    assert headline_metrics({"loss": 1.2, "mean_token_accuracy": 0.7, "grad_norm": 3.0}) == {
        "SFT/loss": 1.2, "SFT/mean_token_accuracy": 0.7}
