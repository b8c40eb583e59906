"""The models shipped inside the package (``videorft/models/<name>/``): the embedded profile's pretrained tiny
Qwen2.5-VL base (``tiny-pretrained``) and its tiny SigLIP (``tiny-siglip``), each a folder with a model card.

Owns where they are, what a card holds (``card.json``: the recipe, seeds, pretraining world, metrics, the
command that rebuilt it, every file with its sha256, and the hash of the code that built it), checking a folder
against its card before anything loads it, and the errors that name the file and the rebuild command. The
builder is the ``pretraining`` library (``make pretrain``); production never loads these.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent / "models"
CARD_FILE = "card.json"
REBUILD_COMMAND = "make pretrain"
TINY_PRETRAINED = "tiny-pretrained"
TINY_SIGLIP = "tiny-siglip"
SHIPPED_MODELS = (TINY_PRETRAINED, TINY_SIGLIP)


class ShippedModelError(ValueError):
    """A shipped model that is missing, corrupt or does not match its card; the message names the file and the
    command that rebuilds it."""


def shipped_dir(name: str) -> Path:
    return MODELS_DIR / name


def is_shipped(name: str) -> bool:
    return name in SHIPPED_MODELS


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The card of a shipped model (or of a built ``folder``); an error naming the file when it cannot be read."""
    path = (folder or shipped_dir(name)) / CARD_FILE
    if not path.is_file():
        raise ShippedModelError(f"{name}: {path} is missing; the shipped model is incomplete. Rebuild it with "
                                f"`{REBUILD_COMMAND}` (or restore the folder from git)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShippedModelError(f"{name}: {path} is not a readable card ({exc}); rebuild with "
                                f"`{REBUILD_COMMAND}`") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise ShippedModelError(f"{name}: {path} lists no files; rebuild with `{REBUILD_COMMAND}`")
    return card


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())


@cache
def _verified(name: str, folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    card = read_card(name, Path(folder))
    for file, expected in sorted(card["files"].items()):
        path = Path(folder) / file
        if not path.is_file():
            raise ShippedModelError(f"{name}: {path} is missing (listed in its card); rebuild with "
                                    f"`{REBUILD_COMMAND}` or restore it from git")
        actual = file_sha256(path)
        if actual != expected:
            raise ShippedModelError(f"{name}: {path} does not match its card (sha256 {actual[:12]}, card "
                                    f"{expected[:12]}): the file is corrupt or was changed without rebuilding; "
                                    f"rebuild with `{REBUILD_COMMAND}`")
    return folder


def verified_dir(name: str) -> Path:
    """The folder of a shipped model after checking every file its card lists (size, presence, sha256): a missing
    or corrupt weight file, or a tokenizer that is not the one the model was trained with, is an error naming
    the file and ``make pretrain``. Checked once per process while the files stay as they are."""
    if not is_shipped(name):
        raise ShippedModelError(f"{name!r} is not a shipped model; shipped: {', '.join(SHIPPED_MODELS)}")
    folder = shipped_dir(name)
    if not folder.is_dir():
        raise ShippedModelError(f"{name}: {folder} does not exist; rebuild with `{REBUILD_COMMAND}`")
    return Path(_verified(name, str(folder), _stamp(folder)))


def weights_tag(name: str) -> str:
    """A short tag of a shipped model's weights (what a cache keyed by "which model" must change with)."""
    card = read_card(name)
    digest = hashlib.sha256(json.dumps(card["files"], sort_keys=True).encode()).hexdigest()
    return digest[:12]


def pretraining_seeds() -> set[int]:
    """The world seeds the shipped models were pretrained on (a profile's worlds must not reuse them)."""
    seeds = set()
    for name in SHIPPED_MODELS:
        card_path = shipped_dir(name) / CARD_FILE
        if card_path.is_file():
            seeds.add(int(read_card(name)["pretraining_world"]["seed"]))
    return seeds
