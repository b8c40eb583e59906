"""The semantic reward's video side, precomputed: versioning, batching, resume, the fallback for a medium the
store lacks, a broken video, the CLI, and the asset in front of GRPO."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import training  # noqa: F401  (the CPU torchvision work-around)
from training.config import SemanticRewardConfig
from training.embedding_cache import VideoEmbeddingCache, embedding_version, media_key, precompute
from training.rewards import SemanticConsistencyReward

ROOT = Path(__file__).resolve().parent.parent
TINY = SemanticRewardConfig(model="tiny-siglip", pretrained=None, frames=4, span_tokens=32, mode="ungated")


def _media(world_root: str, videos: int = 5, images: int = 2) -> list[tuple[str, str | None]]:
    root = Path(world_root)
    out = [(str(p), None) for p in sorted((root / "videos").glob("*.mp4"))[:videos]]
    return out + [(str(p), None) for p in sorted((root / "images").glob("*.png"))[:images]]


def test_a_different_siglip_weights_frame_count_or_decode_size_is_a_different_version():
    base = embedding_version("tiny-siglip", None, 4, None)
    assert base == embedding_version("tiny-siglip", None, 4, None)
    others = {embedding_version("bench-siglip-b16", None, 4, None), embedding_version("tiny-clip", None, 4, None),
              embedding_version("tiny-siglip", None, 16, None), embedding_version("tiny-siglip", None, 4, 50176)}
    assert base not in others and len(others) == 4
    cache = VideoEmbeddingCache.from_config(TINY.model_copy(update={"frames": 8}), "/tmp/x")
    assert cache.version == embedding_version("tiny-siglip", None, 8, None) and cache.folder().name == cache.version


def test_precomputed_embeddings_are_what_the_reward_computes_and_the_reward_then_computes_none(small_world,
                                                                                             tmp_path):
    media = _media(small_world.root)
    report = precompute(media, VideoEmbeddingCache.from_config(TINY, str(tmp_path)), batch_media=3)
    assert (report.media, report.videos, report.images) == (7, 5, 2)
    assert (report.computed, report.already_stored, report.failed) == (7, 0, 0)
    on_the_fly = VideoEmbeddingCache.from_config(TINY, str(tmp_path / "elsewhere"))
    reward = SemanticConsistencyReward(TINY, str(tmp_path))
    for uri, _ in media:  # a batch of several media's frames gives each medium's own embedding
        assert reward.embeddings.media_embedding(uri) == pytest.approx(on_the_fly.media_embedding(uri), abs=1e-5)
    assert reward.embeddings.stats["computed"] == 0 and reward.embeddings.stats["from_storage"] == 7
    assert reward.tally()["semantic_embeddings_read"] == 7 and reward.tally()["semantic_embeddings_computed"] == 0


def test_a_second_precompute_pays_for_nothing_and_a_killed_one_keeps_what_it_stored(small_world, tmp_path):
    media = _media(small_world.root)
    cache = VideoEmbeddingCache.from_config(TINY, str(tmp_path))
    first = precompute(media[:3], cache)  # "killed" after three media: what it stored stays
    again = precompute(media, VideoEmbeddingCache.from_config(TINY, str(tmp_path)))
    assert first.computed == 3 and (again.computed, again.already_stored) == (4, 3)
    assert precompute(media, VideoEmbeddingCache.from_config(TINY, str(tmp_path))).computed == 0
    other = precompute(media, VideoEmbeddingCache.from_config(TINY.model_copy(update={"frames": 2}), str(tmp_path)))
    assert other.computed == 7  # another version: its own folder, nothing read from the first
    assert len({p.parent.name for p in (tmp_path / "reward_cache").rglob("*.npy")}) == 2


def test_a_medium_missing_from_the_store_is_computed_during_training_and_counted(small_world, tmp_path):
    media = _media(small_world.root)
    precompute(media[:-1], VideoEmbeddingCache.from_config(TINY, str(tmp_path)))
    reward = SemanticConsistencyReward(TINY, str(tmp_path))
    completions = ["<think>Let me see. A red circle moves.</think><answer>A</answer>"] * 2
    scores = reward(completions, path=[media[0][0], media[-1][0]])
    assert all(s >= 0 for s in scores)
    assert reward.tally()["semantic_embeddings_read"] == 1 and reward.tally()["semantic_embeddings_computed"] == 1
    assert VideoEmbeddingCache.from_config(TINY, str(tmp_path)).is_stored(media_key(media[-1][0], None))


def test_a_broken_video_is_reported_and_the_others_are_stored(world_copy, tmp_path):
    media = _media(str(world_copy), videos=3, images=0)
    Path(media[1][0]).write_bytes(b"not a video at all")
    report = precompute(media, VideoEmbeddingCache.from_config(TINY, str(tmp_path)), batch_media=2)
    assert (report.computed, report.failed) == (2, 1)
    assert report.failures[0]["uri"] == media[1][0] and report.failures[0]["error"]
    stored = {p.stem for p in (tmp_path / "reward_cache").rglob("*.npy")}
    assert stored == {media_key(media[0][0], None), media_key(media[2][0], None)}


def test_the_cli_embeds_one_shard_of_an_rl_set_into_the_store_grpo_reads(small_world, tmp_path, capsys):
    from training.video_embeddings import main
    from videorft.provenance import shard_of

    root = Path(small_world.root)
    rows = [{"path": str((root / r["path"]).resolve()), "media_sha256": f"{i:08x}" + "0" * 56}
            for i, r in enumerate(json.loads((root / "qa_videos.json").read_text())[:12])]
    data = tmp_path / "rl_set.parquet"
    pd.DataFrame(rows).to_parquet(data)
    recipe = tmp_path / "grpo.yaml"
    shutil.copy(ROOT / "configs" / "tiny" / "grpo.yaml", recipe)
    out = subprocess.run([sys.executable, "-m", "training.video_embeddings", "--config", str(recipe),
                          "--data", str(data), "--shard", "1", "--shards", "2", "--cache-root", str(tmp_path / "s"),
                          "--set", "reward.semantic.frames=2"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    expected = {media_key(r["path"], r["media_sha256"]) for r in rows if shard_of(r["media_sha256"], 2) == 1}
    assert report["version"] == embedding_version("tiny-siglip", None, 2, None)
    assert report["media"] == len(expected) and report["computed"] == len(expected)
    assert {p.stem for p in Path(report["store"]).glob("*.npy")} == expected
    from pretraining.config import load_pretrain_recipe

    embed_dim = load_pretrain_recipe().siglip.embed_dim  # the shipped tiny-siglip's
    assert np.load(next(Path(report["store"]).glob("*.npy"))).shape == (embed_dim,)
    assert main(["--config", str(recipe), "--data", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in capsys.readouterr().err


def test_each_semantic_setting_the_variants_use_is_one_version_and_variants_without_it_add_none(small_profile):
    from assets.training import embedding_settings
    from videorft.profile import VariantConfig

    assert list(embedding_settings(small_profile)) == [embedding_version("tiny-siglip", None, 4, None)]
    variants = dict(small_profile.training.variants)
    variants["eight_frames"] = VariantConfig.model_validate(
        {"description": "F = 8", "sft": "cot_sft_set",
         "rl": {"overrides": ["reward.semantic.frames=8"]}})
    variants["no_semantic"] = VariantConfig.model_validate(
        {"description": "no r_sc", "rl": {"semantic_mode": "off"}})
    profile = small_profile.model_copy(update={"training": small_profile.training.model_copy(
        update={"variants": variants})})
    assert sorted(embedding_settings(profile)) == sorted([embedding_version("tiny-siglip", None, 4, None),
                                                          embedding_version("tiny-siglip", None, 8, None)])
