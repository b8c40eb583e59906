"""Video and image I/O: probe, uniform frame sampling (N frames or F fps), resizing to a pixel budget.

decord is the primary decoder, PyAV the fallback. Only the kept frames are resized (PyAV inside swscale,
decord afterwards), and sparse samples of long videos are decoded by parallel readers. Local paths and
``s3://`` URIs are accepted (remote media is fetched once into a local cache). Every failure to find or
decode a file is a ``MediaDecodeError``.
"""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from videorft.storage import is_remote, local_copy

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
PATCH_FACTOR = 28  # Qwen2.5-VL: 14 px patches merged 2x2
MIN_PIXELS = 4 * PATCH_FACTOR * PATCH_FACTOR  # Qwen2.5-VL's smallest frame: 2x2 merged patches
MEDIA_CACHE_ENV = "VIDEORFT_MEDIA_CACHE"
PARALLEL_MIN_FRAMES = 1000  # shorter videos decode faster with one reader than with the cost of opening more
Backend = Literal["auto", "decord", "pyav"]


class MediaDecodeError(RuntimeError):
    """A media file that is missing, unreadable or not decodable. ``reason`` is short and stable."""

    def __init__(self, uri: str, reason: str, detail: str = "") -> None:
        self.uri, self.reason, self.detail = uri, reason, detail
        super().__init__(f"{uri}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class MediaInfo:
    uri: str
    kind: Literal["video", "image"]
    width: int
    height: int
    duration: float = 0.0
    fps: float = 0.0
    num_frames: int = 1
    codec: str = ""
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Frames:
    """Sampled frames ``(T, H, W, 3)`` uint8 RGB with their source indices and timestamps in seconds."""

    array: np.ndarray
    indices: list[int]
    timestamps: list[float]
    source_fps: float


def media_kind(uri: str) -> Literal["video", "image"] | None:
    ext = os.path.splitext(uri.split("?", 1)[0])[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def media_cache_dir(storage_root: str | None = None) -> str:
    """Where remote (``s3://``) media are downloaded once: ``$VIDEORFT_MEDIA_CACHE``, else ``cache/media`` under a
    local storage root, else a folder in the system's temporary directory (an ``s3://`` root, or none given).
    The one definition of this location: every stage's default reads it."""
    if os.environ.get(MEDIA_CACHE_ENV):
        return os.environ[MEDIA_CACHE_ENV]
    if storage_root and not is_remote(storage_root):
        return str(Path(storage_root) / "cache" / "media")
    return str(Path(tempfile.gettempdir()) / "videorft-media")


def local_media(uri: str, cache_dir: str | os.PathLike[str] | None) -> str:
    try:
        path = local_copy(uri, cache_dir or media_cache_dir())
    except FileNotFoundError as exc:
        raise MediaDecodeError(uri, "missing file") from exc
    except OSError as exc:
        raise MediaDecodeError(uri, "unreadable file", str(exc)) from exc
    if not path.is_file():
        raise MediaDecodeError(uri, "missing file")
    if path.stat().st_size == 0:
        raise MediaDecodeError(uri, "empty file")
    return str(path)


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int,
                 factor: int = PATCH_FACTOR) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule: sides are multiples of ``factor``, area within budget, aspect kept."""
    if min(height, width) <= 0:
        raise ValueError(f"bad frame size {width}x{height}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def sample_indices(num_frames: int, source_fps: float, frames: int | None = None, fps: float | None = None,
                   max_frames: int = 768) -> list[int]:
    """Uniform indices: ``frames`` evenly spread over the video, or one every ``1/fps`` seconds."""
    if num_frames <= 0:
        raise ValueError("video has no frames")
    if (frames is None) == (fps is None):
        raise ValueError("give exactly one of frames or fps")
    if fps is not None:
        duration = num_frames / source_fps if source_fps > 0 else num_frames
        count = max(1, math.floor(duration * fps + 1e-6))
        idx = [min(num_frames - 1, round(i / fps * source_fps)) for i in range(count)]
        if len(idx) > max_frames:
            idx = [idx[i] for i in np.linspace(0, len(idx) - 1, max_frames).round().astype(int)]
        return idx
    assert frames is not None
    return np.linspace(0, num_frames - 1, min(frames, max_frames)).round().astype(int).tolist()


def probe(uri: str, cache_dir: str | os.PathLike[str] | None = None) -> MediaInfo:
    """Metadata of a video or image, after proving that its first frame decodes."""
    kind = media_kind(uri)
    if kind is None:
        raise MediaDecodeError(uri, "unsupported media extension")
    local = local_media(uri, cache_dir)
    size = os.path.getsize(local)
    if kind == "image":
        try:
            with Image.open(local) as img:
                img.load()
                return MediaInfo(uri=uri, kind="image", width=img.width, height=img.height,
                                 codec=img.format or "", size_bytes=size)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise MediaDecodeError(uri, "undecodable image", str(exc)) from exc
    try:
        with av.open(local) as container:
            if not container.streams.video:
                raise MediaDecodeError(uri, "no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            fps = float(rate)
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            num_frames = int(stream.frames or round(duration * fps))
            first = next(container.decode(stream), None)
            if first is None:
                raise MediaDecodeError(uri, "no decodable frame")
            return MediaInfo(uri=uri, kind="video", width=first.width, height=first.height,
                             duration=round(duration, 4), fps=round(fps, 4), num_frames=num_frames,
                             codec=stream.codec_context.name, size_bytes=size)
    except MediaDecodeError:
        raise
    except (av.FFmpegError, StopIteration, ValueError, OSError) as exc:
        raise MediaDecodeError(uri, "undecodable video", str(exc)) from exc


def _resize_all(array: np.ndarray, h: int, w: int) -> np.ndarray:
    if array.shape[1:3] == (h, w):
        return array
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BICUBIC)) for f in array])


def _decord_frames(local: str, frames: int | None, fps: float | None, min_pixels: int, max_pixels: int,
                   max_frames: int, workers: int) -> Frames:
    import decord

    reader = decord.VideoReader(local, num_threads=1)
    source_fps = float(reader.get_avg_fps())
    idx = sample_indices(len(reader), source_fps, frames, fps, max_frames)
    # Sparse samples of a long video cost one keyframe seek plus up to a GOP of decoding each: split them into
    # contiguous runs decoded by parallel readers. Decoding happens at native size (decord would otherwise
    # scale every intermediate frame it decodes while seeking) and only the kept frames are resized.
    runs = max(1, min(workers, len(idx) // 4)) if len(reader) > PARALLEL_MIN_FRAMES else 1
    if runs == 1:
        array = reader.get_batch(idx).asnumpy()
    else:
        order = sorted(range(len(idx)), key=idx.__getitem__)
        chunks = [[idx[i] for i in order[k * len(idx) // runs:(k + 1) * len(idx) // runs]] for k in range(runs)]
        with ThreadPoolExecutor(runs) as pool:
            parts = list(pool.map(lambda c: decord.VideoReader(local, num_threads=1).get_batch(c).asnumpy(),
                                  chunks))
        by_index = dict(zip([i for c in chunks for i in c], np.concatenate(parts), strict=True))
        array = np.stack([by_index[i] for i in idx])
    h, w = smart_resize(array.shape[1], array.shape[2], min_pixels, max_pixels)
    return Frames(array=_resize_all(array, h, w), indices=idx, timestamps=[round(i / source_fps, 4) for i in idx],
                  source_fps=source_fps)


def _pyav_frames(local: str, frames: int | None, fps: float | None, min_pixels: int, max_pixels: int,
                 max_frames: int, workers: int) -> Frames:
    with av.open(local) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source_fps = float(stream.average_rate or stream.guessed_rate or 0) or 1.0
        total = int(stream.frames) or round(float(stream.duration * stream.time_base) * source_fps)
        idx = sample_indices(total, source_fps, frames, fps, max_frames)
        h, w = smart_resize(stream.codec_context.height, stream.codec_context.width, min_pixels, max_pixels)
        wanted = sorted(set(idx))
        got: dict[int, np.ndarray] = {}
        # Sparse sampling of a long video: seek to the keyframe before each target instead of decoding it all.
        stride = (wanted[-1] - wanted[0]) / max(1, len(wanted) - 1) if len(wanted) > 1 else 0
        start_pts = stream.start_time or 0
        ticks_per_frame = 1 / (source_fps * float(stream.time_base))
        if stride > 2 * source_fps:
            for target in wanted:
                container.seek(int(start_pts + target * ticks_per_frame), stream=stream, backward=True)
                for frame in container.decode(stream):
                    current = round((frame.pts - start_pts) / ticks_per_frame)
                    if current >= target:
                        got[target] = frame.to_ndarray(width=w, height=h, format="rgb24")
                        break
        else:
            last = wanted[-1]
            for n, frame in enumerate(container.decode(stream)):
                if n in idx:
                    got[n] = frame.to_ndarray(width=w, height=h, format="rgb24")
                if n >= last:
                    break
        # A stream shorter than its header claims: repeat the last decoded frame rather than fail.
        if not got:
            raise MediaDecodeError(local, "no decodable frame")
        for target in wanted:
            if target not in got:
                got[target] = got[max(k for k in got if k <= target)] if any(k <= target for k in got) else \
                    got[min(got)]
        array = np.stack([got[i] for i in idx])
    return Frames(array=array, indices=idx, timestamps=[round(i / source_fps, 4) for i in idx],
                  source_fps=source_fps)


def load_frames(uri: str, frames: int | None = None, fps: float | None = None,
                max_pixels: int = 128 * 28 * 28, min_pixels: int = MIN_PIXELS, max_frames: int = 768,
                backend: Backend = "auto", cache_dir: str | os.PathLike[str] | None = None,
                workers: int | None = None) -> Frames:
    """Sample frames uniformly from a video, resized to Qwen2.5-VL's pixel budget.

    ``backend="auto"`` tries decord and falls back to PyAV when decord is missing or fails on the file.
    ``workers`` bounds the parallel readers used on long videos (default: the CPU count, at most 4).
    """
    workers = workers or min(4, os.cpu_count() or 1)
    local = local_media(uri, cache_dir)
    errors: list[str] = []
    order = ["decord", "pyav"] if backend == "auto" else [backend]
    for name in order:
        try:
            fn = _decord_frames if name == "decord" else _pyav_frames
            return fn(local, frames, fps, min_pixels, max_pixels, max_frames, workers)
        except ImportError as exc:
            errors.append(f"{name}: not installed ({exc})")
        except MediaDecodeError as exc:
            errors.append(f"{name}: {exc.reason}")
        except Exception as exc:  # decord raises its own DECORDError; PyAV raises FFmpegError subclasses
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise MediaDecodeError(uri, "undecodable video", "; ".join(errors))


def load_image(uri: str, max_pixels: int = 256 * 28 * 28, min_pixels: int = MIN_PIXELS,
               cache_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    local = local_media(uri, cache_dir)
    try:
        with Image.open(local) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaDecodeError(uri, "undecodable image", str(exc)) from exc
    h, w = smart_resize(rgb.height, rgb.width, min_pixels, max_pixels)
    return np.asarray(rgb.resize((w, h), Image.Resampling.BICUBIC))


__all__ = [
    "Frames",
    "MediaDecodeError",
    "MediaInfo",
    "is_remote",
    "load_frames",
    "load_image",
    "media_kind",
    "probe",
    "sample_indices",
    "smart_resize",
]
