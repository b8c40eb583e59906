"""Decoded frames for the models (training and evaluation): per (media, frame spec), in memory and on disk.

Frames are decoded by our video I/O (decord, PyAV fallback) to the configured count and pixel budget and
handed to the processor as arrays (transformers 5 decodes file paths only through torchcodec, which is a
CUDA build on PyPI). A video is decoded once per spec: every epoch, GRPO group member and resumed run after
the first reads the cached ``uint8`` array instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from videorft.media import load_frames, load_image, media_kind
from videorft.profile import FrameSpec


class FrameCache:
    """``(T, H, W, 3)`` uint8 frames of a video (or ``(H, W, 3)`` of an image), decoded at most once.

    ``disk_dir`` (optional) keeps them across processes as ``.npy`` files, written atomically; the memory
    side is an LRU of ``capacity`` entries.
    """

    def __init__(self, spec: FrameSpec, disk_dir: str | os.PathLike[str] | None = None, capacity: int = 256,
                 media_cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.spec, self.capacity = spec, capacity
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self.media_cache_dir = media_cache_dir
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0  # how many decodes this process paid for (tests and metrics read it)

    def _key(self, uri: str, sha256: str | None) -> str:
        ident = sha256 or hashlib.sha256(uri.encode()).hexdigest()
        return f"{ident[:32]}-{self.spec.key()}"

    def get(self, uri: str, sha256: str | None = None) -> np.ndarray:
        key = self._key(uri, sha256)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        array = self._read_disk(key)
        if array is None:
            array = self._decode(uri)
            self._write_disk(key, array)
        with self._lock:
            self._memory[key] = array
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)
        return array

    def _decode(self, uri: str) -> np.ndarray:
        self.decoded += 1
        if media_kind(uri) == "image":
            return load_image(uri, max_pixels=self.spec.max_pixels, min_pixels=self.spec.min_pixels,
                              cache_dir=self.media_cache_dir)
        return load_frames(uri, frames=self.spec.frames, max_pixels=self.spec.max_pixels,
                           min_pixels=self.spec.min_pixels, cache_dir=self.media_cache_dir).array

    def _read_disk(self, key: str) -> np.ndarray | None:
        if self.disk_dir is None:
            return None
        path = self.disk_dir / key[:2] / f"{key}.npy"
        try:
            return np.load(path) if path.exists() else None
        except (OSError, ValueError):  # a torn file from a killed writer on a non-atomic filesystem: decode again
            return None

    def _write_disk(self, key: str, array: np.ndarray) -> None:
        if self.disk_dir is None:
            return
        path = self.disk_dir / key[:2] / f"{key}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)


def media_part(kind: str, array: np.ndarray) -> dict[str, object]:
    """The chat-message part for decoded media: ``{"type": "video", "video": frames}`` or the image one."""
    if kind == "image":
        from PIL import Image

        return {"type": "image", "image": Image.fromarray(array)}
    return {"type": "video", "video": array}
