"""Paying for a video once in evaluation: its processed pixels, its vision-tower output and the language model's
prefill over it, reused by every question on it (VSI-Bench has about 18 per video) and, for the first two, by
every benchmark sharing it, within one process.

``VisionReuse.install(processor, model)`` wraps, on those two instances only, the two per-video costs that
come after decoding (decoded frames are ``FrameCache``'s):

* the processor's ``_process_videos`` / ``_process_images`` (resize, normalise, patchify): each medium in a
  batch is processed alone once and its pixel values, grid and placeholder text are concatenated with the
  others', as the processor itself does for a batch;
* the model's ``get_video_features`` / ``get_image_features`` (the vision tower and patch merger): the
  batch's pixel values are split per medium by its grid, and a medium seen before gets its stored output.

Keys are content hashes (of the decoded frames for the processor, of the pixel values and grid for the
tower), so a hit is the same input by construction, whatever the request order, batch or benchmark. Both
memos are LRU-bounded.

The third cost is the largest once the tower is reused: every question's prefill runs the language model over
the medium's hundreds of tokens again. ``generate_on_heads`` prefills each prompt's head (the system turn and
the medium, up to ``<|vision_end|>``: identical for every question on that medium) once per medium and keeps
its keys and values (``_heads``, LRU-bounded by bytes: they are large on a real model); a batch, of one video
or several, then starts from its rows' heads and prefills only each question's own tokens. The 3-D rotary
positions of the tokens after a medium depend on its head only through its position offset (``rope_deltas``),
which is stored with the head.
Generation with and without the reuse gives the same text (tested).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash


def _digest(*arrays: Any) -> str:
    # xxh3: a video's pixel values are ~10 MB and are keyed several times per question; blake2b cost seconds
    h = xxhash.xxh3_128()
    for a in arrays:
        if hasattr(a, "detach"):  # a tensor
            a = a.detach().cpu().contiguous().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


class _Lru(OrderedDict):
    """Least recently used first out, past ``capacity`` entries or, with ``size``, past ``capacity`` in the
    units ``size`` measures (bytes)."""

    def __init__(self, capacity: int, size: Callable[[Any], int] | None = None) -> None:
        super().__init__()
        self.capacity = capacity
        self.size = size
        self.used = 0

    def get_fresh(self, key: str) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: str, value: Any) -> None:
        if key in self:
            self.used -= self._size(self.pop(key))
        self[key] = value
        self.used += self._size(value)
        while len(self) > 1 and (self.used if self.size else len(self)) > self.capacity:
            self.used -= self._size(self.popitem(last=False)[1])

    def _size(self, value: Any) -> int:
        return self.size(value) if self.size else 0


def _head_bytes(entry: tuple[Any, Any]) -> int:
    """Bytes of a head's keys and values (a transformers ``Cache``)."""
    cache = entry[0]
    return sum(t.numel() * t.element_size() for layer in getattr(cache, "layers", [])
               for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if t is not None)


