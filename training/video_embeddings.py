"""``python -m training.video_embeddings``: precompute the semantic reward's video embeddings for an RL set
(the ``video_embeddings`` asset launches it). The cache and the computation are ``training.embedding_cache``'s;
this module resolves a command line (a GRPO recipe's ``reward.semantic``, the profile's storage and shards) into
a ``PrecomputeJob``. It is apart from the cache so that the rewards, which read the cache, and the recipes,
which name the rewards, import one way."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# pretraining.siglip imports clip_frames from here: its source is hashed into the shipped tiny-siglip's card, so
# the import stays until the next rebuild of the shipped models
from training.embedding_cache import (
    LOG,
    VideoEmbeddingCache,
    clip_frames,  # noqa: F401
    media_key,
    media_of_shard,
    precompute,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.video_embeddings",
                                     description="Precompute the semantic reward's video embeddings (paper Eq. 5's "
                                     "video side) for an RL set, into the store GRPO reads.")
    parser.add_argument("--config", required=True, help="the GRPO recipe: its reward.semantic says what to compute")
    parser.add_argument("--set", action="append", default=[], help="recipe override (repeatable)")
    parser.add_argument("--data", required=True, help="the RL set: .parquet/.jsonl file or folder (local or s3://)")
    parser.add_argument("--cache-root", default=None,
                        help="store root (default: reward.semantic.cache_root, else the profile's storage root)")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--shard", type=int, default=None, help="only the media of this curation shard")
    parser.add_argument("--shards", type=int, default=None, help="the shard count (default: profile ingest.shards)")
    parser.add_argument("--batch-media", type=int, default=8, help="media per image-tower forward")
    parser.add_argument("--decode-workers", type=int, default=4)
    return parser


@dataclass
class PrecomputeJob:
    """A resolved command line: the cache (the recipe's SigLIP setting and the store) and the media to embed."""

    cache: VideoEmbeddingCache
    media: list[tuple[str, str | None]]
    batch_media: int
    decode_workers: int

    def missing(self) -> int:
        """Media not yet stored (existence checks only: nothing is loaded or decoded)."""
        return sum(not self.cache.is_stored(media_key(u, s)) for u, s in dict.fromkeys(self.media))

    def media_digest(self) -> str:
        return hashlib.sha256("\n".join(sorted({media_key(u, s) for u, s in self.media})).encode()).hexdigest()[:16]

    def run(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        report = precompute(self.media, self.cache, self.batch_media, self.decode_workers, progress)
        return {**report.as_dict(), "media_digest": self.media_digest()}


def resolve_job(argv: list[str]) -> PrecomputeJob:
    """The job a command line names; raises ``ValueError`` (a bad recipe, profile or data) with the reason."""
    from training.config import load_recipe
    from training.data import read_table
    from videorft.media import media_cache_dir
    from videorft.profile import load_profile

    args = build_parser().parse_args(argv)
    semantic = load_recipe(args.config, "grpo", args.set).reward.semantic
    profile = load_profile(args.profile)
    storage = profile.resolved_storage_root()
    cache = VideoEmbeddingCache.from_config(semantic, args.cache_root or semantic.cache_root or storage,
                                            media_cache_dir(storage))
    media = media_of_shard(read_table(args.data), args.shard, args.shards or profile.ingest.shards)
    return PrecomputeJob(cache, media, args.batch_media, args.decode_workers)


def main(argv: list[str] | None = None) -> int:
    from videorft.pipes import pipes_session

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")  # open_clip: root logger
    LOG.setLevel(logging.INFO)
    try:
        job = resolve_job(sys.argv[1:] if argv is None else argv)
    except (ValueError, FileNotFoundError) as exc:  # RecipeError, ProfileError, DataError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pipes_session() as pipes:
        log = pipes.log if pipes is not None else LOG

        def progress(done: int, total: int) -> None:
            log.info(f"video_embeddings: {done}/{total} media embedded")

        result = job.run(progress)
        if pipes is not None:
            pipes.report_custom_message({"kind": "result", "result": result})
        else:
            print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
