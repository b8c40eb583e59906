"""Continue the shipped tiny base on its pretraining world with the benchmarks' prompt answered in the reasoning
format: ``<think>{the video's caption}</think><answer>{short answer}</answer>`` (captions and short-prompt QA
stay in the mix). What an instruct model that already writes a think-then-answer reply would look like at this
size; SFT then has only the curated CoTs' style to learn.

    .venv/bin/python bench/experiments/sft_on_base/reasoning_continuation.py STEPS OUT_DIR LEARNING_RATE [WORK]

WORK is the pretraining work folder (default /work/pt; the world is rendered there when missing).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import training  # noqa: F401  (CPU torchvision work-around)

MIX = {"caption": 0.15, "qa": 0.25, "benchmark_prompt": 0.6}


def main(steps: str, out: str, learning_rate: str, work: str = "/work/pt") -> None:
    from pretraining.base import frame_cache
    from pretraining.build import world
    from pretraining.config import load_pretrain_recipe
    from pretraining.data import _row, batch_plan, corpus, questions, short_answer
    from pretraining.loop import train
    from synthetic.captions import caption
    from training.model import load_model_and_processor
    from training.prompts import question_text
    from training.sft import VideoSFTCollator, configure_processor

    recipe, folder = load_pretrain_recipe(), Path(out)
    videos = world(recipe, Path(work))
    rows = corpus(videos, recipe.seed)
    rows["benchmark_prompt"] = [
        _row(v, "benchmark_prompt", question_text(q["problem"], q["problem_type"], q["options"]),
             f"<think>{caption(v.script)}</think><answer>{short_answer(q)}</answer>", q["template"])
        for v in videos if not v.held_out for q in questions(v, recipe.seed)]
    model, processor = load_model_and_processor("tiny-pretrained", "float32", None)
    configure_processor(processor, recipe.video.min_pixels, recipe.video.max_pixels)
    processor.tokenizer.padding_side = "right"
    collator = VideoSFTCollator(processor, frame_cache(recipe, Path(work), len(videos)))
    plan = batch_plan({k: len(v) for k, v in rows.items()}, MIX, int(steps), 16, 1, 0)

    def loss_of_step(step: int) -> object:
        kind, picks = plan[step]
        return model(**collator([rows[kind][i] for i in picks])).loss

    started = time.time()
    train(model, loss_of_step, steps=int(steps), learning_rate=float(learning_rate), weight_decay=0.0, warmup=50,
          folder=folder / "state", name="continuation", log=lambda m: print(m, flush=True))
    print(f"trained in {time.time() - started:.0f} s")
    model.save_pretrained(str(folder / "model"))
    processor.tokenizer.padding_side = "left"
    processor.save_pretrained(str(folder / "model"))


if __name__ == "__main__":
    main(*sys.argv[1:5])
