"""SigLIP embeddings for the semantic-consistency reward: one per video, computed once, in batches, before RL.

A video's embedding is the mean of the SigLIP image embeddings of ``F`` uniformly sampled frames (paper Eq. 5).
It depends only on the video and on the embedding's version (SigLIP model and weights, ``F``, the decode size),
so the ``video_embeddings`` asset computes every video of ``rl_set`` in batches before GRPO (``precompute``; its
command line: ``python -m training.video_embeddings``) into ``<root>/reward_cache/<version>/`` (a local folder
or ``s3://``), and GRPO's reward reads it there and only encodes text. A video that is not there (a new one, a
failed precompute) is computed on its first visit, counted in ``stats["computed"]``, and stored for every later
process. The official implementation instead re-decodes the video and runs SigLIP on every frame for every
completion. SigLIP itself loads lazily, once per process. With ``compile`` the image and text towers run through
``torch.compile`` (one compilation per process and batch shape), which gives the same embeddings faster; worth
it for long runs, not for a test of a few steps.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from videorft.media import MIN_PIXELS
from videorft.storage import as_path

LOG = logging.getLogger("training.video_embeddings")
STORE_FOLDER = "reward_cache"


def embedding_version(model: str, pretrained: str | None, frames: int, max_pixels: int | None) -> str:
    """The store folder of one embedding setting: a different SigLIP, weights, frame count or decode size is a
    different version (``max_pixels`` None: SigLIP's own input size, so the model name fixes it)."""
    from videorft.clip_models import weights_label

    tag = f"{model}-{weights_label(model, pretrained)}-f{frames}-p{max_pixels or 'native'}"
    return tag.replace("/", "_").replace(":", "_")


def media_key(uri: str, sha256: str | None) -> str:
    """A video's key in the store: its content hash (the pool's ``media_sha256``), else the URI's hash."""
    return (sha256 or hashlib.sha256(uri.encode()).hexdigest())[:32]


@dataclass
class PrecomputeReport:
    """What one ``precompute`` call did: distinct media seen, computed now, found stored, failed to decode."""

    version: str
    store: str
    media: int = 0
    videos: int = 0
    images: int = 0
    computed: int = 0
    already_stored: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0

    @property
    def media_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds and self.computed else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "media_per_second": self.media_per_second}


