"""open_clip models (CLIP for the CoT filter, SigLIP for the semantic-consistency reward), loaded lazily,
once per process and thread-safely.

A name is one of:

* an open_clip model name (production: ``ViT-L-14`` / ``openai``, ``ViT-SO400M-14-SigLIP-384`` / ``webli``);
* ``tiny-siglip``: the embedded profile's SigLIP, pretrained by the project (``pretraining``) and shipped in
  ``videorft/models/tiny-siglip/`` as an open_clip folder (config, weights, the project's tokenizer), checked
  against its model card before it loads;
* ``local-dir:/path``: any open_clip folder of that layout (open_clip's own schema);
* one of the random-weight configs in ``videorft/models/*.json``: ``tiny-clip`` (tiny, seeded: the tiny
  profile's CoT filter) and ``bench-siglip-b16`` (SigLIP ViT-B-16's architecture with an offline tokenizer, for
  benchmarks). They use open_clip's offline ``SimpleTokenizer``.
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
from videorft.shipped import is_shipped, verified_dir, weights_tag

MODELS_DIR = Path(__file__).resolve().parent / "models"
_LOCK = threading.Lock()


LOCAL_DIR = "local-dir:"


def shipped_models() -> list[str]:
    """The random-weight configs (``*.json``) in ``videorft/models/``."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def clip_source(model_name: str) -> str:
    """What open_clip is asked to load: a shipped pretrained model as ``local-dir:<its verified folder>``, any
    other name as given. A missing or corrupt shipped file is a ``ShippedModelError`` naming it."""
    if is_shipped(model_name):
        return LOCAL_DIR + str(verified_dir(model_name))
    return model_name


def weights_label(model_name: str, pretrained: str | None) -> str:
    """Which weights a model name loads, for cache keys: a shipped model's weight hash, the pretrained tag of a
    hub model, ``random`` for a seeded config."""
    if is_shipped(model_name):
        return f"shipped-{weights_tag(model_name)}"
    return pretrained or "random"


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

    source = clip_source(model_name)
    with _LOCK:
        config = MODELS_DIR / f"{model_name}.json"
        if source.startswith(LOCAL_DIR):
            model, _, preprocess = open_clip.create_model_and_transforms(source)
            tokenizer = open_clip.get_tokenizer(source, context_length=context_length)
        elif config.is_file():
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
