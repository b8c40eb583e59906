"""``python -m training.plan --profile NAME [--variant V] [--json]``: will a profile's GPU jobs fit, and what will
they cost, computed on CPU without weights before anything launches.

Per stage (SFT, GRPO), from the profile's recipes, its ``video.train`` and its launcher:

* parameters: the model's exact architecture built on the meta device from its ``config.json`` (shipped in
  ``training/model_configs/`` for the Qwen2.5-VL hub ids, else read from a local folder): total, trainable after
  the recipe's freezes, vision versus language;
* tokens per sample: video tokens from the real Qwen2-VL video processor on frames sized as the runtime sizes
  them (``videorft.media.smart_resize`` of a ``source`` frame at ``video.train``), the prompt's text tokens with the
  model's tokenizer where it is local (else the project's, stated), and the completion. A sample past a recipe
  maximum (GRPO's ``trainer.max_prompt_length``, SFT's ``trainer.max_length`` when set) or past the model's
  positions is an error naming the knobs;
* memory per GPU at the recipe's ZeRO stage over the launcher's GPUs: model states by DeepSpeed's own accounting
  (16-bit weights; 16-bit and 32-bit gradients, 32-bit master weights and Adam's two moments for what trains:
  ``estimate_zero2/3_model_states_mem_needs``' 2 + 18 bytes per parameter), activations (``activation_bytes``: what
  autograd keeps per token and layer, one layer at a time under gradient checkpointing, and the logits), and for
  GRPO the rollouts' KV cache and the reference model;
* the step time and the run's GPU-hours at a stated MFU (``MFU``) and, for GRPO's decoding, a stated share of the
  memory bandwidth (``DECODE_BANDWIDTH_SHARE``).

The ``sft_checkpoint`` and ``rl_checkpoint`` assets run it before every launch and refuse a job that does not fit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from videorft.profile import Profile, load_profile

CONFIGS_DIR = Path(__file__).resolve().parent / "model_configs"
GIB = 1024 ** 3
# Share of the GPU's peak bf16 FLOP/s a step achieves: HF + DeepSpeed ZeRO with gradient checkpointing on
# variable-length video batches of 1-8 sequences typically reaches 25-40%; 0.3 is the planning figure. The
# recompute of checkpointing is counted as FLOPs (8 x params x tokens instead of 6), so it is not in the MFU.
MFU = 0.30
# Decoding reads every weight once per generated token (and ZeRO-3 gathers them first): bandwidth-bound. HF
# generate reaches about half the HBM bandwidth on a 7B model.
DECODE_BANDWIDTH_SHARE = 0.5
USABLE_MEMORY = 0.92  # of a GPU's memory: the rest is CUDA context, NCCL buffers and allocator fragmentation
SOURCE_FRAME = (720, 1280)  # (height, width) of a planned video frame: 720p, the common case of the paper's data
MEMORY_ROWS = ("weights", "gradients", "optimizer", "reference_model", "activations_language", "activations_vision",
               "logits", "rollout_kv_cache")
PAPER = {"hardware": "8 x NVIDIA A800 80 GB (paper 4.1)", "sft": "one epoch over VideoRFT-CoT-102K",
         "grpo": "1K steps on VideoRFT-RL-310K", "sft_rows": 102_000}


@dataclass(frozen=True)
class Gpu:
    memory_gib: float
    bf16_tflops: float  # dense peak
    hbm_gbps: float
    link_gbps: float  # per-GPU interconnect bandwidth (NVLink)


GPUS = {  # keyed by the node selector's nvidia.com/gpu.product value (substring match)
    "A800-SXM4-80GB": Gpu(80, 312, 2039, 400), "A100-SXM4-80GB": Gpu(80, 312, 2039, 600),
    "A100-SXM4-40GB": Gpu(40, 312, 1555, 600), "H100-80GB-HBM3": Gpu(80, 989, 3350, 900),
    "H100-SXM": Gpu(80, 989, 3350, 900), "H200": Gpu(141, 989, 4800, 900), "L40S": Gpu(48, 362, 864, 64),
    "A10G": Gpu(24, 125, 600, 64), "RTX-4090": Gpu(24, 165, 1008, 64),
}
HUB_CONFIGS = {"Qwen/Qwen2.5-VL-7B-Instruct": "Qwen2.5-VL-7B-Instruct.json",
               "Qwen/Qwen2.5-VL-3B-Instruct": "Qwen2.5-VL-3B-Instruct.json"}


class PlanError(ValueError):
    """A job that cannot run as configured; the message names the knobs to change."""


# ---- the model ----------------------------------------------------------------------------------------------

def model_config(name_or_path: str) -> Any:
    """The Qwen2.5-VL config of a hub id (shipped JSON), ``tiny-pretrained``/``tiny-random`` or a local folder."""
    from transformers import Qwen2_5_VLConfig

    if name_or_path in HUB_CONFIGS:
        return Qwen2_5_VLConfig.from_pretrained(str(CONFIGS_DIR / HUB_CONFIGS[name_or_path]))
    from training.model import load_processor, resolve_model
    from training.tiny import TINY_RANDOM, build_tiny_model

    if name_or_path == TINY_RANDOM:
        return build_tiny_model(load_processor(TINY_RANDOM)).config
    folder = Path(resolve_model(name_or_path))
    if not (folder / "config.json").is_file():
        raise PlanError(f"model {name_or_path!r}: no config.json (a local folder, tiny-pretrained, tiny-random or "
                        f"one of {', '.join(HUB_CONFIGS)}); ship its config.json under {CONFIGS_DIR}")
    return Qwen2_5_VLConfig.from_pretrained(str(folder))


@dataclass
class Parameters:
    total: int
    trainable: int
    vision: int
    language: int
    largest_layer: int  # DeepSpeed's largest_layer_params: the largest single module's own parameters


def count_parameters(config: Any, freeze_vision: bool) -> Parameters:
    """Counted on the meta device: the exact modules, no memory."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return Parameters(total, total - vision if freeze_vision else total, vision, total - vision, largest)


