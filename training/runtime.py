"""What the two entry points share: the command line, the run folder, resume, DeepSpeed set-up, metrics
(to a JSONL file, MLflow and Dagster Pipes) and publishing the final checkpoint.

A run folder (``--output-dir``) holds the Trainer's ``checkpoint-N`` folders, ``metrics.jsonl`` (one JSON
line per logging step) and, at the end, ``final/`` and ``result.json``. Starting again on the same folder
resumes from the last checkpoint: finished steps are not repeated. With ``--publish-to URI`` the final
checkpoint is copied to ``URI/v-<hash>/`` (local or ``s3://``), ``<hash>`` being the content hash of its
files, which the Dagster asset uses as its data version.

Launched by Dagster Pipes (``DAGSTER_PIPES_CONTEXT`` set), every logging step is streamed to Dagster as a
log line and a custom message, and the result as the asset's materialization and checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.checks import METRICS_FILE, run_checks
from training.config import Method, Recipe, RecipeError, load_recipe
from training.data import DataError
from training.model import ModelLoadError
from training.probe import probe_checks
from videorft.lifetime import guard_elastic_rank
from videorft.pipes import pipes_session
from videorft.profile import ProfileError, resolve_frames
from videorft.progress import pace_text
from videorft.storage import as_path

RESULT_FILE = "result.json"
# errors a user fixes by changing the command or the files (exit 2 with the message, no traceback)
USER_ERRORS: tuple[type[BaseException], ...] = (RecipeError, DataError, ProfileError, ModelLoadError)


def build_parser(method: Method) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m training.{method}",
        description=f"{'Supervised fine-tuning' if method == 'sft' else 'GRPO'} of Qwen2.5-VL on video QA "
        f"(VideoRFT). Resumes from the last checkpoint in --output-dir.")
    parser.add_argument("--config", required=True, help=f"recipe YAML (e.g. configs/tiny/{method}.yaml)")
    parser.add_argument("--model", help="hub id, local checkpoint folder or 'tiny-random' (overrides the recipe)")
    parser.add_argument("--data", help="data file or folder, local or s3:// (overrides the recipe)")
    parser.add_argument("--output-dir", required=True, help="run folder: checkpoints, metrics, final model")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    parser.add_argument("--deepspeed", help="DeepSpeed JSON config (overrides the recipe)")
    parser.add_argument("--publish-to", help="copy the final checkpoint to URI/v-<hash>/ (local or s3://)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.add_argument("--profile", help="profile name or YAML (default: $VIDEORFT_PROFILE or tiny)")
    parser.add_argument("--frames", type=int, help="frames per video (default: the profile's video.train)")
    parser.add_argument("--max-pixels", type=int, help="pixel budget per frame (default: video.train)")
    parser.add_argument("--min-pixels", type=int, help="smallest frame in pixels (default: video.train)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set reward.semantic.mode=ungated (repeatable)")
    if method == "grpo":
        parser.add_argument("--probe", help="held-out probe set (RL set schema) answered greedily every probe.every "
                            "steps (overrides the recipe's probe.uri; training.probe)")
    return parser


@dataclass
class RunSpec:
    method: Method
    recipe: Recipe
    model: str
    data_uri: str
    output_dir: Path
    max_steps: int | None
    deepspeed: str | None
    publish_to: str | None
    resume: bool
    video: Any = None  # videorft.profile.FrameSpec: what this run decodes
    storage_root: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def resolve_run(args: argparse.Namespace, method: Method) -> RunSpec:
    from videorft.profile import load_profile, project_root

    probe = [f"probe.uri={args.probe}"] if getattr(args, "probe", None) else []
    recipe = load_recipe(args.config, method, [*args.set, *probe])
    profile = load_profile(args.profile)
    data_uri = args.data or recipe.data.uri
    if not data_uri:
        raise DataError("no training data: pass --data URI or set data.uri in the recipe")
    video = resolve_frames(profile.video.train, f"profile {profile.name} video.train", frames=args.frames,
                           max_pixels=args.max_pixels, min_pixels=args.min_pixels)
    deepspeed = args.deepspeed or recipe.deepspeed
    if deepspeed and not Path(deepspeed).is_absolute():
        candidate = project_root() / deepspeed
        deepspeed = str(candidate if candidate.exists() else Path(deepspeed).resolve())
    return RunSpec(method=method, recipe=recipe, model=args.model or recipe.model.name_or_path, data_uri=data_uri,
                   output_dir=Path(args.output_dir).resolve(), max_steps=args.max_steps, deepspeed=deepspeed,
                   publish_to=args.publish_to, resume=not args.no_resume, video=video,
                   storage_root=profile.resolved_storage_root())


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder (one with trainer state), or None."""
    if not output_dir.is_dir():
        return None
    done = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()
            and p.name.split("-")[-1].isdigit()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


