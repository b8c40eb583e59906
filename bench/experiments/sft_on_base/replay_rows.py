"""Rehearsal rows for SFT on the tiny base: questions about the first VIDEOS videos of the pretraining world (its
seed, never a training or fixture world's), in the VideoRFT schema the SFT trainer reads, answered in the
reasoning format from the scene script: ``<think>{caption}</think><answer>{the option's text}</answer>``.

Why: 495 curated CoTs in a new style make the base forget the question-to-answer link it was pretrained on
(bench/RESULTS.md, "SFT on the pretrained base"); mixing rows of the base's own task into SFT (rehearsal, as
InstructGPT's PPO-ptx mixes pretraining gradients into RL) is the standard guard against that forgetting.

    .venv/bin/python bench/experiments/sft_on_base/replay_rows.py VIDEOS ROWS OUT_DIR [WORK] [COTS.jsonl]

Writes OUT_DIR/cot_sft_set.jsonl: ROWS rehearsal rows drawn evenly over templates-as-they-come (the natural mix),
followed by the rows of COTS.jsonl when given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import numpy as np


def main(videos: str, rows: str, out: str, work: str = "/work/pt_replay", cots: str | None = None) -> None:
    from pretraining.config import load_pretrain_recipe
    from pretraining.data import build_videos, questions, short_answer
    from synthetic.captions import caption

    recipe = load_pretrain_recipe()
    recipe = recipe.model_copy(update={"world": recipe.world.model_copy(update={"videos": int(videos)})})
    picked = []
    for video in build_videos(recipe, Path(work) / "world"):
        text = caption(video.script)
        for q in questions(video, recipe.seed):
            picked.append({"problem": q["problem"], "problem_type": q["problem_type"], "options": q["options"],
                           "process": f"<think>{text}</think>", "solution": f"<answer>{short_answer(q)}</answer>",
                           "path": video.path, "data_type": "video", "template": q["template"],
                           "source": "rehearsal"})
    order = np.random.default_rng(0).permutation(len(picked))[: int(rows)]
    lines = [json.dumps(picked[i]) + "\n" for i in sorted(order)]
    if cots:
        lines += [line + "\n" for line in Path(cots).read_text().splitlines() if line.strip()]
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "cot_sft_set.jsonl").write_text("".join(lines))
    print(f"{len(order)} rehearsal rows of {len(picked)} (+ {len(lines) - len(order)} CoTs) -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