class VisionReuse:
    """Per-process memo of processed media and vision-tower outputs (see the module docstring)."""

    def __init__(self, capacity: int = 128, head_bytes: int = 2 << 30) -> None:
        self._processed = _Lru(capacity)
        self._encoded = _Lru(capacity)
        # a 7B model's head over 32 frames at 256*28*28 is ~0.25 GB: a handful; the tiny model's: every video
        self._heads = _Lru(head_bytes, size=_head_bytes)
        self.stats = {"processed": 0, "processed_reused": 0, "encoded": 0, "encoded_reused": 0,
                      "heads": 0, "heads_reused": 0}

    def install(self, processor: Any, model: Any) -> None:
        for kind in ("videos", "images"):
            method = f"_process_{kind}"
            if hasattr(processor, method):
                setattr(processor, method, self._processing(getattr(processor, method)))
        base = getattr(model, "model", model)
        for name in ("get_video_features", "get_image_features"):
            if hasattr(base, name):
                object.__setattr__(base, name, self._encoding(getattr(base, name)))

    # -- the processor ---------------------------------------------------------------------------------------
    def _processing(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def process(media: Any, **kwargs: Any) -> tuple[Any, list[str]]:
            # the processor gets one list of media per sample; the batch's outputs are in flattened order
            flat = [m for sample in media for m in (sample if isinstance(sample, list | tuple) else [sample])]
            if not flat:
                return original(media, **kwargs)
            parts = []
            for item in flat:
                key = _digest(np.asarray(item))
                cached = self._processed.get_fresh(key)
                if cached is None:
                    cached = original([item], **kwargs)
                    self._processed.put(key, cached)
                    self.stats["processed"] += 1
                else:
                    self.stats["processed_reused"] += 1
                parts.append(cached)
            return _merge([p[0] for p in parts]), [r for p in parts for r in p[1]]

        return process

    # -- the vision tower ------------------------------------------------------------------------------------
    def _encoding(self, original: Callable[..., Any]) -> Callable[..., Any]:
        import torch

        signature = inspect.signature(original)
        pixels_name, grid_name = list(signature.parameters)[:2]  # (pixel_values[_videos], image|video_grid_thw)

        def encode(*args: Any, **kwargs: Any) -> Any:
            # generate() passes the encoder's arguments by name, the forward by position
            bound = signature.bind(*args, **kwargs).arguments
            extra = bound.pop("kwargs", {})
            pixel_values, grid_thw = bound.pop(pixels_name), bound.pop(grid_name, None)
            kwargs = {**bound, **extra}
            if grid_thw is None:
                return original(pixel_values, grid_thw, **kwargs)
            sizes = grid_thw.prod(-1).tolist()
            chunks = torch.split(pixel_values, sizes)
            keys = [_digest(chunk, grid_thw[i]) for i, chunk in enumerate(chunks)]
            first = {k: i for i, k in reversed(list(enumerate(keys)))}  # a medium twice in a batch: once
            missing = sorted(i for k, i in first.items() if self._encoded.get_fresh(k) is None)
            if missing:
                fresh = original(torch.cat([chunks[i] for i in missing]), grid_thw[missing], **kwargs)
                for i, out in zip(missing, fresh.pooler_output, strict=True):
                    self._encoded.put(keys[i], out)
                self.stats["encoded"] += len(missing)
            self.stats["encoded_reused"] += len(keys) - len(missing)
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            # the forward reads only pooler_output: one merged feature tensor per medium
            return BaseModelOutputWithPooling(pooler_output=tuple(self._encoded[k] for k in keys))

        # generate() picks the encoder's arguments by name from its signature: keep the original's names
        encode.__signature__ = signature  # type: ignore[attr-defined]
        return encode


    # -- the language model's prefill over the medium -------------------------------------------------------
    def generate_on_heads(self, model: Any, inputs: Any, pad_id: int, **generate_kwargs: Any) -> Any | None:
        """New tokens (one row per prompt, padded after EOS) for ``inputs``, a left-padded processor batch of
        prompts with one medium each, each row's head (its prompt up to the end of its medium) prefilled once
        per medium and reused. None when a row has no medium or more than one, or the attention kernel is not
        SDPA or eager (flash attention's handling of the masked holes is untested here): the caller then
        generates the batch the plain way.

        Same text as ``model.generate(**inputs)``: a head's keys and values are the ones the full prefill
        computes for those positions (causal attention); rows are laid out as ``[pad][head][pad][question]``
        with every pad masked out, and the text positions come from the attention mask plus each head's rope
        offset, as in plain generation.
        """
        import torch
        from transformers import DynamicCache

        if getattr(model.config, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
            return None  # masks with holes in the middle are proven (tested) with these two kernels only
        end_id = getattr(model.config, "vision_end_token_id", None)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        rows = [row[m.bool()] for row, m in zip(ids, mask, strict=True)]
        grid = inputs.get("video_grid_thw", inputs.get("image_grid_thw"))
        pixels = inputs.get("pixel_values_videos", inputs.get("pixel_values"))
        if end_id is None or grid is None or pixels is None or len(grid) != len(rows) or (
                "video_grid_thw" in inputs and "image_grid_thw" in inputs):
            return None  # not exactly one medium per row
        ends = [(row == end_id).nonzero() for row in rows]
        if any(len(e) != 1 for e in ends):
            return None
        head_lens = [int(e[0]) + 1 for e in ends]
        if any(len(r) <= h for r, h in zip(rows, head_lens, strict=True)):
            return None
        sizes = grid.prod(-1).tolist()
        chunks = torch.split(pixels, sizes)
        offsets = [0, *np.cumsum(sizes).tolist()]
        entries = []
        for b, (row, head_len) in enumerate(zip(rows, head_lens, strict=True)):
            head = row[:head_len]
            key = _digest(head, chunks[b], grid[b])
            entry = self._heads.get_fresh(key)
            if entry is None:
                entry = self._prefill_head(model, inputs, b, head, offsets[b], offsets[b + 1])
                self._heads.put(key, entry)
                self.stats["heads"] += 1
            else:
                self.stats["heads_reused"] += 1
            entries.append(entry)
        width_head, width_tail = max(head_lens), max(len(r) - h for r, h in zip(rows, head_lens, strict=True))
        full = torch.full((len(rows), width_head + width_tail), pad_id, dtype=ids.dtype, device=ids.device)
        attention = torch.zeros_like(full, dtype=mask.dtype)
        for b, (row, head_len) in enumerate(zip(rows, head_lens, strict=True)):
            tail = row[head_len:]
            full[b, width_head - head_len:width_head] = row[:head_len]
            full[b, full.shape[1] - len(tail):] = tail
            attention[b, width_head - head_len:width_head] = 1
            attention[b, full.shape[1] - len(tail):] = 1
        layers = []
        for layer in range(len(entries[0][0].layers)):
            keys, values = [], []
            for (cache, _), head_len in zip(entries, head_lens, strict=True):
                pad = (0, 0, width_head - head_len, 0)  # left-pad the sequence axis of (1, heads, seq, dim)
                keys.append(torch.nn.functional.pad(cache.layers[layer].keys, pad))
                values.append(torch.nn.functional.pad(cache.layers[layer].values, pad))
            layers.append((torch.cat(keys), torch.cat(values)))
        batched = DynamicCache(ddp_cache_data=layers, config=model.config)  # new tensors: the stored heads stay
        base = getattr(model, "model", model)
        base.rope_deltas = torch.cat([delta for _, delta in entries])  # each row's offset after its medium
        with torch.inference_mode():
            out = model.generate(input_ids=full, attention_mask=attention, cache=batched, **generate_kwargs)
        return out[:, full.shape[1]:]

    @staticmethod
    def _prefill_head(model: Any, inputs: Any, row: int, head: Any, start: int, stop: int) -> tuple[Any, Any]:
        """Keys, values and rope offset of one row's head: the language model run once over it."""
        import torch

        head_inputs = {"input_ids": head[None], "attention_mask": torch.ones_like(head)[None]}
        for name in ("pixel_values_videos", "pixel_values"):
            if name in inputs:
                head_inputs[name] = inputs[name][start:stop]
        for name in ("video_grid_thw", "image_grid_thw", "second_per_grid_ts"):
            if name in inputs:
                head_inputs[name] = inputs[name][row:row + 1]
        if "mm_token_type_ids" in inputs:  # the 3-D positions of the medium's tokens need them
            kept = inputs["attention_mask"][row].bool()
            head_inputs["mm_token_type_ids"] = inputs["mm_token_type_ids"][row][kept][:len(head)][None]
        with torch.inference_mode():
            out = model(**head_inputs, use_cache=True)
        cache = getattr(out, "cache", None)
        return (cache if cache is not None else out.past_key_values), getattr(model, "model", model).rope_deltas


def _merge(parts: list[Any]) -> Any:
    """Concatenate per-medium processor outputs as the processor does for a batch: tensors on dim 0, lists
    extended."""
    import torch

    merged: dict[str, Any] = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        if hasattr(values[0], "shape") and hasattr(values[0], "dim"):
            merged[key] = torch.cat(values)
        elif isinstance(values[0], np.ndarray):
            merged[key] = np.concatenate(values)
        elif isinstance(values[0], list | tuple):
            merged[key] = [x for v in values for x in v]
        else:
            merged[key] = values[0]
    cls = type(parts[0])
    try:
        return cls(merged)
    except TypeError:
        return merged
