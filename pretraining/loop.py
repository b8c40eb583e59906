"""The optimisation loop both pretraining stages share: AdamW, linear warm-up then cosine decay, gradient
clipping, a progress line, and a resumable state file, so a killed pretraining run continues from its last
saved step instead of paying for its steps again.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.jsonl"


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of the peak at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def train(model: Any, loss_of_step: Callable[[int], Any], *, steps: int, learning_rate: float, weight_decay: float,
          warmup: int, folder: Path, name: str, log: Callable[[str], None] = print, log_every: int = 50,
          save_every: int = 250, lr_scales: dict[str, float] | None = None) -> list[dict[str, float]]:
    """Run ``steps`` optimizer steps of ``loss_of_step(step)`` (a scalar tensor) on ``model``; resume from
    ``folder/state.pt`` when it is there. ``lr_scales`` multiplies the learning rate of the parameters whose names
    start with a key. Returns the logged records (also appended to ``metrics.jsonl``)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(param_groups(model, learning_rate, weight_decay, lr_scales or {}),
                                  lr=learning_rate, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps, warmup))
    start = _resume(folder, model, optimizer, scheduler, log, name)
    model.train()
    started, window = time.perf_counter(), []
    for step in range(start, steps):
        loss = loss_of_step(step)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(float(loss.detach()))
        done = step + 1
        if done % log_every == 0 or done == steps:
            elapsed = time.perf_counter() - started
            left = elapsed / (done - start) * (steps - done)
            record = {"step": done, "loss": sum(window) / len(window), "lr": max(scheduler.get_last_lr())}
            window = []
            with open(folder / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            log(f"{name}: step {done}/{steps} loss {record['loss']:.4f} lr {record['lr']:.2e} "
                f"elapsed {_clock(elapsed)} left {_clock(left)}")
        if done % save_every == 0 and done < steps:
            _save(folder, model, optimizer, scheduler, done)
    model.eval()
    return read_metrics(folder)


def param_groups(model: Any, learning_rate: float, weight_decay: float, lr_scales: dict[str, float]
                 ) -> list[dict[str, Any]]:
    """AdamW's groups: weight decay on matrices only, and each name prefix of ``lr_scales`` at its own rate."""
    groups: dict[tuple[float, float], list[Any]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            scale = next((v for k, v in lr_scales.items() if name.startswith(k)), 1.0)
            groups.setdefault((scale, weight_decay if param.ndim >= 2 else 0.0), []).append(param)
    return [{"params": ps, "lr": learning_rate * scale, "weight_decay": wd} for (scale, wd), ps in groups.items()]


def read_metrics(folder: Path) -> list[dict[str, float]]:
    path = folder / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _save(folder: Path, model: Any, optimizer: Any, scheduler: Any, step: int) -> None:
    import torch

    tmp = folder / (STATE_FILE + ".part")
    torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, folder / STATE_FILE)  # a reader never sees half a state


def _resume(folder: Path, model: Any, optimizer: Any, scheduler: Any, log: Callable[[str], None], name: str) -> int:
    import torch

    path = folder / STATE_FILE
    if not path.exists():
        (folder / METRICS_FILE).unlink(missing_ok=True)
        return 0
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    kept = [r for r in read_metrics(folder) if r["step"] <= state["step"]]
    (folder / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    log(f"{name}: resuming at step {state['step']} from {path}")
    return int(state["step"])
