"""Where an artifact came from: the git commit of the code, stable content hashes, and the shard a medium's
rows belong to."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from typing import Any

from videorft.profile import project_root


@lru_cache(maxsize=1)
def git_sha() -> str:
    """The checkout's commit (``VIDEORFT_GIT_SHA`` wins, for images built without ``.git``)."""
    if os.environ.get("VIDEORFT_GIT_SHA"):
        return os.environ["VIDEORFT_GIT_SHA"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True,
                             timeout=5, check=True)
        sha = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_root(),
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short sha256 of JSON-able data with sorted keys: equal content, equal hash, on any machine."""
    payload = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def shard_of(media_sha256: str, shards: int) -> int:
    """Shards follow the media, so every question about one video lands in one shard: the video is
    described once, and its frames are decoded once per shard (curation); its embedding is computed once
    (``video_embeddings``)."""
    return int(media_sha256[:8], 16) % shards
