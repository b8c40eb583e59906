"""Paths that are local folders or ``s3://`` URIs, behind one ``UPath`` interface.

Owns the S3 connection options (an S3-compatible endpoint such as MinIO or moto comes from
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``), URI joining that keeps ``..`` from escaping a root, and a
local cache for remote media so that a video fetched once is never downloaded again.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

from upath import UPath


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def s3_options() -> dict[str, Any]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def as_path(uri: str | os.PathLike[str]) -> UPath:
    """A UPath for a local path or a URI, with the S3 endpoint settings of this environment."""
    text = os.fspath(uri)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if text.startswith(("s3://", "s3a://")):
        return UPath(text, **s3_options())
    if is_remote(text):
        return UPath(text)
    return UPath(Path(text).expanduser().resolve())


def normalize_uri(uri: str) -> str:
    """Collapse ``.`` and ``..`` segments of a local path or URI without touching the file system."""
    if is_remote(uri):
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.normpath(os.path.abspath(uri))


def join_uri(base: str, relative: str) -> str:
    """``relative`` resolved against the folder ``base`` (absolute paths and URIs are kept as they are)."""
    if is_remote(relative) or os.path.isabs(relative):
        return normalize_uri(relative)
    if is_remote(base):
        return normalize_uri(base.rstrip("/") + "/" + relative)
    return normalize_uri(os.path.join(base, relative))


def parent_uri(uri: str) -> str:
    if is_remote(uri):
        return uri.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(uri))


def is_within(uri: str, root: str) -> bool:
    """True when ``uri`` lies inside ``root`` once both are normalised (no ``..`` escape)."""
    uri, root = normalize_uri(uri), normalize_uri(root).rstrip("/")
    return uri == root or uri.startswith(root + "/")


def local_copy(uri: str, cache_dir: str | os.PathLike[str]) -> Path:
    """A local file for ``uri``: the file itself when local, else a cached download keyed by URI and version.

    The key includes the object's ETag/size/mtime, so a changed object is fetched again and an unchanged one
    never is.
    """
    if not is_remote(uri):
        return Path(uri[len("file://"):] if uri.startswith("file://") else uri)
    path = as_path(uri)
    info = path.fs.info(path.path)
    version = str(info.get("ETag") or info.get("etag") or "") + str(info.get("size")) + str(
        info.get("LastModified") or info.get("mtime") or "")
    key = hashlib.sha256(f"{uri}\n{version}".encode()).hexdigest()[:24]
    target = Path(cache_dir) / key[:2] / f"{key}{Path(path.path).suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            shutil.copyfileobj(src, out, length=1 << 20)
        os.replace(tmp, target)  # atomic: a killed download never leaves a half file under the final name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def write_parquet(frame: Any, target: str | UPath) -> None:
    """Write a DataFrame as one Parquet file at a local path or URI, creating the folder."""
    path = as_path(target) if isinstance(target, str) else target
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        frame.to_parquet(fh, index=False)


def read_parquet(uri: str | UPath) -> Any:
    import pandas as pd

    with (as_path(uri) if isinstance(uri, str) else uri).open("rb") as fh:
        return pd.read_parquet(fh)
