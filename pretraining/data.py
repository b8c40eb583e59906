"""The pretraining corpus: the pretraining world's videos split into train and held-out, and what each video
teaches: its caption (``synthetic.captions``) and direct-answer questions from every QA template
(``synthetic.qa``), the answer alone, no ``<think>``.

Rows are in the shape ``training.sft.VideoSFTCollator`` reads (``path``, ``data_type``, ``question``,
``process``, ``solution``), so the base learns through the same chat template, processor and label masking as
SFT. Three kinds of row: ``caption`` ("Describe the video." -> the caption), ``qa`` (the question with a short
instruction -> the answer) and ``benchmark_prompt`` (the benchmarks' own reasoning prompt,
``training.prompts`` -> the answer alone), so a benchmark question gets a short answer from the base, scored on
what it perceives.

A multiple-choice answer is the right option's text ("red circle"), not its letter. Options are shuffled in
every question, so a letter needs one more step after perceiving: finding the seen option in the list and
copying the letter before it. In this project's earlier builds, with lookup exercises in the mix, the base of
this size stayed at chance on letters within the CPU budget, and so would sit at chance on every multiple-choice
question whatever it saw (``bench/option_lookup.py`` isolates that step, text only: 44% after 2,000 steps from scratch,
chance 28%, still rising; ``bench/RESULTS.md``).
Scoring credits an answer that is exactly one option's text (``videorft.answers.option_letter``).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthetic.captions import caption
from synthetic.qa import candidate_questions
from synthetic.world import build_world
from training.prompts import question_text

KINDS = ("caption", "qa", "benchmark_prompt")
CAPTION_PROMPTS = ("Describe the video.", "What happens in this video?", "Describe the video in detail.",
                   "Write a caption for this video.")
SHORT_INSTRUCTION = {
    "multiple choice": "Answer with the option's text from the given choices directly.",
    "numerical": "Answer with a number.",
    "regression": "Answer with a number.",
    "OCR": "Answer with the text only.",
    "free-form": "Answer in one sentence.",
}


@dataclass(frozen=True)
class Video:
    """One video of the pretraining world: its scene script, file and split."""

    index: int
    path: str
    script: dict[str, Any]
    held_out: bool


def build_videos(recipe: Any, root: str | Path, progress: Any = None) -> list[Video]:
    """Render (or reuse) the pretraining world under ``root`` and split it: the last ``held_out_videos`` are never
    trained on."""
    manifest = build_world(recipe.world, str(root), progress=progress)
    folder = Path(manifest.root) / "videos"
    out = []
    for i in range(recipe.world.videos):
        script = json.loads((folder / f"v{i:04d}.json").read_text())
        out.append(Video(i, str(folder / f"v{i:04d}.mp4"), script, held_out=i >= recipe.train_videos))
    return out


def answer_of(question: dict[str, Any]) -> str:
    return question["solution"].removeprefix("<answer>").removesuffix("</answer>")


def short_answer(q: dict[str, Any]) -> str:
    """What the base is taught to say: the answer, or for multiple choice the right option's text."""
    if not q["options"]:
        return q["answer"]
    return next(o.split(". ", 1)[1] for o in q["options"] if o.split(". ", 1)[0] == q["answer"])


def questions(video: Video, seed: int) -> list[dict[str, Any]]:
    """Every template's questions about one video (options shuffled per question), with their answers."""
    rng = np.random.default_rng([seed, 7, video.index])
    out = []
    for q in candidate_questions(video.script, rng):
        out.append({"problem": q["problem"], "problem_type": q["problem_type"], "options": q["options"],
                    "answer": answer_of(q), "template": q["meta"]["template"], "category": q["category"]})
    return out


def _row(video: Video, kind: str, question: str, answer: str, template: str) -> dict[str, Any]:
    return {"path": video.path, "data_type": "video", "question": question, "process": "", "solution": answer,
            "kind": kind, "template": template, "video_index": video.index}


def short_prompt(q: dict[str, Any]) -> str:
    body = q["problem"]
    if q["problem_type"] == "multiple choice":
        body += "\n" + "\n".join(q["options"])
    return f"{body}\n{SHORT_INSTRUCTION[q['problem_type']]}"


def rows_of(video: Video, seed: int) -> dict[str, list[dict[str, Any]]]:
    """A video's rows by kind: its caption under each caption prompt, and each of its questions with a short
    prompt and with the benchmarks' prompt."""
    text = caption(video.script)
    qs = questions(video, seed)
    return {
        "caption": [_row(video, "caption", p, text, "caption") for p in CAPTION_PROMPTS],
        "qa": [_row(video, "qa", short_prompt(q), short_answer(q), q["template"]) for q in qs],
        "benchmark_prompt": [_row(video, "benchmark_prompt", question_text(q["problem"], q["problem_type"],
                                                                            q["options"]), short_answer(q),
                                  q["template"]) for q in qs],
    }


def corpus(videos: list[Video], seed: int) -> dict[str, list[dict[str, Any]]]:
    """The training rows of the non-held-out videos, by kind."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for video in videos:
        if not video.held_out:
            for kind, rows in rows_of(video, seed).items():
                out[kind].extend(rows)
    return out


def batch_plan(sizes: dict[str, int], mix: dict[str, float], steps: int, batch: int, seed: int,
               align_steps: int = 0) -> list[tuple[str, list[int]]]:
    """``steps`` batches, each of one kind so a batch pads to rows of one length: captions for the first
    ``align_steps``, then drawn by ``mix``. Rows are taken in a fresh random order per pass over each kind.
    Deterministic by seed, so a resumed run sees the same batches from where it stopped."""
    rng = np.random.default_rng([seed, 11])
    kinds = [k for k in KINDS if mix.get(k, 0) > 0 and sizes.get(k, 0) > 0]
    weights = np.array([mix[k] for k in kinds], dtype=float)
    drawn = ["caption"] * align_steps + [str(k) for k in rng.choice(kinds, size=steps - align_steps,
                                                                    p=weights / weights.sum())]
    queues: dict[str, deque[int]] = {k: deque() for k in KINDS}
    plan = []
    for kind in drawn:
        queue = queues[kind]
        while len(queue) < batch:
            queue.extend(int(i) for i in rng.permutation(sizes[kind]))
        plan.append((kind, [queue.popleft() for _ in range(batch)]))
    return plan
