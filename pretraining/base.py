"""The tiny Qwen2.5-VL base: a real ``Qwen2_5_VLForConditionalGeneration`` with the project's tokenizer and
processor (``training.tiny``), its vision tower, merger and language model trained together on the pretraining
world's captions and direct-answer questions, the way an instruct model is trained before any reasoning
fine-tune.

Batches go through SFT's own collator (``training.sft.VideoSFTCollator``: chat template, processor, labels on the
answer only) on frames decoded by SFT's frame cache, at the recipe's frames and pixels, so the base learns
exactly the inputs SFT and evaluation will give it. ``held_out_accuracy`` scores it greedily on questions about
videos it never saw, with the benchmarks' prompt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pretraining.config import PretrainRecipe
from pretraining.data import Video, batch_plan, corpus, questions
from pretraining.loop import train


def build(recipe: PretrainRecipe) -> tuple[Any, Any]:
    """The untrained base of the recipe's sizes and its processor, set to the recipe's pixel budget."""
    from training.model import keep_frame_sizes
    from training.sft import configure_processor
    from training.tiny import TinySpec, build_tiny_model, build_tiny_processor

    cfg = recipe.base
    processor = build_tiny_processor()
    keep_frame_sizes(processor)  # as load_processor does for SFT, GRPO and evaluation
    configure_processor(processor, recipe.video.min_pixels, recipe.video.max_pixels)
    spec = TinySpec(hidden_size=cfg.hidden_size, layers=cfg.layers, heads=cfg.heads, kv_heads=cfg.kv_heads,
                    intermediate_size=cfg.intermediate_size, vision_depth=cfg.vision_depth,
                    vision_hidden=cfg.vision_hidden, vision_heads=cfg.vision_heads, seed=recipe.seed)
    return build_tiny_model(processor, spec), processor


def frame_cache(recipe: PretrainRecipe, work: Path, videos: int) -> Any:
    from videorft.frames import FrameCache

    return FrameCache(recipe.video, disk_dir=work / "frames", capacity=videos + 1)


def fit(recipe: PretrainRecipe, videos: Sequence[Video], folder: Path, work: Path,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the base on the training videos' rows by the recipe's mix; save it with its processor in ``folder``."""
    from training.sft import VideoSFTCollator

    cfg = recipe.base
    model, processor = build(recipe)
    rows = corpus(list(videos), recipe.seed)
    frames = frame_cache(recipe, work, len(videos))
    collator = VideoSFTCollator(processor, frames)
    plan = batch_plan({k: len(v) for k, v in rows.items()}, cfg.mix, cfg.steps, cfg.batch_size, recipe.seed,
                      cfg.align_steps)
    log(f"base: {sum(p.numel() for p in model.parameters()):,} parameters; "
        + ", ".join(f"{len(v):,} {k} rows" for k, v in rows.items()))

    def loss_of_step(step: int) -> Any:
        kind, picks = plan[step]
        return model(**collator([rows[kind][i] for i in picks])).loss

    records = train(model, loss_of_step, steps=cfg.steps, learning_rate=cfg.learning_rate,
                    weight_decay=cfg.weight_decay, warmup=cfg.warmup_steps, folder=work / "base", name="base", log=log,
                    lr_scales={"model.visual": cfg.vision_lr_scale})
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    processor.tokenizer.padding_side = "left"  # generation continues every row at its end
    processor.save_pretrained(str(folder))
    return {"final_loss": records[-1]["loss"] if records else None,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vision_parameters": sum(p.numel() for p in model.model.visual.parameters()),
            "rows": {k: len(v) for k, v in rows.items()}}


def held_out_accuracy(model: Any, processor: Any, recipe: PretrainRecipe, videos: Sequence[Video], work: Path,
                      limit: int, batch: int = 16) -> dict[str, Any]:
    """Greedy short answers to up to ``limit`` questions about held-out videos, asked with the benchmarks' prompt;
    accuracy (``lenient`` scoring: the base answers with an option's text, which the reference protocols do not
    read) and uniform chance per template and over the multiple-choice ones."""
    import torch

    from evaluation.scoring import sample_score
    from training.prompts import question_text
    from videorft.frames import media_part

    held = [v for v in videos if v.held_out]
    asked = [(v, q) for v in held for q in questions(v, recipe.seed)]
    rng = np.random.default_rng([recipe.seed, 41])
    asked = [asked[int(i)] for i in sorted(rng.permutation(len(asked))[:limit])]
    frames = frame_cache(recipe, work, len(held))
    processor.tokenizer.padding_side = "left"
    model.eval()
    scores: dict[str, list[float]] = defaultdict(list)
    chance: dict[str, list[float]] = defaultdict(list)
    for start in range(0, len(asked), batch):
        chunk = asked[start:start + batch]
        convs = [[{"role": "user", "content": [
            media_part("video", frames.get(v.path)),
            {"type": "text", "text": question_text(q["problem"], q["problem_type"], q["options"])}]}]
            for v, q in chunk]
        inputs = processor.apply_chat_template(convs, tokenize=True, return_dict=True, add_generation_prompt=True,
                                               return_tensors="pt", processor_kwargs={"padding": True})
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for (_, q), text in zip(chunk, texts, strict=True):
            scores[q["template"]].append(sample_score(q["problem_type"], text, q["answer"], q["options"], "lenient"))
            if q["options"]:
                chance[q["template"]].append(1 / len(q["options"]))
    mc = [t for t in scores if chance[t]]
    return {
        "questions": len(asked),
        "per_template": {t: {"questions": len(v), "accuracy": round(float(np.mean(v)), 4),
                             **({"chance": round(float(np.mean(chance[t])), 4)} if chance[t] else {})}
                         for t, v in sorted(scores.items())},
        "multiple_choice_accuracy": round(float(np.mean([s for t in mc for s in scores[t]])), 4) if mc else None,
        "multiple_choice_chance": round(float(np.mean([c for t in mc for c in chance[t]])), 4) if mc else None,
    }
