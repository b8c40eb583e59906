"""The tiny SigLIP, pretrained contrastively on (frames, caption) pairs of the pretraining world.

Architecture: open_clip's custom-text CLIP with SigLIP's choices (a sigmoid loss, a learned logit bias, a
bidirectional text tower pooled at its last token, squash resizing), sized by the recipe's ``siglip`` section,
reading text with the project's tokenizer (the one the Qwen2.5-VL base uses). A video's embedding is the mean
of its frames' normalised embeddings, as Eq. 5 computes it (``training.video_embeddings``); frames are decoded
exactly as the reward decodes them (``clip_frames``). Loss: open_clip's ``SigLipLoss`` (Zhai et al. 2023).

Saved as an open_clip folder (``open_clip_config.json``, ``open_clip_model.safetensors``, tokenizer files), which
``open_clip.create_model_and_transforms("local-dir:<folder>")`` loads; shipped as ``videorft/models/tiny-siglip``.

Measured on the held-out videos (``measure``): caption-to-video top-1 retrieval against chance (1 / videos), and
Eq. 5's score of a video's own description against a mismatched video's, as an AUC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pretraining.config import PretrainRecipe, SiglipRecipe
from pretraining.data import Video
from pretraining.loop import train
from synthetic.captions import caption, caption_variant

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
LOCAL_DIR = "local-dir:"
EQ5_WEIGHT = 2.0  # w of Eq. 5 in the tiny GRPO recipe (and the paper's best setting)
# SigLIP initialises the logit bias at -10 for batches of 32K pairs; with a few dozen pairs a batch the positives
# are 1 in B, and a bias nearer -log(B) starts closer to where it ends
INIT_LOGIT_BIAS = -5.0


def open_clip_config(recipe: SiglipRecipe, vocab_size: int) -> dict[str, Any]:
    head_width = recipe.width // recipe.heads
    return {
        "model_cfg": {
            "embed_dim": recipe.embed_dim, "init_logit_bias": INIT_LOGIT_BIAS, "custom_text": True,
            "vision_cfg": {"image_size": recipe.image_size, "patch_size": recipe.patch_size, "width": recipe.width,
                           "layers": recipe.layers, "head_width": head_width},
            "text_cfg": {"context_length": recipe.context_length, "vocab_size": vocab_size,
                         "width": recipe.text_width, "heads": recipe.heads, "layers": recipe.text_layers,
                         "no_causal_mask": True, "proj_bias": True, "pool_type": "last",
                         "norm_kwargs": {"eps": 1e-6},
                         # any name makes open_clip read the folder's own tokenizer files (HFTokenizer)
                         "hf_tokenizer_name": "videorft-tiny-tokenizer"},
        },
        "preprocess_cfg": {"resize_mode": "squash", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }


def prepare_folder(folder: Path, recipe: SiglipRecipe, tokenizer: Any) -> None:
    """Write the config and the tokenizer, padding on the left: open_clip pools the last position, which is then
    the text's own last token rather than padding."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(str(folder))
    config = open_clip_config(recipe, len(tokenizer))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True))


def create(folder: Path, seed: int) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, preprocess)`` from an open_clip folder; random weights (seeded) when it has none."""
    import logging

    import open_clip
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # open_clip warns on the root logger that weights are random
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(LOCAL_DIR + str(folder))
            tokenizer = open_clip.get_tokenizer(LOCAL_DIR + str(folder))
        finally:
            logging.getLogger().setLevel(quiet)
    return model, tokenizer, preprocess


def decode_all(videos: Sequence[Video], frames: int, model: Any, preprocess: Any, media_cache: str | None = None
               ) -> Any:
    """``(N, F, 3, H, W)`` preprocessed frames of every video, decoded once (two threads)."""
    import torch

    from training.video_embeddings import clip_frames

    def one(video: Video) -> Any:
        return clip_frames(video.path, frames, model, preprocess, None, media_cache)

    with ThreadPoolExecutor(2) as pool:
        return torch.stack(list(pool.map(one, videos)))


def video_embeddings(model: Any, pixels: Any, batch: int = 64) -> Any:
    """Eq. 5's video side: the mean of the normalised frame embeddings, ``(N, D)`` (not renormalised)."""
    import torch
    import torch.nn.functional as F

    out = []
    for start in range(0, len(pixels), batch):
        chunk = pixels[start:start + batch]
        n, f = chunk.shape[:2]
        frames = F.normalize(model.encode_image(chunk.flatten(0, 1)), dim=-1)
        out.append(frames.view(n, f, -1).mean(dim=1))
    return torch.cat(out)


