"""Issue 17's GPU figures in one run: SFT and GRPO step time, tokens/s, peak memory and MFU of the paper-3b
architecture (Qwen2.5-VL-3B's sizes, random weights: cost does not depend on the weights), bf16, 16 frames at
128*28*28 pixels, on one GPU; then the semantic reward's group and the ``video_embeddings`` precompute on it.

    .venv/bin/python bench/gpu_figures.py                      # on the GPU machine: paper-3b, bf16, cuda
    .venv/bin/python bench/gpu_figures.py --arch tiny --steps 2 # on a laptop: the same code path, tiny sizes, CPU

What one "step" is here (one GPU, no ZeRO: the paper shards over 8; a step's arithmetic is the same):

* ``sft``: forward and backward of ``--batch`` samples (the video's tokens, the prompt and a ``--completion``
  token answer, loss on the answer), then AdamW. Tokens/s counts every token of the batch.
* ``grpo``: the parts of a GRPO step that cost: ``--group`` completions of ``--completion`` new tokens sampled
  for one prompt (random weights never stop early: every completion is full length), the reference model's
  forward over them (the KL term), and the policy's forward and backward. Generation tokens/s counts the new
  tokens.
* MFU: 6 * N * T training FLOPs (N the language model's parameters plus the vision tower's, each with its own
  token count: merged tokens for the former, patches for the latter; 2 * N * T for forward-only work)
  over the step time and ``--peak-tflops`` (H200 bf16 dense: 989). Attention's quadratic term is left out, so
  this underestimates at long sequences.
* ``semantic_reward``: ``bench/semantic_reward.py``'s measurement (official per-frame algorithm vs ours, first
  visit, cached, precomputed; the precompute's videos/s) run on this device.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (CPU torchvision work-around)

# Qwen2.5-VL-3B-Instruct's config.json (the sizes; the weights are random)
ARCHS: dict[str, dict[str, Any]] = {
    "paper-3b": {
        "text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                 "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936,
                 "tie_word_embeddings": True, "mrope_section": [16, 24, 24]},
        "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                   "out_hidden_size": 2048, "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112},
    },
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": None, "tie_word_embeddings": True,
                 "mrope_section": [2, 3, 3]},
        "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 64,
                   "fullatt_block_indexes": [1], "window_size": 112},
    },
}


def build_model(arch: str, processor: Any, dtype: Any, device: str) -> Any:
    """A random Qwen2.5-VL of ``arch``'s sizes, with the special token ids of ``processor``'s tokenizer."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    sizes = ARCHS[arch]
    tok = processor.tokenizer
    text = dict(sizes["text"])
    section = text.pop("mrope_section")
    text["vocab_size"] = text["vocab_size"] or len(tok)
    config = Qwen2_5_VLConfig(
        text_config={**text, "max_position_embeddings": 32768,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": section},
                     "bos_token_id": tok.convert_tokens_to_ids("<|endoftext|>"), "eos_token_id": tok.eos_token_id,
                     "pad_token_id": tok.pad_token_id},
        vision_config=sizes["vision"],
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).to(dtype)
    model.generation_config.eos_token_id = [tok.eos_token_id]
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def parameter_counts(model: Any) -> tuple[int, int]:
    """(language model incl. embeddings, vision tower incl. merger)."""
    vision = sum(p.numel() for p in model.model.visual.parameters())
    return sum(p.numel() for p in model.parameters()) - vision, vision


def video_inputs(processor: Any, frames: int, side_h: int, side_w: int, prompt: str, answer: str | None,
                 batch: int) -> Any:
    import numpy as np

    from videorft.frames import media_part

    video = (np.random.default_rng(0).random((frames, side_h, side_w, 3)) * 255).astype(np.uint8)
    convs = []
    for _ in range(batch):
        conv = [{"role": "user", "content": [media_part("video", video), {"type": "text", "text": prompt}]}]
        if answer is not None:
            conv.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        convs.append(conv)
    return processor.apply_chat_template(convs, tokenize=True, return_dict=True, return_tensors="pt",
                                         add_generation_prompt=answer is None,
                                         processor_kwargs={"padding": True})


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB -> GiB (process peak RSS)


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def sft_step_figures(model: Any, inputs: Any, steps: int, device: str, peak_tflops: float,
                     counts: tuple[int, int]) -> dict[str, Any]:
    import torch

    inputs = inputs.to(device)
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    model.train()
    times = []
    reset_peak(device)
    for step in range(steps + 1):  # the first step pays allocation and kernel selection: not counted
        synchronize(device)
        t0 = time.perf_counter()
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        if step:
            times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    tokens = int(inputs["attention_mask"].sum())
    patches = int(inputs["video_grid_thw"].prod(-1).sum())
    flops = 6 * counts[0] * tokens + 6 * counts[1] * patches
    del optimizer
    return {"step_seconds": seconds, "steps": times, "tokens_per_step": tokens, "vision_patches_per_step": patches,
            "tokens_per_second": tokens / seconds, "peak_memory_gib": peak_gib(device),
            "tflops_per_second": flops / seconds / 1e12, "mfu": flops / seconds / (peak_tflops * 1e12)}


