"""SigLIP embeddings for the semantic-consistency reward: one per video, computed once.

A video's embedding is the mean of the SigLIP image embeddings of ``F`` uniformly sampled frames (paper
Eq. 5). It depends only on the video, so it is computed on the video's first visit and then served from
memory for every other completion, step and epoch, and from ``<cache_root>/reward_cache/`` (a local folder or
``s3://``) for every later process: resumed runs, other ranks, the next experiment with the same model. The
official implementation instead re-decodes the video and runs SigLIP on every frame for every completion.
SigLIP itself loads lazily, once per process. With ``compile`` the image and text towers run through
``torch.compile`` (one compilation per process and batch shape: F frames or 1 image; the group's span
count), which gives the same embeddings faster; worth it for long runs, not for a test of a few steps.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import numpy as np

from videorft.media import MIN_PIXELS
from videorft.storage import as_path


class VideoEmbeddingCache:
    def __init__(self, model: str, pretrained: str | None, frames: int, span_tokens: int,
                 cache_root: str | None = None, media_cache_dir: str | None = None, compile: bool = False) -> None:
        self.model_name, self.pretrained, self.frames, self.span_tokens = model, pretrained, frames, span_tokens
        self.compile = compile
        self._image_tower: Any = None
        self._text_tower: Any = None
        self.cache_root = cache_root
        self.media_cache_dir = media_cache_dir
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.stats = {"computed": 0, "from_storage": 0, "from_memory": 0}

    # -- model ---------------------------------------------------------------------------------------------
    def _clip(self) -> tuple[Any, Any, Any]:
        from videorft.clip_models import load_clip

        return load_clip(self.model_name, self.pretrained, self.span_tokens)

    def image_embeddings(self, batch: Any) -> Any:
        """Normalised SigLIP image embeddings of a preprocessed ``(N, 3, H, W)`` batch."""
        import torch
        import torch.nn.functional as F

        model, _, _ = self._clip()
        if self._image_tower is None:
            # compiled separately from the shared (cached) model, which other callers use eagerly
            self._image_tower = torch.compile(model.visual, dynamic=False) if self.compile else model.visual
        with torch.inference_mode():
            return F.normalize(self._image_tower(batch), dim=-1)

    def text_embeddings(self, texts: list[str]) -> Any:
        """SigLIP text embeddings of ``texts``, each truncated to the first ``span_tokens`` tokens (M)."""
        import torch
        import torch.nn.functional as F

        model, tokenizer, _ = self._clip()
        if self._text_tower is None:
            tower = model.text if hasattr(model, "text") else model.encode_text  # SigLIP: a separate text tower
            self._text_tower = torch.compile(tower, dynamic=False) if self.compile else tower
        with torch.inference_mode():
            return F.normalize(self._text_tower(tokenizer(texts)), dim=-1)

    # -- videos --------------------------------------------------------------------------------------------
    def _key(self, uri: str, sha256: str | None) -> str:
        ident = sha256 or hashlib.sha256(uri.encode()).hexdigest()
        return ident[:32]

    def _folder(self) -> Any:
        tag = f"{self.model_name}-{self.pretrained or 'random'}-f{self.frames}".replace("/", "_")
        return as_path(self.cache_root).joinpath("reward_cache", tag)

    def _load_stored(self, key: str) -> np.ndarray | None:
        if not self.cache_root:
            return None
        path = self._folder() / f"{key}.npy"
        try:
            if not path.exists():
                return None
            return np.load(io.BytesIO(path.read_bytes()))
        except (OSError, ValueError):
            return None

    def _store(self, key: str, embedding: np.ndarray) -> None:
        if not self.cache_root:
            return
        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, embedding)
        tmp = folder / f"{key}.npy.part"
        tmp.write_bytes(buffer.getvalue())
        tmp.rename(folder / f"{key}.npy")  # a reader never sees a torn file under the final name

    def _compute(self, uri: str) -> np.ndarray:
        import torch
        from PIL import Image

        from videorft.clip_models import image_side
        from videorft.media import load_frames, load_image, media_kind

        model, _, preprocess = self._clip()
        size = image_side(model)
        if media_kind(uri) == "image":
            arrays = [load_image(uri, max_pixels=max(size * size, MIN_PIXELS), cache_dir=self.media_cache_dir)]
        else:
            arrays = list(load_frames(uri, frames=self.frames, max_pixels=max(size * size, MIN_PIXELS),
                                      cache_dir=self.media_cache_dir).array)
        frames = self.image_embeddings(torch.stack([preprocess(Image.fromarray(a)) for a in arrays]))
        return frames.mean(dim=0).float().numpy()

    def media_embedding(self, uri: str, sha256: str | None = None) -> np.ndarray:
        key = self._key(uri, sha256)
        with self._lock:
            if key in self._memory:
                self.stats["from_memory"] += 1
                return self._memory[key]
        embedding = self._load_stored(key)
        if embedding is not None:
            self.stats["from_storage"] += 1
        else:
            embedding = self._compute(uri)
            self.stats["computed"] += 1
            self._store(key, embedding)
        with self._lock:
            self._memory[key] = embedding
        return embedding

    def media_embeddings(self, uris: list[str], shas: list[str | None]) -> Any:
        """``(N, D)`` tensor, one row per completion; each distinct video is looked up once per call."""
        import torch

        rows: dict[tuple[str, str | None], np.ndarray] = {}
        for uri, sha in zip(uris, shas, strict=True):
            if (uri, sha) not in rows:
                rows[(uri, sha)] = self.media_embedding(uri, sha)
        return torch.from_numpy(np.stack([rows[(u, s)] for u, s in zip(uris, shas, strict=True)]))