# ---- tokens ---------------------------------------------------------------------------------------------------

def video_tokens(config: Any, frames: int, max_pixels: int, min_pixels: int, source: tuple[int, int] = SOURCE_FRAME
                 ) -> tuple[int, int]:
    """(merged video tokens the LM reads, patches the vision tower reads) for ``frames`` frames of ``source``."""
    import torch
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from videorft.media import smart_resize

    v = config.vision_config
    height, width = smart_resize(*source, min_pixels=min_pixels, max_pixels=max_pixels)
    processor = Qwen2VLVideoProcessor(patch_size=v.patch_size, temporal_patch_size=v.temporal_patch_size,
                                      merge_size=v.spatial_merge_size, min_pixels=min_pixels, max_pixels=max_pixels,
                                      size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
                                      cap_pixels_per_frame=False)
    clip = torch.zeros(frames, 3, height, width, dtype=torch.uint8)
    grid = processor(videos=[clip], return_tensors="pt", do_sample_frames=False)["video_grid_thw"][0]
    patches = int(grid.prod())
    return patches // v.spatial_merge_size ** 2, patches


def prompt_text_tokens(name_or_path: str) -> tuple[int, str]:
    """Text tokens of a typical prompt (a four-option question in the recipes' template and the chat turns), with
    the model's tokenizer where it is on this machine, else the project's (stated in the plan)."""
    from training.model import load_processor
    from training.prompts import question_text
    from training.tiny import TINY_RANDOM

    text = question_text("Which object changes colour last, and what colour does it end with before the camera "
                         "stops moving?", "multiple choice",
                         ["A. the red circle, blue", "B. the green square, white", "C. the blue triangle, red",
                          "D. the yellow star, green"])
    processor = None
    if name_or_path not in HUB_CONFIGS or _in_hub_cache(name_or_path):  # never a download: a plan is offline
        with contextlib.suppress(Exception):  # an unloadable processor: the project's tokenizer stands in
            processor, which = load_processor(name_or_path), "the model's tokenizer"
    if processor is None:
        processor, which = load_processor(TINY_RANDOM), "the project's tokenizer (the model's is not on this machine)"
    chat = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
    chat += "<|vision_end|>" + text + "<|im_end|>\n<|im_start|>assistant\n"
    return len(processor.tokenizer(chat)["input_ids"]), which


def _in_hub_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "tokenizer_config.json"), str)


# ---- memory -------------------------------------------------------------------------------------------------