class VideoEmbeddingCache:
    def __init__(self, model: str, pretrained: str | None, frames: int, span_tokens: int,
                 cache_root: str | None = None, media_cache_dir: str | None = None, compile: bool = False,
                 max_pixels: int | None = None, device: str | None = None) -> None:
        self.model_name, self.pretrained, self.frames, self.span_tokens = model, pretrained, frames, span_tokens
        self.max_pixels = max_pixels
        self.compile = compile
        self.device = device  # None: the GPU when there is one (the reward and the precompute run on the GPU pool)
        self._image_tower: Any = None
        self._text_tower: Any = None
        self.cache_root = cache_root
        self.media_cache_dir = media_cache_dir
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.stats = {"computed": 0, "from_storage": 0, "from_memory": 0}

    @classmethod
    def from_config(cls, config: Any, cache_root: str | None = None, media_cache_dir: str | None = None
                    ) -> VideoEmbeddingCache:
        """From a recipe's ``reward.semantic`` (``training.config.SemanticRewardConfig``)."""
        return cls(config.model, config.pretrained, config.frames, config.span_tokens, cache_root=cache_root,
                   media_cache_dir=media_cache_dir, compile=config.compile, max_pixels=config.max_pixels)

    @property
    def version(self) -> str:
        return embedding_version(self.model_name, self.pretrained, self.frames, self.max_pixels)

    # -- model ---------------------------------------------------------------------------------------------
    def _clip(self) -> tuple[Any, Any, Any]:
        from videorft.clip_models import load_clip

        model, tokenizer, preprocess = load_clip(self.model_name, self.pretrained, self.span_tokens)
        model.to(self._device())  # the process's one shared copy; a no-op once it is there
        return model, tokenizer, preprocess

    def _device(self) -> str:
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def image_embeddings(self, batch: Any) -> Any:
        """Normalised SigLIP image embeddings of a preprocessed ``(N, 3, H, W)`` batch."""
        import torch
        import torch.nn.functional as F

        model, _, _ = self._clip()
        if self._image_tower is None:
            # compiled separately from the shared (cached) model, which other callers use eagerly
            self._image_tower = torch.compile(model.visual, dynamic=False) if self.compile else model.visual
        with torch.inference_mode():
            return F.normalize(self._image_tower(batch.to(self._device(), non_blocking=True)), dim=-1)

    def text_embeddings(self, texts: list[str]) -> Any:
        """SigLIP text embeddings of ``texts``, each truncated to the first ``span_tokens`` tokens (M)."""
        import torch
        import torch.nn.functional as F

        model, tokenizer, _ = self._clip()
        if self._text_tower is None:
            tower = model.text if hasattr(model, "text") else model.encode_text  # SigLIP: a separate text tower
            self._text_tower = torch.compile(tower, dynamic=False) if self.compile else tower
        with torch.inference_mode():
            return F.normalize(self._text_tower(tokenizer(texts).to(self._device())), dim=-1)

    # -- the store -----------------------------------------------------------------------------------------
    def folder(self) -> Any:
        return as_path(self.cache_root).joinpath(STORE_FOLDER, self.version)

    def is_stored(self, key: str) -> bool:
        return bool(self.cache_root) and (self.folder() / f"{key}.npy").exists()

    def _load_stored(self, key: str) -> np.ndarray | None:
        if not self.cache_root:
            return None
        path = self.folder() / f"{key}.npy"
        try:
            if not path.exists():
                return None
            return np.load(io.BytesIO(path.read_bytes()))
        except (OSError, ValueError):
            return None

    def _store(self, key: str, embedding: np.ndarray) -> None:
        if not self.cache_root:
            return
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, embedding)
        tmp = folder / f"{key}.npy.part"
        tmp.write_bytes(buffer.getvalue())
        tmp.rename(folder / f"{key}.npy")  # a reader never sees a torn file under the final name

    # -- videos --------------------------------------------------------------------------------------------
    def decoded(self, uri: str) -> Any:
        """The preprocessed ``(F, 3, H, W)`` frames of a video, or ``(1, 3, H, W)`` for an image."""
        model, _, preprocess = self._clip()
        return clip_frames(uri, self.frames, model, preprocess, self.max_pixels, self.media_cache_dir)

    def _compute(self, uri: str) -> np.ndarray:
        return self.image_embeddings(self.decoded(uri)).mean(dim=0).float().cpu().numpy()

    def media_embedding(self, uri: str, sha256: str | None = None) -> np.ndarray:
        key = media_key(uri, sha256)
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
            LOG.info("semantic reward: %s had no precomputed embedding (version %s); computed it now", uri,
                     self.version)
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


def clip_frames(uri: str, frames: int, model: Any, preprocess: Any, max_pixels: int | None = None,
                media_cache_dir: str | None = None) -> Any:
    """A video's ``frames`` uniformly sampled frames (an image: itself) as SigLIP sees them: decoded at
    ``max_pixels`` (None: the model's input side squared) and run through its ``preprocess``; ``(F, 3, H, W)``.
    The reward, the precompute and SigLIP's own pretraining (``pretraining.siglip``) all decode this way."""
    import torch
    from PIL import Image

    from videorft.clip_models import image_side
    from videorft.media import load_frames, load_image, media_kind

    pixels = max_pixels or max(image_side(model) ** 2, MIN_PIXELS)
    if media_kind(uri) == "image":
        arrays = [load_image(uri, max_pixels=pixels, cache_dir=media_cache_dir)]
    else:
        arrays = list(load_frames(uri, frames=frames, max_pixels=pixels, cache_dir=media_cache_dir).array)
    return torch.stack([preprocess(Image.fromarray(a)) for a in arrays])


