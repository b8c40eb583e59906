"""Paying for a video once in evaluation: its processed pixels and its vision-tower output, reused by every
question on it (VSI-Bench has about 18 per video) and by every benchmark sharing it, within one process.

``VisionReuse.install(processor, model)`` wraps, on those two instances only, the two per-video costs that
come after decoding (decoded frames are ``FrameCache``'s):

* the processor's ``_process_videos`` / ``_process_images`` (resize, normalise, patchify): each medium in a
  batch is processed alone once and its pixel values, grid and placeholder text are concatenated with the
  others', as the processor itself does for a batch;
* the model's ``get_video_features`` / ``get_image_features`` (the vision tower and patch merger): the
  batch's pixel values are split per medium by its grid, and a medium seen before gets its stored output.

Keys are content hashes (of the decoded frames for the processor, of the pixel values and grid for the
tower), so a hit is the same input by construction, whatever the request order, batch or benchmark. Both
memos are LRU-bounded. Generation with and without the reuse gives the same text (tested).
"""

from __future__ import annotations

import hashlib
import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np


def _digest(*arrays: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if hasattr(a, "detach"):  # a tensor
            a = a.detach().cpu().contiguous().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


class _Lru(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def get_fresh(self, key: str) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class VisionReuse:
    """Per-process memo of processed media and vision-tower outputs (see the module docstring)."""

    def __init__(self, capacity: int = 128) -> None:
        self._processed = _Lru(capacity)
        self._encoded = _Lru(capacity)
        self.stats = {"processed": 0, "processed_reused": 0, "encoded": 0, "encoded_reused": 0}

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
