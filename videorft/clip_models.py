"""open_clip models (CLIP for the CoT filter, SigLIP for the semantic-consistency reward), loaded lazily,
once per process and thread-safely.

A name is an open_clip model name (production: ``ViT-L-14`` / ``openai``, ``ViT-SO400M-14-SigLIP-384`` /
``webli``) or one of the configs shipped in ``videorft/models/``: ``tiny-clip`` and ``tiny-siglip`` (tiny,
randomly initialised from a fixed seed, for the tiny profile and tests) and ``bench-siglip-b16`` (SigLIP
ViT-B-16's architecture with a tokenizer that works offline, for benchmarks). Shipped configs use open_clip's
offline ``SimpleTokenizer``; hub models use their own tokenizer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from videorft.compat import make_torchvision_importable

MODELS_DIR = Path(__file__).resolve().parent / "models"
_LOCK = threading.Lock()


def shipped_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def image_side(model: Any) -> int:
    """The square input side of an open_clip model's image tower (224 for ViT-B-16, 384 for SO400M-384)."""
    size = getattr(model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, tuple | list) else size)


class _DropRandomWeightsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _no_random_weights_warning() -> Iterator[None]:
    """open_clip warns (on the root logger) that a model has random weights: for a shipped tiny config that is
    the point, and every run would print it."""
    root = logging.getLogger()
    dropped = _DropRandomWeightsWarning()
    root.addFilter(dropped)
    try:
        yield
    finally:
        root.removeFilter(dropped)


@cache
def load_clip(model_name: str, pretrained: str | None = None, context_length: int | None = None
              ) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, preprocess)`` in eval mode; ``context_length`` truncates/pads the text tokens."""
    make_torchvision_importable()
    import open_clip
    import torch

    with _LOCK:
        config = MODELS_DIR / f"{model_name}.json"
        if config.is_file():
            open_clip.add_model_config(config)
            with torch.random.fork_rng(), _no_random_weights_warning():
                torch.manual_seed(0)
                model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
            length = context_length or model.context_length
            tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=length)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
            tokenizer = (open_clip.get_tokenizer(model_name, context_length=context_length) if context_length
                         else open_clip.get_tokenizer(model_name))
    model.eval()
    return model, tokenizer, preprocess
