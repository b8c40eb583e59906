"""The model/processor factory: Qwen2.5-VL from a hub id or a local folder, or ``tiny-random``.

``tiny-random`` is a randomly initialised Qwen2.5-VL of ~0.4 M parameters with a byte-level BPE tokenizer
trained here, on the fly, from the prompt templates and the synthetic world's vocabulary, wrapped in a real
``Qwen2_5_VLProcessor`` (image + video processors, Qwen-style chat template). Nothing is downloaded; the
same code path (processor, chat template, video tokens, M-RoPE) runs as in production. A saved checkpoint
of either kind loads back through the hub/local path.

The frame count and pixel budget are not the processor's business: videos are decoded by our video I/O
(``videorft.media``) to the configured frames and pixels and handed over as frames.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from videorft.compat import make_torchvision_importable

TINY_RANDOM = "tiny-random"
# Added as plain (non-special) tokens in the tiny tokenizer only, so a model of 0.4 M parameters can learn
# the answer format in minutes; a real Qwen tokenizer spells them with several BPE pieces.
FORMAT_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
)
# The Qwen2-VL chat template, except that a part is media only by its ``type``: rows that come through
# ``datasets`` carry ``video: None`` on text parts, and the official ``or 'video' in content`` test would
# then insert video tokens for them.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{% set image_count.value = image_count.value + 1 %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}{% set video_count.value = video_count.value + 1 %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_VOCAB_SIZE = 1024


class ModelLoadError(ValueError):
    """A model that cannot be loaded: the message names it and what to do."""


@dataclass(frozen=True)
class TinySpec:
    """Sizes of the tiny random Qwen2.5-VL (~0.37 M parameters, a forward in ~0.03 s on CPU)."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 128
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 2
    seed: int = 0


def _tokenizer_corpus() -> list[str]:
    """Text the tiny tokenizer's BPE merges are learned from: our prompts and the synthetic world's words."""
    from synthetic import qa, scene  # the tiny model's vocabulary is the embedded world's
    from training.prompts import QUESTION_TEMPLATE, TYPE_TEMPLATE
    from videorft.profile import CurationConfig

    words = [*scene.SHAPES, *scene.PALETTE, *scene.BACKGROUNDS, *qa.LETTERS]
    lines = [QUESTION_TEMPLATE, *TYPE_TEMPLATE.values(), " ".join(words),
             "The video shows a red circle moving left. Let me think. The answer is B.",
             "Options: A. red B. blue C. green D. yellow", "0 1 2 3 4 5 6 7 8 9 10 3.5 0.25 100"]
    lines += [p.read_text(encoding="utf-8") for p in sorted(CurationConfig().resolved_prompts_dir().glob("*.yaml"))]
    return lines * 4


@cache
def _tiny_tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_VOCAB_SIZE, special_tokens=list(QWEN_SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_processor() -> Any:
    """A real ``Qwen2_5_VLProcessor`` around a locally trained byte-level BPE tokenizer."""
    make_torchvision_importable()
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json()), eos_token="<|im_end|>",
        pad_token="<|endoftext|>", unk_token=None, padding_side="left", chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )
    tokenizer.add_tokens(list(FORMAT_TOKENS))
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tokenizer.image_token, tokenizer.video_token = "<|image_pad|>", "<|video_pad|>"
    image_processor = Qwen2VLImageProcessor()
    video_processor = Qwen2VLVideoProcessor()
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build_tiny_model(processor: Any, spec: TinySpec = TinySpec()) -> Any:
    """A random-initialised Qwen2.5-VL with its special token ids taken from ``processor``'s tokenizer."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = processor.tokenizer
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    head_dim = spec.hidden_size // spec.heads
    half = head_dim // 2
    mrope = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=spec.hidden_size, num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads,
            intermediate_size=spec.intermediate_size, max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
            bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"), eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
        ),
        vision_config=dict(depth=spec.vision_depth, hidden_size=spec.vision_hidden, num_heads=spec.vision_heads,
                           intermediate_size=spec.vision_hidden * 2, out_hidden_size=spec.hidden_size,
                           fullatt_block_indexes=[spec.vision_depth - 1]),
        **ids,
    )
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [tok.eos_token_id]
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


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
    name_or_path = local_checkpoint(name_or_path)
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(name_or_path)
    except OSError as exc:
        raise ModelLoadError(f"cannot load the processor of {name_or_path!r}: not a local folder and not in the "
                             f"Hugging Face cache; use '{TINY_RANDOM}' or a checkpoint folder") from exc
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
    """Qwen2.5-VL and its processor: ``tiny-random``, a hub id (offline: from the HF cache) or a local folder.

    Raises ``ModelLoadError`` naming the model when it is neither a folder nor loadable from the hub cache.
    """
    name_or_path = local_checkpoint(name_or_path)
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
                         f"use '{TINY_RANDOM}' or a checkpoint folder") from exc
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
