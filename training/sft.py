"""Supervised fine-tuning on the CoT set (paper 3.2, SFT stage): ``python -m training.sft``.

TRL's ``SFTTrainer`` with our collator: each row becomes a user turn (the video as frames + the question
prompt) and an assistant turn (``process`` + ``solution``, i.e. ``<think>..</think><answer>..</answer>``).
The loss covers the assistant tokens only: prompt tokens, padding and vision placeholders are masked (the
peers' collators train on prompt tokens and keep only the last example's video).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from training.runtime import (
    RunSpec,
    has_cuda,
    make_callbacks,
    record_loss_media,
    run_main,
    train_and_finish,
    trainer_arguments,
)
from videorft.frames import FrameCache, media_part
from videorft.media import media_cache_dir

IGNORE_INDEX = -100


def assistant_labels(input_ids: Any, attention_mask: Any, im_start_id: int, header_len: int,
                     ignore_ids: set[int]) -> Any:
    """Labels = input ids on the last assistant turn's content (and its ``<|im_end|>``), -100 elsewhere:
    before it (system + user + the ``<|im_start|>assistant\\n`` header), on padding and on vision pads."""
    import torch

    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for i in range(input_ids.shape[0]):
        starts = (input_ids[i] == im_start_id).nonzero().flatten()
        if len(starts) == 0:
            continue
        begin = int(starts[-1]) + header_len
        labels[i, begin:] = input_ids[i, begin:]
    labels[attention_mask == 0] = IGNORE_INDEX
    for token in ignore_ids:
        labels[input_ids == token] = IGNORE_INDEX
    return labels


def conversation(row: dict[str, Any], media: dict[str, Any], with_answer: bool) -> list[dict[str, Any]]:
    turns = [{"role": "user", "content": [media, {"type": "text", "text": row["question"]}]}]
    if with_answer:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": row["process"] + row["solution"]}]})
    return turns


class VideoSFTCollator:
    """Rows -> a padded batch with ``pixel_values_videos`` / ``pixel_values`` for every row and masked labels."""

    def __init__(self, processor: Any, frames: FrameCache, media_log: Path | None = None) -> None:
        self.processor, self.frames = processor, frames
        self.media_log = media_log  # a run folder: each batch's media are recorded per rank (record_loss_media)
        tok = processor.tokenizer
        self.im_start = tok.convert_tokens_to_ids("<|im_start|>")
        self.header_len = len(tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
        self.ignore = {t for t in (tok.pad_token_id, tok.convert_tokens_to_ids("<|image_pad|>"),
                                   tok.convert_tokens_to_ids("<|video_pad|>")) if t is not None}

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        texts, images, videos = [], [], []
        for row in rows:
            kind = "image" if row["data_type"] == "image" else "video"
            array = self.frames.get(row["path"], row.get("media_sha256"))
            (images if kind == "image" else videos).append(array)
            texts.append(self.processor.apply_chat_template(conversation(row, media_part(kind, array), True),
                                                            tokenize=False))
        batch = self.processor(text=texts, images=images or None, videos=videos or None, padding=True,
                               return_tensors="pt")
        batch["labels"] = assistant_labels(batch["input_ids"], batch["attention_mask"], self.im_start,
                                           self.header_len, self.ignore)
        if self.media_log is not None:
            record_loss_media(self.media_log, [row["path"] for row in rows])
        return batch


def configure_processor(processor: Any, min_pixels: int, max_pixels: int) -> None:
    """Frames arrive already sized to the budget; keep the processors from resizing them again."""
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    for sub in (getattr(processor, "image_processor", None), getattr(processor, "video_processor", None)):
        if sub is not None:
            sub.size = size
            for attr, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
                if hasattr(sub, attr):
                    setattr(sub, attr, value)
    video = getattr(processor, "video_processor", None)
    if video is not None and hasattr(video, "do_sample_frames"):
        video.do_sample_frames = False


def frame_cache(spec: RunSpec) -> FrameCache:
    from videorft.profile import local_state_dir

    disk = spec.recipe.data.frame_cache or str(local_state_dir() / "frame_cache")  # decoded frames, across runs
    return FrameCache(spec.video, disk_dir=disk, media_cache_dir=media_cache_dir(spec.storage_root))


def load_run_inputs(spec: RunSpec, require_process: bool) -> tuple[Any, Any, Any]:
    """A run's rows, model and processor as its recipe and video settings say (SFT's and GRPO's): the vision
    tower frozen where ``model.freeze_vision`` asks, the processor at the run's pixel bounds."""
    from training.data import load_training_data
    from training.model import freeze_vision_tower, load_model_and_processor

    data = load_training_data(spec.data_uri, require_process=require_process,
                              max_samples=spec.recipe.data.max_samples, seed=spec.recipe.data.shuffle_seed)
    model, processor = load_model_and_processor(spec.model, spec.recipe.model.dtype,
                                                spec.recipe.model.attn_implementation)
    if spec.recipe.model.freeze_vision:
        freeze_vision_tower(model)
    configure_processor(processor, spec.video.min_pixels, spec.video.max_pixels)
    return data, model, processor


def train(spec: RunSpec, pipes: Any = None) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTTrainer

    data, model, processor = load_run_inputs(spec, require_process=True)
    frames = frame_cache(spec)
    args = trainer_arguments(spec, {
        "remove_unused_columns": False, "dataset_kwargs": {"skip_prepare_dataset": True},
        "learning_rate": 1e-6, "num_train_epochs": 1, "per_device_train_batch_size": 1, "logging_steps": 1,
        "save_strategy": "steps", "save_steps": 100, "use_cpu": not has_cuda(), "seed": 0, "data_seed": 0,
    })
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(data.rows),
                         processing_class=processor, data_collator=VideoSFTCollator(processor, frames, spec.output_dir),
                         callbacks=make_callbacks(spec.output_dir, pipes))
    return train_and_finish(spec, trainer, processor, data, frames, pipes, "SFT")


def main(argv: list[str] | None = None) -> int:
    return run_main("sft", train, argv)


if __name__ == "__main__":
    sys.exit(main())