def model_state_bytes(params: Parameters, zero: int, gpus: int, dtype_bytes: int, deepspeed: bool = True
                      ) -> dict[str, float]:
    """Weights, gradients and optimizer states per GPU. Under DeepSpeed, its accounting: 16-bit weights 2 bytes
    per parameter; per trainable parameter 2 (16-bit grads) + 4 (32-bit grads) + 4 (32-bit master) + 8 (Adam)
    = 18 bytes under bf16 mixed precision, 4 + 4 + 8 = 16 in float32; ZeRO-1 partitions the optimizer states,
    ZeRO-2 the gradients too, ZeRO-3 the weights too (plus the largest layer gathered whole). Without DeepSpeed
    the Trainer's AdamW keeps gradients and both moments in the weights' dtype."""
    mixed = dtype_bytes == 2 and deepspeed
    weights = dtype_bytes * params.total
    grads = (2 + 4 if mixed else dtype_bytes) * params.trainable
    optimizer = (4 + 8 if mixed else 2 * dtype_bytes) * params.trainable
    if zero >= 1:
        optimizer /= gpus
    if zero >= 2:
        grads /= gpus
    if zero >= 3:  # DeepSpeed's stage-3 estimate: 18 bytes per parameter in all, the 16-bit weights included
        weights = weights / gpus + 4 * params.largest_layer
        grads = grads * (4 / 6 if mixed else 1)
    return {"weights": weights, "gradients": grads, "optimizer": optimizer}


def decoder_bytes_per_token(hidden: int, kv: int, intermediate: int, b: int, flash: bool) -> int:
    """What autograd keeps for one token through one Qwen2 decoder layer (``b`` bytes per element): two RMSNorms,
    each its float32 input and its output; attention's rotated q and k, v and output (outside flash attention,
    GQA's k and v copied to every head and the output transposed into a copy); SwiGLU's gate, up, SiLU(gate)
    and their product."""
    norms = 2 * (4 + b) * hidden
    attention = b * (2 * hidden + 2 * kv) if flash else b * (3 * hidden + 2 * hidden)
    return norms + attention + b * 4 * intermediate


def vision_bytes_per_patch(v: Any, b: int) -> tuple[int, int]:
    """(per vision block, once per patch) kept for one patch by Qwen2.5-VL's vision tower: a block's two
    RMSNorms, its fused qkv, the rotated q and k, the attention output and its concatenation, SwiGLU; once, the
    patch embedding's input pixels and the merger's norm, hidden layer and GELU."""
    h, i = v.hidden_size, v.intermediate_size
    block = 2 * (4 + b) * h + 7 * b * h + 4 * b * i
    once = b * 3 * v.temporal_patch_size * v.patch_size ** 2 + (4 + b) * h + 2 * b * h
    return block, once


def activation_bytes(config: Any, sequences: int, text_tokens: int, patches: int, dtype_bytes: int,
                     checkpointing: bool, flash: bool, vision_trains: bool, scored_tokens: int | None = None
                     ) -> dict[str, float]:
    """Peak activations of one micro-batch of ``sequences`` sequences of ``text_tokens`` tokens (video tokens
    included) and ``patches`` vision patches each. Under gradient checkpointing each block keeps its input and
    one block at a time is recomputed; without it every block keeps everything. Logits: for every position in
    the model's dtype and twice in float32 (the causal-LM loss upcasts, then its log-softmax), or, with
    ``scored_tokens`` (TRL's GRPO: ``logits_to_keep``), for those positions only, in the model's dtype and its
    per-row log-softmax."""
    t, v, b = config.text_config, config.vision_config, dtype_bytes
    kv = t.num_key_value_heads * (t.hidden_size // t.num_attention_heads)
    lm_layer = decoder_bytes_per_token(t.hidden_size, kv, t.intermediate_size, b, flash)
    vis_block, vis_once = vision_bytes_per_patch(v, b)
    tokens, vis_tokens = sequences * text_tokens, sequences * patches
    final_norm = (4 + b) * t.hidden_size
    if checkpointing:
        lm = tokens * (t.num_hidden_layers * b * t.hidden_size + lm_layer + final_norm)
        vision = vis_tokens * (v.depth * b * v.hidden_size + vis_block + vis_once)
    else:
        lm = tokens * (t.num_hidden_layers * lm_layer + final_norm)
        vision = vis_tokens * (v.depth * vis_block + vis_once)
    if not vision_trains:
        vision = vis_tokens * vis_block  # no graph kept: one block's transient tensors
    if scored_tokens is None:  # float32 weights: the loss's upcast is the logits themselves
        logits = tokens * t.vocab_size * (b + 4 + 4 if b < 4 else 4 + 4)
    else:
        logits = sequences * scored_tokens * t.vocab_size * 2 * dtype_bytes
    return {"activations_language": lm, "activations_vision": vision, "logits": logits}


def saved_activation_bytes(model: Any, inputs: dict[str, Any]) -> int:
    """What the activation estimate is checked against: the bytes autograd keeps for backward in one training
    forward of ``model`` on ``inputs`` (unique storages of every saved tensor, parameters excluded)."""
    import torch

    seen: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**inputs)
    return sum(v for ptr, v in seen.items() if ptr not in params)


