"""The tiny Qwen2.5-VL of the embedded profile: its tokenizer, processor and architecture, built from code.

``tiny-random`` is built here on the fly: a byte-level BPE tokenizer trained from the prompt templates and the
synthetic world's vocabulary (its words and its captions), wrapped in a real ``Qwen2_5_VLProcessor`` with a
Qwen2-VL chat template, and a randomly initialised ``Qwen2_5_VLForConditionalGeneration`` of ``TinySpec``'s
sizes. ``tiny-pretrained`` (``pretraining``) starts from the same builders with its recipe's sizes and is then
trained and shipped; after that it loads like any checkpoint folder. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
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
    """Text the tiny tokenizer's BPE merges are learned from: our prompts, the synthetic world's words and the
    captions of a few of its videos (the language pretraining speaks)."""
    from synthetic import qa, scene  # the tiny model's vocabulary is the embedded world's
    from synthetic.captions import caption
    from synthetic.world import build_scripts
    from training.prompts import QUESTION_TEMPLATE, TYPE_TEMPLATE
    from videorft.profile import CurationConfig, WorldConfig

    words = [*scene.SHAPES, *scene.PALETTE, *scene.BACKGROUNDS, *qa.LETTERS]
    lines = [QUESTION_TEMPLATE, *TYPE_TEMPLATE.values(), " ".join(words),
             "The video shows a red circle moving left. Let me think. The answer is B.",
             "Options: A. red B. blue C. green D. yellow", "0 1 2 3 4 5 6 7 8 9 10 3.5 0.25 100"]
    lines += [p.read_text(encoding="utf-8") for p in sorted(CurationConfig().resolved_prompts_dir().glob("*.yaml"))]
    videos, _ = build_scripts(WorldConfig(seed=0, videos=16, images=0, questions=0))
    lines += [caption(script) for script in videos]
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