# -- the precompute (the video_embeddings asset) ------------------------------------------------------------

def _batches(items: list[tuple[str, str, Any]], size: int) -> Iterator[list[tuple[str, str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def precompute(media: Iterable[tuple[str, str | None]], cache: VideoEmbeddingCache, batch_media: int = 8,
               decode_workers: int = 4, progress: Callable[[int, int], None] | None = None) -> PrecomputeReport:
    """Store the embedding of every distinct ``(uri, sha256)`` not yet stored under ``cache``'s version.

    Decoding runs ``decode_workers`` threads ahead of the image tower, which sees ``batch_media`` media's
    frames per forward. A medium that fails to decode is reported in ``failures`` and skipped (GRPO's data
    loader skips it too); the rest are stored. Resumable: a killed precompute keeps what it stored.
    """
    from videorft.media import MediaDecodeError, media_kind

    if not cache.cache_root:
        raise ValueError("precompute needs a cache_root: the store GRPO's reward reads")
    started = time.perf_counter()
    distinct: dict[str, str] = {}
    for uri, sha in media:
        distinct.setdefault(media_key(uri, sha), uri)
    report = PrecomputeReport(version=cache.version, store=str(cache.folder()), media=len(distinct))
    kinds = [media_kind(uri) for uri in distinct.values()]
    report.images = kinds.count("image")
    report.videos = len(kinds) - report.images
    todo = [(key, uri) for key, uri in distinct.items() if not cache.is_stored(key)]
    report.already_stored = len(distinct) - len(todo)

    def decode(item: tuple[str, str]) -> tuple[str, str, Any]:
        key, uri = item
        t0 = time.perf_counter()
        try:
            frames: Any = cache.decoded(uri)
        except (MediaDecodeError, OSError, ValueError) as exc:
            frames = exc
        return key, uri, (frames, time.perf_counter() - t0)

    import torch

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, decode_workers)) as pool:
        # decoding is lazy and ordered: at most two batches of frames in memory ahead of the tower
        decoded = pool.map(decode, todo, chunksize=1) if todo else iter(())
        pending: list[tuple[str, str, Any]] = []
        for item in decoded:
            pending.append(item)
            if len(pending) < batch_media and done + len(pending) < len(todo):
                continue
            ok = []
            for key, uri, (frames, seconds) in pending:
                report.decode_seconds += seconds
                if isinstance(frames, BaseException):
                    report.failed += 1
                    report.failures.append({"uri": uri, "error": str(frames)})
                    LOG.warning("video_embeddings: %s cannot be decoded (%s); skipped", uri, frames)
                else:
                    ok.append((key, frames))
            if ok:
                t0 = time.perf_counter()
                embedded = cache.image_embeddings(torch.cat([frames for _, frames in ok]))
                offset = 0
                for key, frames in ok:
                    cache._store(key, embedded[offset:offset + len(frames)].mean(dim=0).float().cpu().numpy())
                    offset += len(frames)
                report.encode_seconds += time.perf_counter() - t0
                report.computed += len(ok)
            done += len(pending)
            pending = []
            if progress is not None:
                progress(done, len(todo))
    report.seconds = time.perf_counter() - started
    return report


def media_of_shard(table: Any, shard: int | None, shards: int | None) -> list[tuple[str, str | None]]:
    """The distinct ``(path, media_sha256)`` of an RL table, restricted to one curation shard (shards follow
    the media, as in ``videorft.provenance.shard_of``)."""
    from videorft.provenance import shard_of

    rows = table[["path", "media_sha256"]].drop_duplicates() if "media_sha256" in table else \
        table[["path"]].drop_duplicates().assign(media_sha256=None)
    out = []
    for uri, sha in rows.itertuples(index=False):
        sha = sha if isinstance(sha, str) and sha else None
        if shard is not None and shards and shard_of(sha or media_key(uri, None), shards) != shard:
            continue
        out.append((uri, sha))
    return out