def grpo_step_figures(model: Any, processor: Any, prompt_inputs: Any, group: int, completion: int, steps: int,
                      device: str, peak_tflops: float, counts: tuple[int, int]) -> dict[str, Any]:
    import copy

    import torch

    reference = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    prompt_inputs = prompt_inputs.to(device)
    prompt_len = prompt_inputs["input_ids"].shape[1]
    vision = {k: v for k, v in prompt_inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    parts: dict[str, list[float]] = {"generate": [], "reference_forward": [], "policy_forward_backward": [],
                                     "step": []}
    reset_peak(device)
    for step in range(steps + 1):
        synchronize(device)
        t0 = time.perf_counter()
        model.eval()
        with torch.inference_mode():
            sequences = model.generate(**prompt_inputs, do_sample=True, temperature=1.0, max_new_tokens=completion,
                                       min_new_tokens=completion, num_return_sequences=group)
        synchronize(device)
        t1 = time.perf_counter()
        sequences = sequences.clone()
        mask = torch.ones_like(sequences)
        batch_vision = {k: (torch.cat([v] * group) if k.startswith("pixel_values") else v.repeat(group, 1))
                        for k, v in vision.items()}
        types = prompt_inputs.get("mm_token_type_ids")
        if types is not None:
            batch_vision["mm_token_type_ids"] = torch.cat(
                [types.repeat(group, 1), torch.zeros(group, completion, dtype=types.dtype, device=types.device)], 1)
        with torch.inference_mode():
            reference(input_ids=sequences, attention_mask=mask, **batch_vision)
        synchronize(device)
        t2 = time.perf_counter()
        model.train()
        logits = model(input_ids=sequences, attention_mask=mask, **batch_vision).logits[:, prompt_len - 1:-1]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, sequences[:, prompt_len:, None]).squeeze(-1)
        advantages = torch.randn(group, 1, device=logp.device)
        (-(advantages * logp).mean()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        t3 = time.perf_counter()
        if step:
            for name, seconds in (("generate", t1 - t0), ("reference_forward", t2 - t1),
                                  ("policy_forward_backward", t3 - t2), ("step", t3 - t0)):
                parts[name].append(seconds)
    median = {k: statistics.median(v) for k, v in parts.items()}
    tokens = group * sequences.shape[1]
    patches = int(prompt_inputs["video_grid_thw"].prod(-1).sum()) * group
    train_flops = 6 * counts[0] * tokens + 6 * counts[1] * patches
    reference_flops = 2 * counts[0] * tokens + 2 * counts[1] * patches
    del reference, optimizer
    return {"seconds": median, "group": group, "completion_tokens": completion, "prompt_tokens": prompt_len,
            "generated_tokens_per_second": group * completion / median["generate"],
            "policy_tokens_per_second": tokens / median["policy_forward_backward"],
            "peak_memory_gib": peak_gib(device),
            "mfu_policy_forward_backward": train_flops / median["policy_forward_backward"] / (peak_tflops * 1e12),
            "mfu_step": (train_flops + reference_flops) / median["step"] / (peak_tflops * 1e12),
            "all": parts}


def semantic_reward_figures(args: argparse.Namespace) -> dict[str, Any]:
    """``bench/semantic_reward.py`` on this device, its JSON read back."""
    import subprocess

    out = Path(args.out).with_name(Path(args.out).stem + "_semantic_reward.json")
    command = [sys.executable, str(ROOT / "bench" / "semantic_reward.py"), "--model", args.siglip,
               "--group", str(args.group), "--frames", str(args.frames), "--repeats", "3", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-2000:], "command": " ".join(command)}
    return {"command": " ".join(command), **json.loads(out.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="paper-3b")
    parser.add_argument("--device", default=None, help="default: cuda when there is one, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=28 * 8, help="frame height (28*8 x 28*16 = 128*28*28 px)")
    parser.add_argument("--width", type=int, default=28 * 16)
    parser.add_argument("--batch", type=int, default=1, help="SFT samples per step (the paper: 1 per GPU)")
    parser.add_argument("--completion", type=int, default=512, help="answer / completion tokens")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up step)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense bf16 peak")
    parser.add_argument("--siglip", default="bench-siglip-b16", help="semantic reward model ('' skips that part)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_figures.json"))
    args = parser.parse_args()

    import torch

    from training.model import load_processor

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.startswith("cuda") else "float32"))
    processor = load_processor("tiny-random")  # the tokenizer's vocabulary is small; the model's is 3B's
    processor.tokenizer.padding_side = "left"
    model = build_model(args.arch, processor, dtype, device)
    # the paper recipes' setting (transformers 5 renames it; the old name still works there)
    getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    counts = parameter_counts(model)
    prompt = "What colour is the background of the video? Think first, then answer with the option's letter."
    answer = " ".join(["the"] * args.completion)  # one token per word in the tiny tokenizer: the answer's length
    result: dict[str, Any] = {
        "command": "python bench/gpu_figures.py " + " ".join(sys.argv[1:]), "arch": args.arch, "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor(),
        "dtype": str(dtype), "torch": torch.__version__, "parameters": {"language": counts[0], "vision": counts[1]},
        "frames": args.frames, "frame_pixels": args.height * args.width, **{k: getattr(args, k) for k in (
            "batch", "completion", "group", "steps", "peak_tflops")},
    }
    sft_inputs = video_inputs(processor, args.frames, args.height, args.width, prompt, answer, args.batch)
    result["sft"] = sft_step_figures(model, sft_inputs, args.steps, device, args.peak_tflops, counts)
    print(json.dumps({"sft": {k: v for k, v in result["sft"].items() if k != "steps"}}, indent=1), flush=True)
    prompt_inputs = video_inputs(processor, args.frames, args.height, args.width, prompt, None, 1)
    result["grpo"] = grpo_step_figures(model, processor, prompt_inputs, args.group, args.completion, args.steps,
                                       device, args.peak_tflops, counts)
    print(json.dumps({"grpo": {k: v for k, v in result["grpo"].items() if k != "all"}}, indent=1), flush=True)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if args.siglip:
        result["semantic_reward"] = semantic_reward_figures(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
