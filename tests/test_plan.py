"""training.plan: parameter counts, tokens, the memory estimate against what autograd keeps, the refusals, the
paper-7b table (a golden file) and the JSON contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from training import plan as planning
from training.plan import (
    PlanError,
    count_parameters,
    model_config,
    plan_stage,
)
from videorft.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "plan_paper-7b.md"
# the released checkpoints' parameter counts (their model.safetensors.index.json totals / 2 bytes)
RELEASED = {"Qwen/Qwen2.5-VL-3B-Instruct": 3_754_622_976, "Qwen/Qwen2.5-VL-7B-Instruct": 8_292_166_656}


@pytest.fixture(autouse=True)
def _no_hub_tokenizer(monkeypatch):
    """The plan never downloads; a Qwen tokenizer in this machine's HF cache would change the golden table."""
    monkeypatch.setattr(planning, "_in_hub_cache", lambda repo: False)


def test_parameter_counts_equal_the_instantiated_and_released_models():
    from training.model import load_model_and_processor, parameter_count

    model, _ = load_model_and_processor("tiny-pretrained")
    counted = count_parameters(model_config("tiny-pretrained"), freeze_vision=False)
    assert counted.total == parameter_count(model)
    assert counted.vision == sum(p.numel() for p in model.model.visual.parameters())
    frozen = count_parameters(model_config("tiny-pretrained"), freeze_vision=True)
    assert frozen.trainable == counted.total - counted.vision
    for hub_id, released in RELEASED.items():
        assert count_parameters(model_config(hub_id), freeze_vision=False).total == released, hub_id


@pytest.mark.parametrize("frames", [2, 4, 8])
def test_activation_estimate_is_within_ten_percent_of_what_autograd_keeps(frames):
    import importlib.util

    from training.model import load_model_and_processor

    # the bench's own measurement (bench/plan_activations.py records the ratios in RESULTS), asserted here
    spec = importlib.util.spec_from_file_location("plan_activations", ROOT / "bench" / "plan_activations.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model, processor = load_model_and_processor("tiny-pretrained")
    model.train()
    result = bench.measure(frames, model, processor)
    estimate, measured = {"total": result["estimate_bytes"]}, result["measured_bytes"]
    assert abs(sum(estimate.values()) / measured - 1) < 0.10, (estimate, measured)


def test_a_sample_past_the_maximum_length_is_refused_naming_the_knobs():
    profile = load_profile("tiny", env={})
    with pytest.raises(PlanError) as refused:
        plan_stage(profile, "grpo", ["trainer.max_prompt_length=64"])
    message = str(refused.value)
    assert "trainer.max_prompt_length 64" in message and "video.train.frames" in message
    assert "video.train.max_pixels" in message


def _paper_on_one_small_gpu(tmp_path: Path) -> Path:
    """paper-7b, SFT without DeepSpeed (ZeRO-0) on one 24 GB GPU."""
    folder = tmp_path / "one-gpu"
    shutil.copytree(ROOT / "configs" / "paper-7b", folder)
    recipe = yaml.safe_load((folder / "sft.yaml").read_text())
    recipe["deepspeed"] = None
    (folder / "sft.yaml").write_text(yaml.safe_dump(recipe))
    data = yaml.safe_load((folder / "profile.yaml").read_text())
    data["training"]["sft_recipe"] = str(folder / "sft.yaml")
    data["training"]["grpo_recipe"] = str(ROOT / "configs" / "paper-7b" / "grpo.yaml")
    data["training"]["launcher"].update(num_processes=1)
    data["training"]["launcher"]["k8s"].update(gpus=1, gpu_memory_gib=24)
    (folder / "profile.yaml").write_text(yaml.safe_dump(data))
    return folder / "profile.yaml"


def test_an_impossible_fit_is_refused_before_any_launch_with_the_plans_table(tmp_path):
    from assets.training import check_plan

    profile = load_profile(str(_paper_on_one_small_gpu(tmp_path)), env={})
    planned = plan_stage(profile, "sft")
    assert planned.zero_stage == 0 and planned.gpus == 1 and not planned.fits
    assert planned.memory_gib["optimizer"] > 24  # Adam alone: 12 bytes x 8.3 B parameters
    with pytest.raises(dg.Failure) as refused:
        check_plan(profile, "sft", [], "Qwen/Qwen2.5-VL-7B-Instruct", "sft_checkpoint[sft_only]")
    message = str(refused.value)
    assert "not launched" in message and "| fits | **NO** |" in message and "22.1 GiB usable" in message


def test_the_paper_7b_plan_is_the_golden_table():
    """After a deliberate change, regenerate it:
    python -m training.plan --profile paper-7b > tests/fixtures/plan_paper-7b.md"""
    result = planning.plan(load_profile("paper-7b", env={}))
    assert planning.table(result) + "\n" == GOLDEN.read_text()
    assert result["sft"]["fits"] and result["grpo"]["fits"]  # the paper's 8 x 80 GB runs it


def test_the_json_contract_has_the_named_fields():
    out = subprocess.run([sys.executable, "-m", "training.plan", "--profile", "tiny", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["parameters_total"] >= result["parameters_trainable"] > 0
    for stage in ("sft", "grpo"):
        assert {"tokens_per_sample", "memory_per_gpu_gib", "fits"} <= set(result[stage])
        assert isinstance(result[stage]["tokens_per_sample"], int) and result[stage]["fits"] is True


def test_model_states_are_deepspeeds_own_estimates_when_everything_trains():
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    from training.plan import model_state_bytes

    p = count_parameters(model_config("Qwen/Qwen2.5-VL-7B-Instruct"), freeze_vision=False)
    zero2 = estimate_zero2_model_states_mem_needs(p.total, 8, 1, cpu_offload=False)[1]
    zero3 = estimate_zero3_model_states_mem_needs(p.total, p.largest_layer, 8, 1, cpu_offload=False)[1]
    assert sum(model_state_bytes(p, 2, 8, 2).values()) == pytest.approx(zero2, rel=1e-9)
    assert sum(model_state_bytes(p, 3, 8, 2).values()) == pytest.approx(zero3, rel=1e-9)
