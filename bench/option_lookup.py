"""Can the tiny base's language model learn in-context option lookup? Why the base answers a multiple-choice
question with the option's text rather than its letter (``pretraining.data``).

    .venv/bin/python bench/option_lookup.py [--steps 2000] [--seeds 0,1] [--every 500]

Options are shuffled in every question, so writing the right letter needs, after perceiving, one step more:
finding the seen option in the list and copying the letter before it. This bench isolates that step, text
only: "Options: A. blue square / B. red circle / ... Which option is the red circle? Answer with the option's
letter." -> "B", over the option texts of the synthetic world's questions, relabelled in a fresh order per row.
It trains the language model of the shipped base's size (``configs/tiny/pretrain.yaml`` ``base``, the tiny
tokenizer, vision unused) with the pretraining loop (AdamW, warm-up, cosine) at the recipe's learning rate,
and scores greedy answers to 400 held-out lists every ``--every`` steps against uniform chance.

Writes ``bench/results/option_lookup.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (CPU torchvision work-around)

LETTERS = "ABCDEFGH"


def option_lists(videos: int = 300) -> list[list[str]]:
    """The option texts of the synthetic world's multiple-choice questions (a world of its own seed)."""
    from synthetic.qa import candidate_questions
    from synthetic.world import build_scripts
    from videorft.profile import WorldConfig

    scripts = build_scripts(WorldConfig(seed=7, videos=videos, images=0, questions=0))[0]
    rng = np.random.default_rng(0)
    return [[o.split(". ", 1)[1] for o in q["options"]] for s in scripts for q in candidate_questions(s, rng)
            if q["options"]]


def exercise(lists: list[list[str]], rng: np.random.Generator) -> tuple[str, str, int]:
    texts = lists[int(rng.integers(len(lists)))]
    texts = [texts[int(i)] for i in rng.permutation(len(texts))]
    pick = int(rng.integers(len(texts)))
    listing = "\n".join(f"{LETTERS[i]}. {t}" for i, t in enumerate(texts))
    return (f"Options:\n{listing}\nWhich option is the {texts[pick]}? Answer with the option's letter.",
            LETTERS[pick], len(texts))


def run(seed: int, steps: int, every: int, batch: int, lists: list[list[str]]) -> list[dict[str, float]]:
    import torch

    from pretraining.config import load_pretrain_recipe
    from pretraining.loop import train
    from training.sft import assistant_labels
    from training.tiny import TinySpec, build_tiny_model, build_tiny_processor

    cfg = load_pretrain_recipe().base
    processor = build_tiny_processor()
    tok = processor.tokenizer
    spec = TinySpec(hidden_size=cfg.hidden_size, layers=cfg.layers, heads=cfg.heads, kv_heads=cfg.kv_heads,
                    intermediate_size=cfg.intermediate_size, vision_depth=1, vision_hidden=32, vision_heads=2,
                    seed=seed)
    model = build_tiny_model(processor, spec)
    train_lists, test_lists = lists[: len(lists) * 4 // 5], lists[len(lists) * 4 // 5:]
    rng = np.random.default_rng([seed, 1])
    test = [exercise(test_lists, np.random.default_rng([seed, 2, i])) for i in range(400)]
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    header = len(tok("assistant\n")["input_ids"])
    curve: list[dict[str, float]] = []

    def chat(question: str, answer: str | None) -> str:
        turns = [{"role": "user", "content": [{"type": "text", "text": question}]}]
        if answer is not None:
            turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=answer is None)

    def accuracy() -> float:
        tok.padding_side = "left"
        right = 0
        model.eval()
        for start in range(0, len(test), 50):
            chunk = test[start:start + 50]
            inputs = tok([chat(q, None) for q, _, _ in chunk], return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
            texts = tok.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            right += sum(t.strip()[:1] == a for t, (_, a, _) in zip(texts, chunk, strict=True))
        model.train()
        tok.padding_side = "right"
        return right / len(test)

    def loss_of_step(step: int) -> object:
        if step % every == 0:
            curve.append({"step": step, "accuracy": accuracy()})
        rows = [exercise(train_lists, rng) for _ in range(batch)]
        inputs = tok([chat(q, a) for q, a, _ in rows], return_tensors="pt", padding=True)
        labels = assistant_labels(inputs["input_ids"], inputs["attention_mask"], im_start, header, set())
        return model(**inputs, labels=labels).loss

    with tempfile.TemporaryDirectory() as folder:
        train(model, loss_of_step, steps=steps, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
              warmup=cfg.warmup_steps, folder=Path(folder), name=f"lookup seed {seed}", log=lambda m: None,
              save_every=steps + 1)
    curve.append({"step": steps, "accuracy": accuracy()})
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "option_lookup.json"))
    args = parser.parse_args(argv)
    lists = option_lists()
    test = [exercise(lists, np.random.default_rng([9, i])) for i in range(2000)]
    chance = float(np.mean([1 / n for _, _, n in test]))
    started = time.perf_counter()
    curves = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        curves[seed] = run(seed, args.steps, args.every, args.batch, lists)
        print(f"seed {seed}: " + ", ".join(f"step {p['step']}: {100 * p['accuracy']:.1f}%" for p in curves[seed])
              + f" (chance {100 * chance:.1f}%)", flush=True)
    result = {"command": f"python bench/option_lookup.py --steps {args.steps} --seeds {args.seeds} --every "
                         f"{args.every} --batch {args.batch}", "chance": round(chance, 4),
              "seconds": round(time.perf_counter() - started), "curves": curves}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
