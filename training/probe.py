"""The RL probe: a fixed set of held-out questions that GRPO's policy answers greedily every ``probe.every``
optimizer steps (and once before the first), scored with the run's own rule rewards (``format_reward``,
``accuracy_reward``).

A training reward's curve mixes learning with which prompts each step happened to draw; the probe asks the same
questions at every point, so its curve moves only when the policy does, and any two of its points pair question
by question. Written to the run folder:

- ``probe.jsonl``: one line per (step, question): its id, video, template, completion and rewards;
- ``metrics.jsonl``: one line per probe step with ``probe/accuracy_reward`` and ``probe/format_reward`` (the
  asset's curves and Dagster's logs read it).

The probe runs on the main process only; with several processes the others wait at their next collective
operation, which is fine for a probe of tens of questions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROBE_FILE = "probe.jsonl"


def generate_greedy(model: Any, processor: Any, frames: Any, rows: Sequence[dict[str, Any]], max_new_tokens: int,
                    batch_size: int, suppress_tokens: list[int] | None = None) -> list[str]:
    """Each row's greedy completion to its question over its media, batched, as GRPO prompts it."""
    import torch

    from videorft.frames import media_part

    tokenizer = processor.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # every row continues at its end
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            convs = [[{"role": "user", "content": [media_part(r["data_type"], frames.get(r["path"])),
                                                   {"type": "text", "text": r["question"]}]}] for r in chunk]
            inputs = processor.apply_chat_template(convs, tokenize=True, return_dict=True, add_generation_prompt=True,
                                                   return_tensors="pt", processor_kwargs={"padding": True})
            inputs = inputs.to(next(model.parameters()).device)
            with torch.inference_mode():
                ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                     suppress_tokens=suppress_tokens)
            out.extend(processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def score_rows(rows: Sequence[dict[str, Any]], completions: Sequence[str], step: int) -> list[dict[str, Any]]:
    """One probe record per row: the completion and its format and accuracy rewards (the run's own rules)."""
    from training.rewards import accuracy_reward, format_reward

    columns = {"solution": [r["solution"] for r in rows], "problem_type": [r["problem_type"] for r in rows],
               "options": [r.get("options") or [] for r in rows]}
    accuracy = accuracy_reward(list(completions), **columns)
    fmt = format_reward(list(completions))
    return [{"step": step, "sample_id": r["sample_id"], "path": r["path"], "template": r.get("template"),
             "accuracy_reward": a, "format_reward": f, "completion": c}
            for r, c, a, f in zip(rows, completions, accuracy, fmt, strict=True)]


def step_means(records: Sequence[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per probe step, the mean of each reward over the questions: the probe's curve."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_step.setdefault(int(r["step"]), []).append(r)
    return {s: {f"probe/{k}": float(np.mean([r[k] for r in rs])) for k in ("accuracy_reward", "format_reward")}
            for s, rs in sorted(by_step.items())}


def read_probe(output_dir: Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / PROBE_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def paired_change(records: Sequence[dict[str, Any]], key: str = "accuracy_reward", iterations: int = 2000,
                  seed: int = 0) -> dict[str, float] | None:
    """Last probe step minus the first on the same questions, with a 95% interval from a bootstrap over videos
    (questions on one video resampled together): the evidence that the policy, not the draw, changed. None with
    fewer than two probe steps."""
    steps = sorted({int(r["step"]) for r in records})
    if len(steps) < 2:
        return None
    first = {r["sample_id"]: r for r in records if r["step"] == steps[0]}
    last = {r["sample_id"]: r for r in records if r["step"] == steps[-1]}
    ids = sorted(set(first) & set(last))
    diffs = np.array([last[i][key] - first[i][key] for i in ids], dtype=float)
    videos: dict[str, list[int]] = {}
    for n, i in enumerate(ids):
        videos.setdefault(str(first[i]["path"]), []).append(n)
    clusters = list(videos.values())
    rng = np.random.default_rng(seed)
    draws = [diffs[[n for c in rng.integers(0, len(clusters), len(clusters)) for n in clusters[c]]].mean()
             for _ in range(iterations)]
    return {"first_step": steps[0], "last_step": steps[-1], "questions": len(ids), "first": float(
        np.mean([first[i][key] for i in ids])), "last": float(np.mean([last[i][key] for i in ids])),
            "change": float(diffs.mean()), "ci95_low": float(np.percentile(draws, 2.5)),
            "ci95_high": float(np.percentile(draws, 97.5))}


def probe_checks(output_dir: Path, method: str) -> dict[str, dict[str, Any]]:
    """GRPO's ``probe_accuracy_rose`` (a warning): the last probe's accuracy above the first's on the same
    questions, the paired interval's low end above 0; passed as not applicable without two probes."""
    if method != "grpo":
        return {}
    change = paired_change(read_probe(output_dir))
    if change is None:
        return {"probe_accuracy_rose": {"passed": True, "severity": "WARN",
                                        "reason": "not applicable: fewer than two probes (no probe.uri, or a run "
                                                  "shorter than probe.every)"}}
    return {"probe_accuracy_rose": {"passed": change["ci95_low"] > 0, "severity": "WARN",
                                    **{k: round(v, 4) for k, v in change.items()}}}


class Probe:
    """Runs the probe at a step and records it (``probe.jsonl``, a ``metrics.jsonl`` line, a log line); a step
    already in ``probe.jsonl`` (a resumed run) is not asked again."""

    def __init__(self, rows: Sequence[dict[str, Any]], output_dir: Path, every: int, answer: Callable[..., list[str]],
                 log: Callable[[str], None] = print, report: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.rows, self.output_dir, self.every, self.answer, self.log = list(rows), Path(output_dir), every, answer, log
        self.report = report  # where else a probe step's means go (Dagster Pipes, MLflow)
        self.done = {int(r["step"]) for r in read_probe(self.output_dir)}

    def forget_after(self, step: int) -> None:
        """Drop the probes of steps after ``step``: a run resumed from that checkpoint trains them again."""
        kept = [r for r in read_probe(self.output_dir) if int(r["step"]) <= step]
        if self.done - {int(r["step"]) for r in kept}:
            (self.output_dir / PROBE_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        self.done = {int(r["step"]) for r in kept}

    def due(self, step: int, last_step: int) -> bool:
        return step not in self.done and (step % self.every == 0 or step == last_step)

    def run(self, model: Any, step: int) -> dict[str, float]:
        started = time.perf_counter()
        records = score_rows(self.rows, self.answer(model, self.rows), step)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / PROBE_FILE, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        means = step_means(records)[step]
        from training.checks import METRICS_FILE

        line = {"step": step, "time": time.time(), **means}
        with open(self.output_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        if self.report is not None:
            self.report(line)
        self.done.add(step)
        self.log(f"probe at step {step}: accuracy {means['probe/accuracy_reward']:.3f}, format "
                 f"{means['probe/format_reward']:.3f} on {len(records)} held-out questions "
                 f"({time.perf_counter() - started:.0f} s)")
        return means


def probe_callback(probe: Probe) -> Any:
    """A ``TrainerCallback`` that runs ``probe`` before the first step and every ``probe.every`` steps after."""
    from transformers import TrainerCallback

    class ProbeCallback(TrainerCallback):
        def _maybe(self, state: Any, model: Any) -> None:
            if state.is_world_process_zero and probe.due(state.global_step, state.max_steps):
                probe.run(model, state.global_step)

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self._maybe(state, model)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self._maybe(state, model)

    return ProbeCallback()
