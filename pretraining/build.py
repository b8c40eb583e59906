"""The stages ``python -m pretraining`` and the ``pretraining`` assets run: the world, the SigLIP, the base and the
base's measurement on the fixtures. Each stage installs what it built (with its card) and is resumable from its
work folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pretraining import base, card, siglip
from pretraining.config import PretrainRecipe
from pretraining.data import Video, build_videos
from videorft.shipped import TINY_PRETRAINED, TINY_SIGLIP

STAGES = ("siglip", "base", "measure")
Log = Callable[[str], None]


def world(recipe: PretrainRecipe, work: Path, log: Log = print) -> list[Video]:
    videos = build_videos(recipe, work / "world")
    log(f"pretraining world: {len(videos)} videos ({recipe.held_out_videos} held out) under {work / 'world'}")
    return videos


def project_tokenizer(recipe: PretrainRecipe) -> Any:
    """The tokenizer both models read (the tiny processor's, built from the project's corpus)."""
    return base.build(recipe)[1].tokenizer


def siglip_stage(recipe: PretrainRecipe, videos: list[Video], work: Path, target: Path, source: str,
                 log: Log = print) -> Path:
    """Pretrain, measure and install the SigLIP; ``source`` is the code's hash when the stage started."""
    started = time.perf_counter()
    fitted = siglip.fit(recipe, videos, work / "siglip-model", work, project_tokenizer(recipe), log)
    model, text_tokenizer, preprocess = siglip.create(work / "siglip-model", recipe.seed)
    metrics = siglip.measure(model.eval(), text_tokenizer, preprocess, [v for v in videos if v.held_out],
                             recipe.siglip.frames, recipe.seed, recipe.siglip.context_length)
    log(f"siglip: held out {metrics}")
    return card.install(work / "siglip-model", target, {
        **card.base_card(TINY_SIGLIP, recipe, source, time.perf_counter() - started,
                         "The embedded profile's SigLIP: the semantic-consistency reward's (Eq. 5), the "
                         "video_embeddings asset's and the CoT filter's."),
        "metrics": {"held_out": metrics, "training": fitted}})


def base_stage(recipe: PretrainRecipe, videos: list[Video], work: Path, target: Path, source: str,
               log: Log = print) -> Path:
    """Pretrain, score and install the base; ``source`` is the code's hash when the stage started."""
    from training.model import load_model_and_processor

    started = time.perf_counter()
    fitted = base.fit(recipe, videos, work / "base-model", work, log)
    model, processor = load_model_and_processor(str(work / "base-model"))
    metrics = base.held_out_accuracy(model, processor, recipe, videos, work, recipe.base.eval_questions)
    log(f"base: held-out multiple choice {metrics['multiple_choice_accuracy']} "
        f"(chance {metrics['multiple_choice_chance']})")
    return card.install(work / "base-model", target, {
        **card.base_card(TINY_PRETRAINED, recipe, source, time.perf_counter() - started,
                         "The embedded profile's base model: a tiny Qwen2.5-VL that perceives the synthetic world, "
                         "trained on captions and direct-answer questions (answers only, no <think>)."),
        "metrics": {"held_out_pretraining_questions": metrics, "training": fitted}})


def measure_stage(target: Path, profile_name: str, work: Path, log: Log = print) -> Any:
    """The installed shipped base on the profile's fixtures, with and without its video, in both answer modes;
    into its card."""
    from pretraining.measure import fixture_controls, summary
    from videorft.profile import load_profile

    profile = load_profile(profile_name)
    tables = {}
    for mode, key in (("generate", "fixtures"), ("choice", "fixtures_choice")):
        tables[mode] = table = fixture_controls(TINY_PRETRAINED, profile, work / "fixtures", answer_mode=mode)
        log(f"base on the fixtures, answer mode {mode} (lenient protocol, percent):\n" + table.to_string(index=False))
        card.update_metrics(target, key, {"profile": profile.name, "answer_mode": mode, **summary(table)})
    return tables


def build(recipe: PretrainRecipe, work: Path, models_dir: Path, stages: tuple[str, ...], profile_name: str,
          log: Log = print) -> None:
    """Every stage asked for, in order; measuring only when installing into the package (what the profile loads)."""
    import torch

    from videorft.shipped import shipped_dir

    started = time.perf_counter()
    sources = {name: card.source_hash(name) for name in (TINY_SIGLIP, TINY_PRETRAINED)}  # what is about to run
    torch.manual_seed(recipe.seed)
    videos = world(recipe, work, log)
    if "siglip" in stages:
        siglip_stage(recipe, videos, work, models_dir / TINY_SIGLIP, sources[TINY_SIGLIP], log)
    if "base" in stages:
        base_stage(recipe, videos, work, models_dir / TINY_PRETRAINED, sources[TINY_PRETRAINED], log)
    if "measure" in stages and models_dir / TINY_PRETRAINED == shipped_dir(TINY_PRETRAINED):
        measure_stage(models_dir / TINY_PRETRAINED, profile_name, work, log)
    log(f"pretraining: done in {time.perf_counter() - started:.0f} s")