def fit(recipe: PretrainRecipe, videos: Sequence[Video], folder: Path, work: Path, tokenizer: Any,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the SigLIP of ``recipe.siglip`` on the training videos and save it (weights last) in ``folder``."""
    import torch
    import torch.nn.functional as F
    from open_clip.loss import SigLipLoss
    from safetensors.torch import save_file

    cfg = recipe.siglip
    prepare_folder(folder, cfg, tokenizer)
    model, text_tokenizer, preprocess = create(folder, recipe.seed)
    train_videos = [v for v in videos if not v.held_out]
    log(f"siglip: decoding {cfg.frames} frames of {len(train_videos)} training videos")
    pixels = decode_all(train_videos, cfg.frames, model, preprocess)
    loss_fn = SigLipLoss()

    def loss_of_step(step: int) -> Any:
        rng = np.random.default_rng([recipe.seed, 21, step])
        picks = rng.choice(len(train_videos), size=cfg.batch_videos, replace=False)
        texts = [caption_variant(train_videos[int(i)].script, rng, cfg.max_facts, min_facts=2) for i in picks]
        video = F.normalize(video_embeddings(model, pixels[torch.from_numpy(picks)]), dim=-1)
        text = F.normalize(model.encode_text(text_tokenizer(texts)), dim=-1)
        return loss_fn(video, text, model.logit_scale.exp(), model.logit_bias)

    records = train(model, loss_of_step, steps=cfg.steps, learning_rate=cfg.learning_rate,
                    weight_decay=cfg.weight_decay, warmup=cfg.warmup_steps, folder=work / "siglip", name="siglip",
                    log=log)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    return {"final_loss": records[-1]["loss"] if records else None, "parameters": sum(p.numel()
                                                                                        for p in model.parameters())}


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney U statistic, normalised)."""
    pos, neg = positive[:, None], negative[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def measure(model: Any, tokenizer: Any, preprocess: Any, videos: Sequence[Video], frames: int, seed: int = 0,
            context_length: int = 64) -> dict[str, Any]:
    """On ``videos`` (held out): caption-to-video top-1 retrieval and chance; Eq. 5's score (``training.rewards``:
    the describing span after the first sentence, ``min(1, w * max(cos, 0))``) of each video's own description
    against every other video's, as an AUC; and the same AUC of the raw cosine."""
    import torch

    from training.rewards import describing_span, semantic_scores

    with torch.inference_mode():
        video = video_embeddings(model, decode_all(videos, frames, model, preprocess))
        normed = torch.nn.functional.normalize(video, dim=-1)
        captions = [caption(v.script) for v in videos]
        text = torch.nn.functional.normalize(model.encode_text(tokenizer(captions, context_length)), dim=-1)
        top1 = (text @ normed.T).argmax(dim=1).eq(torch.arange(len(videos))).float().mean().item()
        rng = np.random.default_rng([seed, 31])
        spans = [describing_span("The question asks about the video. " + caption_variant(v.script, rng, 4))
                 for v in videos]

        encoded = model.encode_text(tokenizer(spans, context_length))
        row = {span: i for i, span in enumerate(spans)}

        def embed(texts: list[str]) -> Any:  # each span encoded once, looked up for every video it is scored on
            return encoded[[row[t] for t in texts]]

        n = len(videos)
        scores = np.array([semantic_scores([spans[i]] * n, video, embed, EQ5_WEIGHT) for i in range(n)])
        cosines = (torch.nn.functional.normalize(encoded, dim=-1) @ normed.T).numpy()
    own = np.eye(n, dtype=bool)
    return {"videos": n, "retrieval_top1": round(top1, 4), "retrieval_chance": round(1 / n, 4),
            "eq5_auc": round(auc(scores[own], scores[~own]), 4),
            "cosine_auc": round(auc(cosines[own], cosines[~own]), 4),
            "eq5_own_mean": round(float(scores[own].mean()), 4),
            "eq5_mismatched_mean": round(float(scores[~own].mean()), 4)}