# ---- the plan -----------------------------------------------------------------------------------------------

@dataclass
class StagePlan:
    stage: str
    model: str
    parameters_total: int
    parameters_trainable: int
    parameters_vision: int
    zero_stage: int
    gpus: int
    dtype: str
    tokens_per_sample: int
    tokens: dict[str, int]  # video, vision_patches, prompt_text, completion
    memory_gib: dict[str, float]
    memory_per_gpu_gib: float
    usable_gib: float | None
    fits: bool
    step_seconds: float | None
    run_gpu_hours: float | None
    notes: list[str] = field(default_factory=list)


def _zero_stage(recipe: Any) -> int:
    if not recipe.deepspeed:
        return 0
    from videorft.profile import project_root

    path = Path(recipe.deepspeed)
    data = json.loads((path if path.is_absolute() else project_root() / path).read_text())
    return int(data.get("zero_optimization", {}).get("stage", 0))


def _hardware(profile: Profile) -> tuple[int, Gpu | None, float | None, str]:
    """(GPUs per job, the GPU or None for CPU, usable memory GiB, its description)."""
    launcher = profile.training.launcher
    if launcher.kind != "k8s":
        import psutil

        ram = psutil.virtual_memory().total / GIB
        return launcher.num_processes, None, ram * USABLE_MEMORY, f"this machine's CPU ({ram:.0f} GiB RAM)"
    k8s = launcher.k8s
    product = k8s.node_selector.get("nvidia.com/gpu.product", "")
    gpu = next((g for key, g in GPUS.items() if key in product), None)
    if k8s.gpu_memory_gib is not None:
        gpu = Gpu(k8s.gpu_memory_gib, gpu.bf16_tflops if gpu else 312, gpu.hbm_gbps if gpu else 2039,
                  gpu.link_gbps if gpu else 400)
    if gpu is None:
        raise PlanError(f"profile {profile.name}: training.launcher.k8s.node_selector names no known GPU "
                        f"({product or 'none'}; known: {', '.join(GPUS)}): set training.launcher.k8s.gpu_memory_gib")
    return k8s.gpus * k8s.nodes, gpu, gpu.memory_gib * USABLE_MEMORY, f"{k8s.gpus * k8s.nodes} x {product or 'GPU'}"


def _limits(stage: str, recipe: Any, config: Any, prompt: int, completion: int) -> None:
    trainer = recipe.trainer
    knobs = "video.train.frames / video.train.max_pixels (the profile)"
    positions = config.text_config.max_position_embeddings
    if prompt + completion > positions:
        raise PlanError(f"{stage}: a sample of {prompt + completion} tokens exceeds the model's "
                        f"{positions} positions: lower {knobs} or the completion length")
    if stage == "grpo" and trainer.get("max_prompt_length") and prompt > trainer["max_prompt_length"]:
        raise PlanError(f"grpo: a prompt of {prompt} tokens (video included) exceeds trainer.max_prompt_length "
                        f"{trainer['max_prompt_length']}: raise it (the recipe) or lower {knobs}")
    if stage == "sft" and trainer.get("max_length") and prompt + completion > trainer["max_length"]:
        raise PlanError(f"sft: a sample of {prompt + completion} tokens exceeds trainer.max_length "
                        f"{trainer['max_length']}: raise it (the recipe) or lower {knobs}")


