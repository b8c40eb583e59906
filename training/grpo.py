"""GRPO with the VideoRFT reward (paper 3.3): ``python -m training.grpo``.

The trainer is ``training.grpo_trainer.VideoGRPOTrainer`` (TRL's, with the video in every log-prob forward).

Rewards are the ones named in the recipe (default: format, accuracy, semantic consistency, each logged
under its name by TRL, summed with optional weights), plus TRL's KL, completion length and learning rate.
With ``temporal_reward`` (T-GRPO: named in ``reward.functions``, or ``reward.temporal.enabled``) the trainer
also samples, per video prompt, as many rollouts on the same frames shuffled and hands their accuracies to
``TemporalReward``; the comparison is within one process's share of a group (with several processes and a
group split across them, each rank compares its part).
"""

from __future__ import annotations

import sys
from typing import Any

from training.probe import Probe, generate_greedy, probe_callback
from training.runtime import (
    RunSpec,
    checkpoint_step,
    has_cuda,
    last_checkpoint,
    make_callbacks,
    mlflow_sender,
    run_main,
    summed_over_ranks,
    train_and_finish,
    trainer_arguments,
)
from training.sft import frame_cache, load_run_inputs
from videorft.frames import FrameCache
from videorft.media import media_cache_dir


def report_metrics(pipes: Any) -> Any:
    """Where a probe step's means go besides ``metrics.jsonl``: the asset (a Pipes metrics message, so its curves
    show the probe) and the asset's MLflow run."""
    import os

    send = (mlflow_sender(os.environ["MLFLOW_RUN_ID"], os.environ["MLFLOW_TRACKING_URI"])
            if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_TRACKING_URI") else None)

    def report(line: dict[str, Any]) -> None:
        if pipes is not None:
            pipes.report_custom_message({"kind": "metrics", **line})
        if send is not None:
            send({k: float(v) for k, v in line.items() if k.startswith("probe/")}, int(line["step"]))

    return report


def held_out_probe(spec: RunSpec, processor: Any, frames: FrameCache, suppress: list[int], pipes: Any) -> Probe:
    """The recipe's probe set (``training.probe``), its records cut back to the step this run resumes from."""
    from synthetic.qa import template_of
    from training.data import load_training_data

    cfg = spec.recipe.probe
    rows = [{**r, "template": template_of(r["problem"])}
            for r in load_training_data(str(cfg.uri), require_process=False, media_cache_dir=media_cache_dir(
                spec.storage_root)).rows]
    log = pipes.log.info if pipes is not None else print
    probe = Probe(rows, spec.output_dir, cfg.every, lambda model, asked: generate_greedy(
        model, processor, frames, asked, cfg.max_new_tokens, cfg.batch_size, suppress), log, report_metrics(pipes))
    resume = last_checkpoint(spec.output_dir) if spec.resume else None
    probe.forget_after(checkpoint_step(resume) if resume else -1)
    return probe


def reward_functions(spec: RunSpec) -> list[Any]:
    from training.rewards import build_reward_funcs

    cfg = spec.recipe.reward
    return build_reward_funcs(cfg, cfg.semantic.cache_root or spec.storage_root, media_cache_dir(spec.storage_root))


def train(spec: RunSpec, pipes: Any = None) -> dict[str, Any]:
    from datasets import Dataset

    from training.grpo_trainer import VideoGRPOTrainer
    from training.model import ensure_on_disk
    from training.rewards import reward_names, reward_weights

    data, model, processor = load_run_inputs(spec, require_process=False)
    ensure_on_disk(model, processor, spec.output_dir / "initial-model")
    frames = frame_cache(spec)
    args = trainer_arguments(spec, {
        # the paper's GRPO settings (appendix A.2); recipes override them
        "num_generations": 8, "beta": 0.04, "learning_rate": 1e-6, "max_completion_length": 1024,
        "temperature": 1.0, "per_device_train_batch_size": 8, "logging_steps": 1, "save_strategy": "steps",
        "save_steps": 100, "remove_unused_columns": False, "use_cpu": not has_cuda(), "seed": 0, "data_seed": 0,
        "log_completions": False,
        **({"reward_weights": reward_weights(spec.recipe.reward)} if spec.recipe.reward.weights is not None else {}),
    })
    # a sampled vision placeholder in a completion would be taken for a video token by the loss forward
    tok = processor.tokenizer
    banned = [tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                      "<|vision_end|>")]
    if not args.use_vllm:
        args.generation_kwargs = {"suppress_tokens": banned, **(args.generation_kwargs or {})}
    rows = [{**r, "prompt": [{"role": "user", "content": r["question"]}]} for r in data.rows]
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    trainer = VideoGRPOTrainer(model=model, args=args, reward_funcs=reward_functions(spec),
                          train_dataset=Dataset.from_list(rows), processing_class=processor,
                          callbacks=make_callbacks(spec.output_dir, pipes))
    trainer.frames = frames
    if spec.recipe.probe.uri:
        trainer.add_callback(probe_callback(held_out_probe(spec, processor, frames, banned, pipes)))

    def summary() -> dict[str, Any]:
        from training.rewards import SemanticConsistencyReward

        semantic = [getattr(f, "semantic", f) for f in trainer.reward_funcs]
        tallies = [f.tally() for f in semantic if isinstance(f, SemanticConsistencyReward)]
        return {"reward_functions": [getattr(f, "__name__", str(f)) for f in trainer.reward_funcs],
                "semantic_mode": spec.recipe.reward.semantic.mode,
                "temporal": "temporal_reward" in reward_names(spec.recipe.reward),
                **(summed_over_ranks(tallies[0]) if tallies else {})}

    return train_and_finish(spec, trainer, processor, data, frames, pipes, "GRPO", summary)


def main(argv: list[str] | None = None) -> int:
    return run_main("grpo", train, argv)


if __name__ == "__main__":
    sys.exit(main())
