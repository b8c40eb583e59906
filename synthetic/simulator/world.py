"""What the simulator knows: the synthetic world's scripts and questions, and how to recognise its media.

Requests carry no ids, only pixels and text, so the simulator recognises media the way a model would have
to: every frame of every world video (and every still) is indexed as a 16x16 colour thumbnail, and a
request's images are matched to the nearest indexed frame (majority vote over the request's frames).
Questions are found by their text within the recognised media.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from videorft.answers import extract_answer
from videorft.media import MediaDecodeError, load_frames, load_image
from videorft.storage import as_path

THUMB = 16


def thumbnail(image: Image.Image | np.ndarray) -> np.ndarray:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    return np.asarray(img.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BILINEAR),
                      dtype=np.float32).reshape(-1)


def decode_data_url(url: str) -> list[np.ndarray]:
    """Frames (RGB arrays) of an image or video data URL; http(s) URLs are not fetched."""
    if not url.startswith("data:"):
        raise ValueError("only data: URLs are understood by the simulator")
    header, _, payload = url.partition(",")
    data = base64.b64decode(payload)
    if header.startswith("data:video"):
        import av

        with av.open(io.BytesIO(data)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))]


@dataclass
class World:
    scripts: dict[str, dict[str, Any]]
    questions: list[dict[str, Any]]
    frame_owner: list[tuple[str, int]] = field(default_factory=list)
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, THUMB * THUMB * 3), np.float32))

    @classmethod
    def load(cls, root: str, index: bool = True) -> World:
        base = as_path(root)
        scripts: dict[str, dict[str, Any]] = {}
        for folder in ("videos", "images"):
            for path in sorted((base / folder).glob("*.json")):
                script = json.loads(path.read_text())
                script["_uri"] = str(path.with_suffix(".mp4" if folder == "videos" else ".png"))
                scripts[script["id"]] = script
        questions = json.loads((base / "qa_videos.json").read_text())
        questions += [json.loads(line) for line in (base / "qa_images.jsonl").read_text().splitlines() if line]
        for q in questions:
            q["answer"] = extract_answer(q["solution"])
        world = cls(scripts, questions)
        if index:
            world.build_index()
        return world

    def build_index(self) -> None:
        owners: list[tuple[str, int]] = []
        thumbs: list[np.ndarray] = []
        for media_id, script in self.scripts.items():
            try:
                if script["kind"] == "video":
                    frames = load_frames(script["_uri"], frames=script["num_frames"], max_pixels=256 * 28 * 28)
                    pairs = [(int(i), f) for i, f in zip(frames.indices, frames.array, strict=True)]
                else:
                    pairs = [(0, load_image(script["_uri"]))]
            except MediaDecodeError:
                continue  # a damaged world file: requests showing it simply are not recognised
            for index, frame in pairs:
                owners.append((media_id, index))
                thumbs.append(thumbnail(frame))
        self.frame_owner = owners
        self.thumbs = np.stack(thumbs) if thumbs else self.thumbs

    def recognise(self, frames: list[np.ndarray]) -> tuple[str | None, list[int]]:
        """The media id most request frames match, and the matched frame index of each request frame."""
        if not frames or not len(self.thumbs):
            return None, []
        votes: Counter[str] = Counter()
        matched: list[tuple[str, int]] = []
        for frame in frames:
            d = ((self.thumbs - thumbnail(frame)) ** 2).sum(axis=1)
            owner = self.frame_owner[int(d.argmin())]
            matched.append(owner)
            votes[owner[0]] += 1
        media_id = votes.most_common(1)[0][0]
        return media_id, [i for m, i in matched if m == media_id]

    def find_question(self, text: str, media_id: str | None) -> dict[str, Any] | None:
        """The world question whose problem text (and options) appear in ``text``, within ``media_id`` if known."""
        candidates = [q for q in self.questions if q["problem"] in text
                      and all(o in text for o in q["options"])]
        if media_id is not None:
            scoped = [q for q in candidates if q["meta"]["media_id"] == media_id]
            candidates = scoped or candidates
        if not candidates:
            return None
        return max(candidates, key=lambda q: len(q["problem"]) + sum(len(o) for o in q["options"]))
