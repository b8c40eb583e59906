"""Model cards and provenance of the shipped models: what built them, from which code, and how well they do.

``source_hash(name)`` is the hash of everything that decides one model's weights: its sections of the
pretraining recipe, its pretraining code, the synthetic world's code (scenes, rendering, questions, captions) and,
for the base, the benchmark prompt. Python files are hashed by their syntax tree without docstrings and the
recipe by its parsed content, so comments and formatting do not count, and any change that could change the
weights does. The card records it; a test recomputes it and names ``make pretrain`` when they differ.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from videorft.profile import project_root
from videorft.shipped import CARD_FILE, REBUILD_COMMAND, TINY_PRETRAINED, TINY_SIGLIP, file_sha256

# what decides each shipped model's weights: files (relative to the project root) and the recipe's sections
_WORLD = ("synthetic/scene.py", "synthetic/render.py", "synthetic/qa.py", "synthetic/world.py",
          "synthetic/captions.py", "pretraining/config.py", "pretraining/data.py", "pretraining/loop.py")
SOURCES: dict[str, tuple[str, ...]] = {
    TINY_SIGLIP: (*_WORLD, "pretraining/siglip.py"),
    TINY_PRETRAINED: (*_WORLD, "pretraining/base.py", "training/prompts.py"),
}
RECIPE = "configs/tiny/pretrain.yaml"
RECIPE_SECTIONS: dict[str, tuple[str, ...]] = {
    TINY_SIGLIP: ("seed", "world", "held_out_videos", "siglip"),
    TINY_PRETRAINED: ("seed", "world", "held_out_videos", "video", "base"),
}


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def normalized_source(path: Path) -> str:
    """What of a source file can change the weights: a Python file's syntax tree without docstrings, a YAML
    file's parsed content."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return ast.dump(_without_docstrings(ast.parse(text)))
    if path.suffix in (".yaml", ".yml"):
        return json.dumps(yaml.safe_load(text), sort_keys=True)
    return text


def _files_digest(root: Path, files: tuple[str, ...]) -> Any:
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode())
        digest.update(normalized_source(root / rel).encode())
    return digest


def files_hash(root: Path, files: tuple[str, ...]) -> str:
    """The normalised hash of ``files`` (relative to ``root``): what ``source_hash`` computes per model."""
    return _files_digest(root, files).hexdigest()[:16]


def source_hash(name: str, root: Path | None = None) -> str:
    """The hash of what decides ``name``'s weights: its source files and its sections of the recipe."""
    root = root or project_root()
    digest = _files_digest(root, SOURCES[name])
    recipe = yaml.safe_load((root / RECIPE).read_text(encoding="utf-8")) or {}
    digest.update(json.dumps({k: recipe.get(k) for k in RECIPE_SECTIONS[name]}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def install(built: Path, target: Path, card: dict[str, Any]) -> Path:
    """Replace ``target`` (``videorft/models/<name>/``) with the files of ``built`` and write its card (every file
    with its sha256) and README. The card goes last: a folder whose copy was cut short fails verification."""
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(built, staging)
    (staging / CARD_FILE).unlink(missing_ok=True)
    files = {p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != "README.md"}
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    write_card(target, {**card, "files": files})
    return target


def write_card(folder: Path, card: dict[str, Any]) -> None:
    (folder / "README.md").write_text(render(card["name"], card), encoding="utf-8")
    (folder / CARD_FILE).write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def update_metrics(folder: Path, section: str, metrics: dict[str, Any]) -> None:
    """Add a measured section to an installed card's ``metrics`` (the files, and so verification, unchanged)."""
    path = folder / CARD_FILE
    card = json.loads(path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[section] = metrics
    write_card(folder, card)


def base_card(name: str, recipe: Any, source: str, seconds: float, description: str) -> dict[str, Any]:
    return {"name": name, "description": description, "command": REBUILD_COMMAND,
            "built": time.strftime("%Y-%m-%d", time.gmtime()), "wall_seconds": round(seconds),
            "source_hash": source, "sources": [*SOURCES[name], f"{RECIPE} ({', '.join(RECIPE_SECTIONS[name])})"],
            "recipe": recipe.model_dump(mode="json"),
            "seeds": {"recipe": recipe.seed, "world": recipe.world.seed},
            "pretraining_world": {"seed": recipe.world.seed, "videos": recipe.world.videos,
                                  "held_out_videos": recipe.held_out_videos}}


def render(name: str, card: dict[str, Any]) -> str:
    """The human model card (README.md) from ``card.json``."""
    metrics = json.dumps(card.get("metrics", {}), indent=1, sort_keys=True)
    world = card.get("pretraining_world", {})
    return f"""# {name}

{card.get("description", "")}

Built by the project's own code (`{card.get("command")}`, {card.get("wall_seconds")} s on the machine that built
it, {card.get("built")}); nothing was downloaded. Rebuild: `{REBUILD_COMMAND}`; a test fails when the code or
recipe that built it (hash `{card.get("source_hash")}` over {len(card.get("sources", []))} files, listed in
`card.json`) changes without a rebuild.

- Recipe: `configs/tiny/pretrain.yaml` (as used: `card.json` `recipe`), seeds {card.get("seeds")}.
- Pretraining world: seed {world.get("seed")}, {world.get("videos")} videos, the last {world.get("held_out_videos")}
  held out (never trained on). No video or scene script of it is in the training world or the benchmark fixtures
  (`tests/test_pretraining.py`).
- Files and their sha256: `card.json` `files` (checked before every load).

## Metrics

```json
{metrics}
```
"""
