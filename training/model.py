"""The model/processor factory: Qwen2.5-VL from a hub id or a local folder, ``tiny-pretrained`` or ``tiny-random``.

``tiny-pretrained`` is the embedded profile's base model: a tiny Qwen2.5-VL pretrained by the project on a world
of its own (``pretraining``) and shipped in the package (``videorft/models/tiny-pretrained``); it loads through
the local-folder path, after its files are checked against its model card. ``tiny-random`` is built on the fly
with random weights (``training.tiny``), for fast unit tests. Nothing is downloaded; the same code path
(processor, chat template, video tokens, M-RoPE) runs as in production. A saved checkpoint of any kind loads
back through the hub/local path.

The frame count and pixel budget are not the processor's business: videos are decoded by our video I/O
(``videorft.media``) to the configured frames and pixels and handed over as frames.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from training.tiny import TINY_RANDOM, build_tiny_model, build_tiny_processor
from videorft.compat import make_torchvision_importable
from videorft.shipped import TINY_PRETRAINED, ShippedModelError, verified_dir


class ModelLoadError(ValueError):
    """A model that cannot be loaded: the message names it and what to do."""


def resolve_model(name_or_path: str) -> str:
    """``tiny-pretrained`` as its shipped folder (checked against its card), a published ``s3://`` checkpoint as a
    local copy, anything else as given."""
    if name_or_path == TINY_PRETRAINED:
        try:
            return str(verified_dir(TINY_PRETRAINED))
        except ShippedModelError as exc:
            raise ModelLoadError(str(exc)) from None
    return local_checkpoint(name_or_path)


def _dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return "auto"
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def local_checkpoint(uri: str) -> str:
    """A published checkpoint on object storage (``s3://.../v-<hash>``) as a local folder, downloaded once into
    the media cache (its name carries the content hash, so a finished copy is never fetched again)."""
    if "://" not in uri:
        return uri
    from videorft.media import media_cache_dir
    from videorft.storage import as_path

    source = as_path(uri)
    target = Path(media_cache_dir()) / "checkpoints" / hashlib.sha256(uri.encode()).hexdigest()[:16] / source.name
    if not (target / "COMPLETE").exists():
        target.mkdir(parents=True, exist_ok=True)
        source.fs.get(source.path.rstrip("/") + "/", str(target) + "/", recursive=True)
        (target / "COMPLETE").write_text(uri)
    return str(target)


def load_processor(name_or_path: str) -> Any:
    """The processor of a hub id / local folder / published checkpoint URI, or the tiny one."""
    make_torchvision_importable()
    if name_or_path == TINY_RANDOM:
        processor = build_tiny_processor()
        keep_frame_sizes(processor)
        return processor
    name_or_path = resolve_model(name_or_path)
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(name_or_path)
    except OSError as exc:
        raise ModelLoadError(f"cannot load the processor of {name_or_path!r}: not a local folder and not in the "
                             f"Hugging Face cache; use '{TINY_PRETRAINED}', '{TINY_RANDOM}' or a checkpoint "
                             "folder") from exc
    processor.tokenizer.padding_side = "left"  # generation pads on the left; the SFT collator pads right itself
    keep_frame_sizes(processor)
    return processor


def keep_frame_sizes(processor: Any) -> None:
    """Our frame sampler already sizes every frame to the profile's pixel budget (``video.*.max_pixels``), the
    way qwen-vl-utils does; the video processor's extra total-video cap (a transformers 5 option, on by default
    from 5.22) would shrink them a second time, so it is off, explicitly."""
    video = getattr(processor, "video_processor", None)
    if video is not None and hasattr(type(video), "cap_pixels_per_frame"):
        video.cap_pixels_per_frame = False


def load_model_and_processor(name_or_path: str, dtype: str = "float32",
                             attn_implementation: str | None = None) -> tuple[Any, Any]:
    """Qwen2.5-VL and its processor: ``tiny-pretrained``, ``tiny-random``, a hub id (offline: from the HF cache) or a
    local folder.

    Raises ``ModelLoadError`` naming the model when it is neither a folder nor loadable from the hub cache.
    """
    name_or_path = resolve_model(name_or_path)
    processor = load_processor(name_or_path)
    if name_or_path == TINY_RANDOM:
        model = build_tiny_model(processor)
        return (model.to(_dtype(dtype)) if dtype != "auto" else model), processor
    from transformers import AutoModelForImageTextToText

    kwargs: dict[str, Any] = {"dtype": _dtype(dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: not a local folder and not in the Hugging Face "
                         f"cache (offline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}); "
                         f"use '{TINY_PRETRAINED}', '{TINY_RANDOM}' or a checkpoint folder") from exc
    return model, processor


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def ensure_on_disk(model: Any, processor: Any, folder: str | os.PathLike[str]) -> str:
    """Give an in-memory model (``tiny-random``) a folder to be reloaded from: TRL builds GRPO's reference
    model from ``config.name_or_path``. A model loaded from a path keeps its path."""
    current = getattr(model.config, "_name_or_path", "") or ""
    if current and os.path.isdir(current):
        return current
    folder = os.fspath(folder)
    if not os.path.exists(os.path.join(folder, "config.json")):
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    model.config._name_or_path = folder
    return folder


def vision_tower(model: Any) -> Any:
    """Qwen2.5-VL's vision encoder (``model.model.visual`` in transformers 5, ``model.visual`` before)."""
    inner = getattr(model, "model", None)
    return getattr(inner, "visual", None) or model.visual


def freeze_vision_tower(model: Any) -> int:
    """Stop training the vision encoder and its merger (``model.freeze_vision``): Qwen's own fine-tuning default
    (``tune_mm_vision: false``). Returns how many parameters were frozen."""
    frozen = 0
    for p in vision_tower(model).parameters():
        p.requires_grad_(False)
        frozen += p.numel()
    return frozen
