"""Build the synthetic video-QA world into a folder (local or ``s3://``).

Layout under the world root::

    videos/v0000.mp4  videos/v0000.json   # the video and its ground-truth scene script
    images/i0000.png  images/i0000.json
    qa_videos.json                        # VideoRFT/Video-R1 schema, a JSON list
    qa_images.jsonl                       # same schema, one JSON object per line
    world.json                            # manifest: config, counts, content hash

Generation is deterministic by seed (scripts, QA files and video bytes), and a world already built with the
same configuration is reused rather than rendered again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthetic.qa import candidate_questions, select_balanced
from synthetic.render import encode_video, render_image
from synthetic.scene import draw_video_spec, make_image_script, make_video_script
from videorft.profile import WorldConfig
from videorft.storage import as_path

WORLD_SCHEMA_VERSION = 3  # 2: per-video background colours; 3: background options shuffled
DATA_SOURCE = "synthetic-world"


@dataclass(frozen=True)
class WorldManifest:
    root: str
    qa_files: list[str]
    videos: int
    images: int
    questions: int
    content_hash: str
    by_problem_type: dict[str, int]
    by_category: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _config_key(cfg: WorldConfig) -> str:
    # no shares: the key of the worlds built before the knob existed (they are the same world)
    config = cfg.model_dump(exclude={"template_shares"} if not cfg.template_shares else set())
    payload = json.dumps({"schema": WORLD_SCHEMA_VERSION, **config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_scripts(cfg: WorldConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    videos = []
    for i in range(cfg.videos):
        rng = np.random.default_rng([cfg.seed, 1, i])
        spec = draw_video_spec(rng, cfg.min_side, cfg.max_side, cfg.fps, cfg.min_seconds, cfg.max_seconds)
        videos.append(make_video_script(rng, f"v{i:04d}", spec))
    images = []
    for i in range(cfg.images):
        rng = np.random.default_rng([cfg.seed, 2, i])
        side = int(rng.integers(cfg.min_side, cfg.max_side + 1)) // 16 * 16
        images.append(make_image_script(rng, f"i{i:04d}", max(side, 96)))
    return videos, images


def build_questions(cfg: WorldConfig, videos: list[dict[str, Any]], images: list[dict[str, Any]]) -> list[dict]:
    candidates = []
    for script in [*videos, *images]:
        rng = np.random.default_rng([cfg.seed, 3, int(script["id"][1:]), script["kind"] == "video"])
        folder = "videos" if script["kind"] == "video" else "images"
        ext = "mp4" if script["kind"] == "video" else "png"
        for q in candidate_questions(script, rng):
            q["data_type"] = script["kind"]
            q["path"] = f"./{folder}/{script['id']}.{ext}"
            q["meta"]["media_id"] = script["id"]
            candidates.append(q)
    chosen = select_balanced(candidates, cfg.questions, np.random.default_rng([cfg.seed, 4]), cfg.template_shares)
    chosen.sort(key=lambda q: (q["path"], q["meta"]["template"], q["problem"]))
    rows = []
    for pid, q in enumerate(chosen):
        rows.append({
            "problem_id": pid,
            "problem": q["problem"],
            "data_type": q["data_type"],
            "problem_type": q["problem_type"],
            "options": q["options"],
            "process": "",
            "solution": q["solution"],
            "path": q["path"],
            "data_source": DATA_SOURCE,
            "category": q["category"],
            "meta": q["meta"],
        })
    return rows


def build_world(cfg: WorldConfig, root: str, force: bool = False, progress: Any = None) -> WorldManifest:
    """Render every script and write the QA files; reuse an identical world already at ``root``."""
    base = as_path(root)
    manifest_path = base / "world.json"
    key = _config_key(cfg)
    if not force and manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        if existing.get("config_key") == key:
            return WorldManifest(**{k: existing[k] for k in WorldManifest.__dataclass_fields__})

    videos, images = build_scripts(cfg)
    questions = build_questions(cfg, videos, images)
    digest = hashlib.sha256()
    (base / "videos").mkdir(parents=True, exist_ok=True)
    (base / "images").mkdir(parents=True, exist_ok=True)
    for n, script in enumerate([*videos, *images]):
        folder, ext = ("videos", "mp4") if script["kind"] == "video" else ("images", "png")
        media = encode_video(script) if script["kind"] == "video" else render_image(script)
        script_text = json.dumps(script, sort_keys=True)
        (base / folder / f"{script['id']}.{ext}").write_bytes(media)
        (base / folder / f"{script['id']}.json").write_text(script_text)
        digest.update(hashlib.sha256(media).digest())
        digest.update(script_text.encode())
        if progress is not None:
            progress(n + 1, len(videos) + len(images))

    video_rows = [q for q in questions if q["data_type"] == "video"]
    image_rows = [q for q in questions if q["data_type"] == "image"]
    video_text = json.dumps(video_rows, indent=1, sort_keys=True)
    image_text = "".join(json.dumps(q, sort_keys=True) + "\n" for q in image_rows)
    (base / "qa_videos.json").write_text(video_text)
    (base / "qa_images.jsonl").write_text(image_text)
    digest.update(video_text.encode())
    digest.update(image_text.encode())

    manifest = WorldManifest(
        root=str(base),
        qa_files=[str(base / "qa_videos.json"), str(base / "qa_images.jsonl")],
        videos=len(videos),
        images=len(images),
        questions=len(questions),
        content_hash=digest.hexdigest()[:16],
        by_problem_type=dict(sorted(Counter(q["problem_type"] for q in questions).items())),
        by_category=dict(sorted(Counter(q["category"] for q in questions).items())),
    )
    manifest_path.write_text(json.dumps({**manifest.to_dict(), "config_key": key, "config": cfg.model_dump()},
                                        indent=1, sort_keys=True))
    return manifest