def plan_stage(profile: Profile, stage: str, overrides: list[str] | None = None, model: str | None = None,
               completion_tokens: int | None = None) -> StagePlan:
    """The plan of one stage (``sft`` or ``grpo``) of ``profile``; ``model`` defaults to the recipe's."""
    from training.config import load_recipe

    recipe = load_recipe(profile.training.recipe_path(stage), stage, overrides or [], check_trainer_keys=False)
    name = model or recipe.model.name_or_path
    config = model_config(name)
    params = count_parameters(config, recipe.model.freeze_vision)
    video = profile.video.train
    # sampled by rate, a video may reach max_frames: the plan budgets the longest
    merged, patches = video_tokens(config, video.frames or video.max_frames, video.max_pixels, video.min_pixels)
    text, tokenizer = prompt_text_tokens(name)
    trainer = recipe.trainer
    # SFT's CoTs are as long as the data; the plan budgets the length GRPO allows a CoT (its recipe's cap)
    budget = trainer.get("max_completion_length") if stage == "grpo" else load_recipe(
        profile.training.recipe_path("grpo"), "grpo", check_trainer_keys=False).trainer.get("max_completion_length")
    completion = completion_tokens or int(budget or 1024)
    prompt = merged + text
    _limits(stage, recipe, config, prompt, completion)
    dtype_bytes = 2 if recipe.model.dtype in ("bfloat16", "float16", "auto") else 4
    zero = _zero_stage(recipe)
    gpus, gpu, usable, hardware = _hardware(profile)
    sequences = int(trainer.get("per_device_train_batch_size", 8 if stage == "grpo" else 1))
    memory = model_state_bytes(params, zero, max(gpus, 1), dtype_bytes, recipe.deepspeed is not None)
    memory.update(activation_bytes(config, sequences, prompt + completion, patches, dtype_bytes,
                                   bool(trainer.get("gradient_checkpointing")),
                                   recipe.model.attn_implementation == "flash_attention_2",
                                   not recipe.model.freeze_vision, completion if stage == "grpo" else None))
    source = "assumed" if completion_tokens or not budget else "the GRPO recipe's trainer.max_completion_length"
    notes = [f"hardware: {hardware}", f"prompt text counted with {tokenizer}", f"completion: {completion} tokens "
             f"({source})"]
    if stage == "grpo":
        t = config.text_config
        kv = 2 * t.num_hidden_layers * t.num_key_value_heads * (t.hidden_size // t.num_attention_heads)
        memory["rollout_kv_cache"] = sequences * (prompt + completion) * kv * dtype_bytes
        if float(trainer.get("beta", 0.0)) > 0:
            memory["reference_model"] = dtype_bytes * params.total / (max(gpus, 1) if zero >= 3 else 1)
    total = sum(memory.values()) / GIB
    step, hours = _timing(stage, params, config, gpu, gpus, zero, sequences, prompt, completion, patches,
                          recipe, dtype_bytes)
    return StagePlan(stage, name, params.total, params.trainable, params.vision, zero, gpus, recipe.model.dtype,
                     prompt + completion,
                     {"video": merged, "vision_patches": patches, "prompt_text": text, "completion": completion},
                     {k: round(v / GIB, 2) for k, v in memory.items()}, round(total, 2),
                     None if usable is None else round(usable, 1), usable is None or total <= usable,
                     step, hours, notes)


def _timing(stage: str, params: Parameters, config: Any, gpu: Gpu | None, gpus: int, zero: int, sequences: int,
            prompt: int, completion: int, patches: int, recipe: Any, dtype_bytes: int
            ) -> tuple[float | None, float | None]:
    """(seconds per optimizer step, GPU-hours of the run) at ``MFU``; None on CPU."""
    if gpu is None:
        return None, None
    trainer = recipe.trainer
    lm, vision = params.language, params.vision
    recompute = 8 if trainer.get("gradient_checkpointing") else 6
    tokens = sequences * (prompt + completion)
    vision_flops = (recompute if not recipe.model.freeze_vision else 2) * vision * sequences * patches
    flops = recompute * lm * tokens + vision_flops
    seconds = flops / (gpu.bf16_tflops * 1e12 * MFU)
    if stage == "grpo":
        read = dtype_bytes * params.total * (1 + (1 if zero >= 3 else 0) * gpu.hbm_gbps / gpu.link_gbps)
        seconds += completion * read / (gpu.hbm_gbps * 1e9 * DECODE_BANDWIDTH_SHARE)  # the batch decodes together
        seconds += 2 * lm * tokens / (gpu.bf16_tflops * 1e12 * MFU)  # the reference model's forward
        steps = int(trainer.get("max_steps") or 1000)
    else:
        per_step = sequences * int(trainer.get("gradient_accumulation_steps", 1)) * gpus
        steps = math.ceil(PAPER["sft_rows"] * float(trainer.get("num_train_epochs", 1)) / per_step)
        seconds *= int(trainer.get("gradient_accumulation_steps", 1))
    return round(seconds, 1), round(seconds * steps * gpus / 3600, 1)


def plan(profile: Profile, variant: str | None = None) -> dict[str, Any]:
    """The plan of every stage ``variant`` (default: the profile's last run variant, ``full``) trains."""
    from training.config import grpo_overrides

    name = variant or profile.training.run_variants[-1]
    if name not in profile.training.variants:
        known = ", ".join(profile.training.variants)
        raise PlanError(f"profile {profile.name}: no variant {name!r}; variants: {known}")
    chosen = profile.training.variants[name]
    stages = {}
    if chosen.sft:
        stages["sft"] = plan_stage(profile, "sft")
    if chosen.rl:
        stages["grpo"] = plan_stage(profile, "grpo", grpo_overrides(chosen))
    if not stages:
        raise PlanError(f"profile {profile.name}: variant {name!r} trains nothing (no sft, no rl): nothing to plan")
    first = next(iter(stages.values()))
    return {"profile": profile.name, "variant": name, "parameters_total": first.parameters_total,
            "parameters_trainable": first.parameters_trainable, "parameters_vision": first.parameters_vision,
            "parameters_language": first.parameters_total - first.parameters_vision, "mfu": MFU, "paper": PAPER,
            **{k: asdict(v) for k, v in stages.items()}}


def stage_table(profile: str, planned: StagePlan) -> str:
    """One stage's plan as a Markdown table (the assets' metadata and their refusals)."""
    return table({"profile": profile, "parameters_total": planned.parameters_total,
                  "parameters_trainable": planned.parameters_trainable, planned.stage: asdict(planned)})


def table(result: dict[str, Any]) -> str:
    """The plan as a Markdown table: one column per stage."""
    stages = [k for k in ("sft", "grpo") if k in result]
    rows = [("GPUs, ZeRO stage", lambda s: f"{s['gpus']}, ZeRO-{s['zero_stage']}"),
            ("tokens per sample (video + prompt text + completion)",
             lambda s: f"{s['tokens_per_sample']:,} ({s['tokens']['video']:,} + "
                       f"{s['tokens']['prompt_text']:,} + {s['tokens']['completion']:,})"),
            ("vision patches per sample", lambda s: f"{s['tokens']['vision_patches']:,}")]
    keys = [k for k in MEMORY_ROWS if any(k in result[st]["memory_gib"] for st in stages)]
    rows += [(f"{k.replace('_', ' ')} (GiB per GPU)", lambda s, k=k: f"{s['memory_gib'].get(k, 0):.2f}") for k in keys]
    rows += [("total (GiB per GPU)", lambda s: f"**{s['memory_per_gpu_gib']:.1f}**"),
             ("usable (GiB per GPU)", lambda s: f"{s['usable_gib']}" if s["usable_gib"] is not None else "-"),
             ("fits", lambda s: "yes" if s["fits"] else "**NO**"),
             (f"step time (s, MFU {MFU:.0%})", lambda s: f"{s['step_seconds']}" if s["step_seconds"] else "-"),
             ("run GPU-hours", lambda s: f"{s['run_gpu_hours']:,}" if s["run_gpu_hours"] else "-")]
    lines = [f"| {result['profile']} ({result['parameters_total']:,} parameters, "
             f"{result['parameters_trainable']:,} trainable) | " + " | ".join(stages) + " |",
             "|---|" + "---:|" * len(stages)]
    lines += [f"| {label} | " + " | ".join(fmt(result[s]) for s in stages) + " |" for label, fmt in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=None, help="profile name or YAML (default: VIDEORFT_PROFILE / tiny)")
    parser.add_argument("--variant", help="a variant of the profile (default: its last run variant)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        result = plan(load_profile(args.profile), args.variant)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0 if all(result[s]["fits"] for s in ("sft", "grpo") if s in result) else 1


if __name__ == "__main__":
    sys.exit(main())