LOSS_MEDIA_FOLDER = "loss_media"


def record_loss_media(output_dir: str | Path, media: list[str], step: int | None = None) -> None:
    """Append the media this rank fed to a loss forward to ``<output_dir>/loss_media/rank-<RANK>.jsonl``:
    what each process of a multi-process run trained on (each rank must see its own share of the data)."""
    folder = Path(output_dir) / LOSS_MEDIA_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"step": step, "media": list(media)})
    with (folder / f"rank-{int(os.environ.get('RANK', '0'))}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def ensure_single_process_distributed_env() -> None:
    """DeepSpeed wants a process group even for one process: give it a local one unless a launcher did."""
    if "RANK" in os.environ or "LOCAL_RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})


def trainer_arguments(spec: RunSpec, defaults: dict[str, Any]) -> Any:
    """The TRL config: our defaults < the recipe's ``trainer`` section < the command line."""
    from training.config import trl_config_class

    kwargs: dict[str, Any] = {**defaults, **spec.recipe.trainer}
    kwargs["output_dir"] = str(spec.output_dir)
    if spec.max_steps is not None:
        kwargs["max_steps"] = spec.max_steps
    if spec.deepspeed:
        ensure_single_process_distributed_env()
        kwargs["deepspeed"] = spec.deepspeed
    # launched from an asset, the step metrics go to its MLflow run through MlflowMetricsCallback (which skips
    # constant ones), not transformers' own MLflow callback
    kwargs["report_to"] = [r for r in (spec.recipe.trainer.get("report_to") or []) if r not in ("none", "mlflow")]
    # transformers 5 turns bf16 autocast on by default, which on a CPU without bf16 units makes a float32
    # model's steps ~5x slower; TRL turns gradient checkpointing on. Both follow the recipe instead.
    kwargs.setdefault("bf16", spec.recipe.model.dtype == "bfloat16")
    kwargs.setdefault("gradient_checkpointing", False)
    return trl_config_class(spec.method)(**kwargs)


# -- metrics -------------------------------------------------------------------------------------------------

def _finite(logs: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in logs.items():
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


# What one logged step's line shows, in this order (the rest is in metrics.jsonl, MLflow and the asset's curves)
STEP_LINE_KEYS = ("loss", "reward", "kl", "mean_token_accuracy", "learning_rate", "train_runtime")


def step_line(record: dict[str, Any]) -> str:
    """``loss=0.41 reward=0.62 (format_reward 1, accuracy_reward 0.25) kl=0.003 ...``: the metrics that matter,
    reward components by their short name."""
    parts = [f"{k}={record[k]:.4g}" for k in STEP_LINE_KEYS if k in record]
    components = [(k.split("/")[1], v) for k, v in record.items() if k.startswith("rewards/") and k.endswith("/mean")]
    if components:
        parts.insert(2 if "reward" in record else len(parts),
                     "(" + ", ".join(f"{name} {value:.3g}" for name, value in components) + ")")
    return " ".join(parts)


# Within a chart section MLflow keeps the order metrics first arrive: what GRPO and SFT are judged on comes first
MLFLOW_FIRST = ("reward", "rewards/", "kl", "loss", "mean_token_accuracy")
# MLflow 3's run page sorts its chart sections by name, capitals first, and puts un-prefixed metrics last
# (measured: "completions" came first and reward/KL last). What a run is judged on is also sent under a
# capitalised section, so it is the first row of charts; TRL's own names stay as they are.
HEADLINE = {"GRPO": ("reward", "rewards/accuracy_reward/mean", "kl"), "SFT": ("loss", "mean_token_accuracy")}


def headline_metrics(logs: dict[str, float]) -> dict[str, float]:
    """``GRPO/reward``, ``GRPO/accuracy_reward``, ``GRPO/kl`` (or ``SFT/loss``, ``SFT/mean_token_accuracy``): copies
    of a logged step's headline metrics, named to sort first on MLflow's run page."""
    section = "GRPO" if "reward" in logs else "SFT"
    return {f"{section}/{key.split('/')[1] if key.startswith('rewards/') else key}": logs[key]
            for key in HEADLINE[section] if key in logs}


def _priority(key: str) -> tuple[int, str]:
    return next((i for i, p in enumerate(MLFLOW_FIRST) if key == p or (p.endswith("/") and key.startswith(p))),
                len(MLFLOW_FIRST)), key


class MetricStream:
    """Step metrics for an MLflow run, without the constant ones: a metric is held back until it has taken two
    different values (then its history is sent, and its later values as they come); one that never varies is
    recorded once as a tag (``constant_metric.<name>``) instead of a flat chart. ``send(metrics, step)`` and
    ``constant(tags)`` do the sending."""

    def __init__(self, send: Callable[[dict[str, float], int], None], constant: Callable[[dict[str, str]], None]
                 ) -> None:
        self.send, self.constant = send, constant
        self.held: dict[str, list[tuple[int, float]]] = {}
        self.live: set[str] = set()

    def add(self, metrics: dict[str, float], step: int) -> None:
        now: dict[str, float] = {}
        released: list[str] = []
        for key, value in metrics.items():
            if key in self.live:
                now[key] = value
                continue
            history = self.held.setdefault(key, [])
            history.append((step, value))
            if len({v for _, v in history}) > 1:
                released.append(key)
        for key in sorted(released, key=_priority):  # the ones that matter first
            self.live.add(key)
            for past_step, value in self.held.pop(key)[:-1]:
                self.send({key: value}, past_step)
            now[key] = metrics[key]
        if now:
            self.send(dict(sorted(now.items(), key=lambda kv: _priority(kv[0]))), step)

    def close(self) -> None:
        tags = {f"constant_metric.{k}": f"{h[0][1]:.6g}" for k, h in self.held.items() if h}
        if tags:
            self.constant(tags)
        self.held.clear()


def make_callbacks(output_dir: Path, pipes: Any) -> list[Any]:
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """Every logged step to ``metrics.jsonl`` and, under Dagster Pipes, to the run's logs (with the time left)
        and messages."""

        started = (0, time.monotonic())

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = (state.global_step, time.monotonic())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            record = {"step": state.global_step, "time": time.time(), **_finite(logs)}
            with open(output_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            if pipes is not None:
                first, clock = self.started
                pace = pace_text(state.global_step, state.max_steps, first, time.monotonic() - clock)
                pipes.log.info(f"step {state.global_step}/{state.max_steps}: {step_line(record)}; {pace}")
                pipes.report_custom_message({"kind": "metrics", **record})

    callbacks: list[Any] = [MetricsCallback()]
    if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_TRACKING_URI"):
        callbacks.append(mlflow_callback(os.environ["MLFLOW_RUN_ID"], os.environ["MLFLOW_TRACKING_URI"]))
    return callbacks


def mlflow_sender(run_id: str, tracking_uri: str) -> Callable[[dict[str, float], int], None]:
    """``send(metrics, step)``: one batch of step metrics into the asset's MLflow run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri)

    def send(metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    return send


def mlflow_callback(run_id: str, tracking_uri: str) -> Any:
    """The asset's MLflow run gets the step metrics (``MetricStream``) and, when
    ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` is set, system metrics, from rank 0 only."""
    from mlflow import MlflowClient
    from transformers import TrainerCallback

    client = MlflowClient(tracking_uri)
    send = mlflow_sender(run_id, tracking_uri)

    def constant(tags: dict[str, str]) -> None:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)

    class MlflowMetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self.stream = MetricStream(send, constant)
            self.monitor: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING") == "true":
                from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

                self.monitor = SystemMetricsMonitor(run_id, resume_logging=True, tracking_uri=tracking_uri)
                self.monitor.start()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if state.is_world_process_zero and logs and "train_runtime" not in logs:
                finite = _finite(logs)
                self.stream.add({**headline_metrics(finite), **finite}, state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.close()

        def replay(self, records: list[dict[str, Any]]) -> None:
            """Steps an interrupted attempt logged (from ``metrics.jsonl``), into this attempt's run."""
            for record in records:
                if "train_runtime" not in record:
                    finite = {k: v for k, v in _finite(record).items() if k not in ("step", "time")}
                    self.stream.add({**headline_metrics(finite), **finite}, int(record.get("step", 0)))

        def close(self) -> None:
            self.stream.close()
            if self.monitor is not None:
                self.monitor.finish()
                self.monitor = None

    return MlflowMetricsCallback()


def read_metrics(output_dir: Path) -> list[dict[str, Any]]:
    path = output_dir / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- publishing ----------------------------------------------------------------------------------------------

def folder_hash(folder: Path) -> str:
    """Content hash of a checkpoint folder: every file's relative name and bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def publish(folder: Path, target_root: str) -> str:
    """Copy ``folder`` to ``target_root/v-<hash>/`` unless it is there already; return the target URI."""
    version = folder_hash(folder)
    target = as_path(target_root) / f"v-{version}"
    marker = target / "COMPLETE"
    if marker.exists():
        return str(target)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        dest = target / str(path.relative_to(folder))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, dest.open("wb") as out:
            for chunk in iter(lambda s=src: s.read(1 << 20), b""):
                out.write(chunk)
    marker.write_text(version)  # written last: a copy cut short is never taken for a checkpoint
    return str(target)


def smoke_generate(checkpoint: str, row: dict[str, Any], frames: Any, max_new_tokens: int = 16) -> dict[str, Any]:
    """Load a saved checkpoint as production would and generate for one training row."""
    import torch

    from training.model import load_model_and_processor
    from videorft.frames import media_part

    started = time.perf_counter()
    model, processor = load_model_and_processor(checkpoint, dtype="auto")
    kind = "image" if row["data_type"] == "image" else "video"
    conv = [{"role": "user", "content": [media_part(kind, frames.get(row["path"], row["media_sha256"])),
                                         {"type": "text", "text": row["question"]}]}]
    inputs = processor.apply_chat_template([conv], tokenize=True, return_dict=True, add_generation_prompt=True,
                                           return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs.to(model.device), max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    return {"new_tokens": int(new.numel()), "text": processor.tokenizer.decode(new, skip_special_tokens=False),
            "seconds": time.perf_counter() - started}


def checkpoint_step(checkpoint: str) -> int:
    state = Path(checkpoint) / "trainer_state.json"
    return int(json.loads(state.read_text())["global_step"]) if state.exists() else 0


def restore_weights(model: Any, checkpoint: str) -> None:
    """Load a run folder's checkpoint into ``model`` the way ``from_pretrained`` reads it.

    transformers 5.x saves Qwen2.5-VL checkpoints under the original key names (``model.layers.*``,
    ``visual.*``) while its Trainer loads a checkpoint to resume from without that key conversion and
    without strictness: every key is "missing" and "unexpected", the weights stay where the run started, and a
    resumed run silently continues from the start model (a run resumed at its last step published the start
    model). ``from_pretrained`` converts the names; a strict ``load_state_dict`` then fails loudly if anything is
    still left out. The Trainer still restores the optimizer, scheduler and RNG states.
    """
    import torch

    loaded = type(model).from_pretrained(checkpoint, dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        model.load_state_dict(loaded.state_dict(), strict=True)


def quiet_trainer(trainer: Any) -> None:
    """Under Pipes each logged step is one line in Dagster's log (``MetricsCallback``): drop the Trainer's own
    console printer and progress bar, which would print every step a second time on the terminal."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def summed_over_ranks(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` added up over the ranks of a distributed run (each rank counts what it saw: its share of the
    batches); as they are in a single process. Every rank must call it."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dict(counts)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, dict(counts))  # objects, not tensors: the same call under gloo and NCCL
    return {key: sum(int(rank[key]) for rank in gathered) for key in counts}


def train_and_finish(spec: RunSpec, trainer: Any, processor: Any, data: Any, frames: Any, pipes: Any, what: str,
                     extra_metadata: dict[str, Any] | Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train from the run folder's last checkpoint (none: step 0), then ``finish_run``; ``extra_metadata`` may be
    a function, called after training (e.g. counts the reward functions kept)."""
    resume = last_checkpoint(spec.output_dir) if spec.resume else None
    if pipes is not None:
        pipes.log.info(f"{what} of {spec.model} on {len(data.rows)} rows ({data.content_hash}); "
                       f"{'resuming from ' + resume if resume else 'from step 0'}")
        quiet_trainer(trainer)
    if resume:
        # steps logged after the checkpoint were undone by the interruption and are logged again: keep each once
        kept = [r for r in read_metrics(spec.output_dir) if r.get("step", 0) <= checkpoint_step(resume)]
        (spec.output_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        if pipes is not None:  # the steps before the interruption, so the asset sees the whole curve
            for record in kept:
                pipes.report_custom_message({"kind": "metrics", **record})
        for callback in trainer.callback_handler.callbacks:  # and so does this attempt's MLflow run
            if hasattr(callback, "replay"):
                callback.replay(kept)
    if resume and not spec.deepspeed:
        restore_weights(trainer.model, resume)
    if resume and 0 < trainer.args.max_steps <= checkpoint_step(resume):
        # already at --max-steps: the Trainer would train one step more before it checks
        trainer.state.global_step = checkpoint_step(resume)
    else:
        trainer.train(resume_from_checkpoint=resume)
    for callback in trainer.callback_handler.callbacks:  # also when nothing was left to train
        if hasattr(callback, "close"):
            callback.close()
    extra = extra_metadata() if callable(extra_metadata) else (extra_metadata or {})
    return finish_run(spec, trainer, processor, data, frames, pipes,
                      {"resumed_from": resume or "", **summed_over_ranks({"frames_decoded": frames.decoded}),
                       **extra})


def finish_run(spec: RunSpec, trainer: Any, processor: Any, data: Any, frames: Any, pipes: Any,
               extra_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save ``final/``, publish it, run the two checks and write ``result.json`` (and report it over Pipes)."""
    final = spec.output_dir / "final"
    trainer.save_model(str(final))
    if not trainer.is_world_process_zero():
        return {}
    processor.save_pretrained(str(final))
    version = folder_hash(final)
    uri = publish(final, spec.publish_to) if spec.publish_to else str(final)
    records = read_metrics(spec.output_dir)
    cfg = spec.recipe.checks
    checks = run_checks(spec.method, records, max_kl=cfg.max_kl, window=cfg.window, min_steps=cfg.min_steps)
    checks.update(probe_checks(spec.output_dir, spec.method))
    try:
        smoke = smoke_generate(uri if spec.publish_to and not uri.startswith("s3://") else str(final),
                               data.rows[0], frames)
        generates, smoke_error = smoke["new_tokens"] > 0, ""
    except Exception as exc:  # reported as a failed check with the reason, never swallowed silently
        smoke, generates, smoke_error = {}, False, f"{type(exc).__name__}: {exc}"
    state = trainer.state
    result = {
        "method": spec.method, "model": spec.model, "checkpoint_uri": uri, "checkpoint_version": version,
        "data_uri": spec.data_uri, "data_version": data.content_hash, "data_rows": len(data.rows),
        "skipped_media": len(data.skipped), "skipped_media_examples": dict(list(data.skipped.items())[:5]),
        "global_step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
        "frames": spec.video.frames, "max_pixels": spec.video.max_pixels, "min_pixels": spec.video.min_pixels,
        "deepspeed": spec.deepspeed or "",
        "mlflow_run_id": os.environ.get("MLFLOW_RUN_ID", ""), "checks": {
            **checks,
            "checkpoint_loads_and_generates": {"passed": generates, "severity": "ERROR", "error": smoke_error,
                                               "sample_output": smoke.get("text", ""),
                                               "seconds": smoke.get("seconds", 0.0)}},
        **(extra_metadata or {}),
    }
    (spec.output_dir / RESULT_FILE).write_text(json.dumps(result, indent=2))
    if pipes is not None:
        pipes.report_custom_message({"kind": "result", **result})
        pipes.report_asset_materialization(
            data_version=version,
            metadata={"checkpoint_uri": {"raw_value": uri, "type": "path"},
                      "global_step": state.global_step, "data_version": data.content_hash,
                      "data_uri": spec.data_uri, "base_model": spec.model,
                      # what this run decoded, whoever asked for it (the profile or a logged override)
                      "video_frames": spec.video.frames, "video_max_pixels": spec.video.max_pixels,
                      "video_min_pixels": spec.video.min_pixels})
        for name, check in result["checks"].items():
            pipes.report_asset_check(name, passed=bool(check["passed"]), severity=check["severity"],
                                     metadata={k: _pipes_value(v) for k, v in check.items()
                                               if k not in ("passed", "severity")})
    return result


def _pipes_value(value: Any) -> Any:
    """Check metadata as people read it in the UI (not behind "Show JSON"): a list as ``a, b``, a mapping as
    ``a=1, b=2``, a float rounded to 4 significant digits."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_pipes_value(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(str(_pipes_value(v)) for v in value) or "(none)"
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _close_process_group() -> None:
    """Tear down the torchrun process group before the interpreter exits: left to the exit, gloo's threads can
    outlive it and a rank aborts (``terminate called without an active exception``, seen once in CI after a
    2-process SFT run had finished), which fails the launch."""
    torch_module = sys.modules.get("torch")
    if torch_module is None:
        return
    dist = torch_module.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_main(method: Method, train: Any, argv: list[str] | None = None) -> int:
    """The entry points' ``main``: parse, train (under Dagster Pipes when launched by Dagster), report.
    A user error (bad recipe, data, profile or model) exits 2 with its message and no traceback."""
    guard_elastic_rank()  # a rank of torchrun / accelerate launch ends with its agent, however the agent ends
    try:
        spec = resolve_run(build_parser(method).parse_args(argv), method)
        with pipes_session() as pipes:
            result = train(spec, pipes)
    except USER_ERRORS as exc:
        print(f"{method}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _close_process_group()
    if result and pipes is None:  # under Dagster the materialization says it
        print(f"{method}: {result['global_step']} steps; checkpoint {result['checkpoint_uri']}")
    return 0
