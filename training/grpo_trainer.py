"""``VideoGRPOTrainer``: TRL's ``GRPOTrainer`` whose log-prob forwards see each row's video or image, and its
sampler, which never mixes images and videos in one generation batch (``training.grpo`` runs it).

Stock TRL (1.16) hands a video to ``generate()`` but not to the log-prob forward of the loss, the old policy or
the reference model: it extracts only ``image`` parts there, so the vision tower gets no gradient and the KL term
compares text-only log-probs. The trainer carries each row's vision inputs (``pixel_values_videos``,
``video_grid_thw``, ``second_per_grid_ts`` or the image ones) through TRL's generation buffer and passes them,
with the M-RoPE token types, into every log-prob forward. For T-GRPO it also samples, per video prompt, as many
rollouts on the same frames shuffled and hands their accuracies to ``TemporalReward``.

Importing this module imports torch and TRL: import it where a trainer is built.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from training.runtime import record_loss_media
from videorft.frames import FrameCache, media_part

VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw")


def media_grouped_chunks(kinds: list[str], batch_size: int, order: list[int], shuffle_chunks: Any = None
                         ) -> list[list[int]]:
    """``order`` (a permutation of the rows) cut into chunks of ``batch_size`` prompts that share one media kind;
    a kind's last incomplete chunk is dropped, as TRL drops the dataset's. ``shuffle_chunks`` (a function of a
    length returning a permutation) mixes the kinds' chunks."""
    by_kind: dict[str, list[int]] = {}
    for index in order:
        by_kind.setdefault(kinds[index], []).append(index)
    chunks = [ids[j:j + batch_size] for ids in by_kind.values() for j in range(0, len(ids) - batch_size + 1,
                                                                               batch_size)]
    return [chunks[k] for k in shuffle_chunks(len(chunks))] if shuffle_chunks else chunks



class MediaGroupedSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` whose generation batches never mix images with videos: TRL hands a batch's
    images to the processor as one list, and a video row's missing image breaks it (a batch of several
    prompts over a mixed data set failed on the first step)."""

    def __init__(self, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds

    def _chunks(self) -> list[list[int]]:
        if not self.shuffle:
            return media_grouped_chunks(self.kinds, self.batch_size, list(range(self.num_samples)))
        order = torch.randperm(self.num_samples, generator=self.generator).tolist()
        return media_grouped_chunks(self.kinds, self.batch_size, order,
                                    lambda n: torch.randperm(n, generator=self.generator).tolist())

    def __iter__(self) -> Any:
        for chunk in self._chunks():
            for _ in range(self.repeat_count):
                for index in chunk:
                    yield from [index] * self.mini_repeat_count

    def __len__(self) -> int:
        chunks = len(media_grouped_chunks(self.kinds, self.batch_size, list(range(self.num_samples))))
        return chunks * self.batch_size * self.mini_repeat_count * self.repeat_count

class VideoGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log-prob forwards see the video (or image) of each row."""

    def _get_train_sampler(self, dataset: Any = None) -> Any:
        sampler = super()._get_train_sampler(dataset)
        if not isinstance(sampler, RepeatSampler) or sampler.batch_size == 1:
            return sampler  # one prompt per batch never mixes kinds: keep TRL's order exactly
        data = dataset if dataset is not None else self.train_dataset
        return MediaGroupedSampler(list(data["data_type"]), data_source=data,
                                   mini_repeat_count=sampler.mini_repeat_count, batch_size=sampler.batch_size,
                                   repeat_count=sampler.repeat_count, shuffle=sampler.shuffle,
                                   seed=self.args.seed)

    frames: FrameCache
    _vision_rows: list[dict[str, Any]] | None = None

    def _row_vision(self, row: dict[str, Any], cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
        key = row["sample_id"]
        if key not in cache:
            kind = "image" if row["data_type"] == "image" else "video"
            array = self.frames.get(row["path"], row.get("media_sha256"))
            conv = [{"role": "user", "content": [media_part(kind, array), {"type": "text",
                                                                           "text": row["question"]}]}]
            text = self.processing_class.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            media = {"images": [array]} if kind == "image" else {"videos": [array]}
            out = self.processing_class(text=[text], return_tensors="pt", **media)
            vision = {k: out[k] for k in VISION_KEYS if k in out}
            if "second_per_grid_ts" in vision and not isinstance(vision["second_per_grid_ts"], torch.Tensor):
                vision["second_per_grid_ts"] = torch.tensor(vision["second_per_grid_ts"])
            cache[key] = {"prompt": conv, "vision": vision}
        return cache[key]

    def _shuffled_group_accuracy(self, inputs: list[dict[str, Any]], temporal: Any) -> None:
        """T-GRPO: for each video prompt of the batch, as many rollouts as its ordered group on the same
        frames in a random order, scored by the accuracy reward; what ``TemporalReward`` compares with."""
        from training.rewards import accuracy_reward

        temporal.shuffled.clear()
        groups: dict[str, list[dict[str, Any]]] = {}
        for x in inputs:
            if x["data_type"] != "image":
                groups.setdefault(str(x["sample_id"]), []).append(x)
        model = self.accelerator.unwrap_model(self.model)
        gen = torch.Generator().manual_seed(int(self.state.global_step))
        for key, rows in groups.items():
            row = rows[0]
            array = self.frames.get(row["path"], row.get("media_sha256"))
            shuffled = array[torch.randperm(len(array), generator=gen).numpy()]
            conv = [{"role": "user", "content": [media_part("video", shuffled),
                                                 {"type": "text", "text": row["question"]}]}]
            text = self.processing_class.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            batch = self.processing_class(text=[text], videos=[shuffled], return_tensors="pt").to(model.device)
            with torch.no_grad():
                out = model.generate(**batch, do_sample=True, temperature=self.temperature,
                                     max_new_tokens=self.max_completion_length,
                                     num_return_sequences=len(rows), **(self.args.generation_kwargs or {}))
            texts = self.processing_class.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                                       skip_special_tokens=True)
            completions = [[{"role": "assistant", "content": t}] for t in texts]
            columns = {k: [r[k] for r in rows] for k in ("solution", "problem_type", "options") if k in row}
            temporal.shuffled[key] = accuracy_reward(completions, **columns)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        from training.rewards import SHUFFLED_GROUPS

        temporal = next((f for f in self.reward_funcs if SHUFFLED_GROUPS in getattr(f, "needs", ())), None)
        if temporal is not None:
            self._shuffled_group_accuracy(inputs, temporal)
        cache: dict[str, dict[str, Any]] = {}
        per_row = [self._row_vision(x, cache) for x in inputs]
        inputs = [{**x, "prompt": r["prompt"]} for x, r in zip(inputs, per_row, strict=True)]
        self._vision_rows = [r["vision"] for r in per_row]
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            rows, self._vision_rows = self._vision_rows, None
        output["vision_rows"] = rows  # a list: TRL's buffer shuffles and splits it with the batch
        output["vision_media"] = [str(x["path"]) for x in inputs]  # shuffled and split with it
        return output

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Any:
        self._vision_rows = inputs.get("vision_rows")
        if inputs.get("vision_media") is not None:
            record_loss_media(self.args.output_dir, inputs["vision_media"], int(self.state.global_step))
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._vision_rows = None

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                           logits_to_keep: int, batch_size: int | None = None,
                                           compute_entropy: bool = False, compute_aux_loss: bool = False,
                                           **kwargs: Any) -> Any:
        rows = self._vision_rows
        if rows is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **kwargs)
        if len(rows) != input_ids.size(0):
            raise RuntimeError(f"vision rows ({len(rows)}) do not match the batch ({input_ids.size(0)})")
        tok = self._tokenizer
        image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
        video_pad = tok.convert_tokens_to_ids("<|video_pad|>")
        batch_size = batch_size or input_ids.size(0)
        all_logps, all_entropies, all_aux = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            model_inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            for key in VISION_KEYS:
                parts = [r[key] for r in rows[start:end] if key in r]
                if parts:
                    model_inputs[key] = torch.cat(parts).to(ids.device)
            model_inputs["mm_token_type_ids"] = ((ids == image_pad).int() + 2 * (ids == video_pad).int())
            if compute_aux_loss:
                model_inputs["output_router_logits"] = True
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            all_logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                all_entropies.append(outputs.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                all_aux.append(outputs.aux_loss)
        logps = torch.cat(all_logps, dim=0)
        entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
        aux = torch.stack(all_aux).mean() if compute_aux_loss else None
        return logps, entropies, aux
