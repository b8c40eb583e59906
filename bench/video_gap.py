"""Does the tiny base use its video while it trains? The diagnostic behind ``base.align_steps``.

    .venv/bin/python bench/video_gap.py [--align 500] [--steps 1500] [--every 100] [--work DIR]

Trains the base as ``pretraining.base.fit`` does (same model, collator, mix, warm-up and cosine schedule; captions
only for the first ``--align`` steps) and every ``--every`` steps measures, on rows of held-out videos, the
*video gap*: the loss with each row's video swapped for another row's, minus the loss with its own. A gap of 0
means the model answers the same whatever it sees. Reported for captions, for the benchmark-prompt questions of
every template, and for the background question alone (the easiest thing to see).

Writes ``bench/results/video_gap_align<N>.json``. About 7 minutes for 1,500 steps on 2 cores, once the
pretraining world is rendered and its frames decoded (``make pretrain`` leaves both in ``--work``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (CPU torchvision work-around)

PROBE_ROWS = 64


def probes(videos: list[Any], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Fixed held-out rows: one caption per video, random benchmark-prompt questions, background questions."""
    from pretraining.data import rows_of

    held = [v for v in videos if v.held_out][:PROBE_ROWS]
    asked = [r for v in held for r in rows_of(v, seed)["benchmark_prompt"]]
    picked = np.random.default_rng([seed, 5]).permutation(len(asked))[:PROBE_ROWS]
    return {"caption": [rows_of(v, seed)["caption"][0] for v in held],
            "benchmark_prompt": [asked[int(i)] for i in picked],
            "background": [r for r in asked if r["template"] == "background_colour"][:48]}


def mean_loss(model: Any, collator: Any, rows: list[dict[str, Any]], swap: bool) -> float:
    """Mean loss over batches of 16; ``swap`` gives each row the next row's video."""
    import torch

    losses = []
    with torch.no_grad():
        for start in range(0, len(rows), 16):
            chunk = rows[start:start + 16]
            if swap:
                paths = [r["path"] for r in chunk]
                chunk = [{**r, "path": p} for r, p in zip(chunk, paths[1:] + paths[:1], strict=True)]
            losses.append(float(model(**collator(chunk)).loss))
    return float(np.mean(losses))


def main(argv: list[str] | None = None) -> int:
    import torch

    from pretraining import base
    from pretraining.config import load_pretrain_recipe
    from pretraining.data import batch_plan, build_videos, corpus
    from pretraining.loop import lr_factor, param_groups
    from training.sft import VideoSFTCollator
    from videorft.profile import local_state_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--align", type=int, default=500)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--work", default=str(local_state_dir() / "pretraining"))
    args = parser.parse_args(argv)
    recipe, work = load_pretrain_recipe(), Path(args.work)
    cfg = recipe.base
    videos = build_videos(recipe, work / "world")
    torch.manual_seed(recipe.seed)
    model, processor = base.build(recipe)
    rows = corpus(videos, recipe.seed)
    collator = VideoSFTCollator(processor, base.frame_cache(recipe, work, len(videos)))
    probe = probes(videos, recipe.seed)
    plan = batch_plan({k: len(v) for k, v in rows.items()}, cfg.mix, args.steps, cfg.batch_size, recipe.seed,
                      args.align)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.learning_rate, cfg.weight_decay,
                                               {"model.visual": cfg.vision_lr_scale}), betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, args.steps, cfg.warmup_steps))
    records, started = [], time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            model.eval()
            record = {"step": step, **{f"gap_{k}": round(mean_loss(model, collator, v, True)
                                                         - mean_loss(model, collator, v, False), 4)
                                       for k, v in probe.items()}}
            records.append(record)
            print(json.dumps(record), flush=True)
            model.train()
        if step == args.steps:
            break
        kind, picks = plan[step]
        model(**collator([rows[kind][i] for i in picks])).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    out = ROOT / "bench" / "results" / f"video_gap_align{args.align}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "align_steps": args.align, "steps": args.steps,
                               "seconds": round(time.perf_counter() - started), "records": records}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
