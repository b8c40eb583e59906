"""Scene scripts: the ground truth of every synthetic video and image.

A script is plain JSON-able data. Videos: coloured shapes that appear, move (bouncing off the walls and off
each other), change colour, disappear, with text overlays to read. Images: a still arrangement of shapes and
a small "document" (a title and numbered lines). Everything is derived from a seeded RNG, so the same seed
gives the same scripts, and every QA answer is computed from the script alone.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Any

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 210),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "cyan": (40, 220, 230),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (24, 24, 32)
# A video's background, one of four dark tints (shapes stay visible on each; no name is a shape colour).
# The one property of a video that every patch carries: what a 0.4 M-parameter model can learn to see.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": BACKGROUND, "maroon": (96, 16, 24), "navy": (16, 24, 104), "olive": (72, 72, 8),
}
TEXT_COLOR = (255, 255, 255)
_TEXT_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class VideoSpec:
    """Size and timing of one video, drawn from the world config."""

    width: int
    height: int
    fps: int
    num_frames: int


def _even(n: float, multiple: int = 16) -> int:
    return max(multiple, round(n / multiple) * multiple)


def draw_video_spec(
    rng: np.random.Generator, min_side: int, max_side: int, fps: int, min_s: float, max_s: float
) -> VideoSpec:
    width = _even(rng.uniform(max(min_side, 128), max_side))
    height = _even(rng.uniform(min_side, min(width, max_side)))
    seconds = float(rng.uniform(min_s, max_s))
    return VideoSpec(width=width, height=height, fps=fps, num_frames=max(2, round(seconds * fps)))


def random_text(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(_TEXT_ALPHABET), size=length))


def object_name(obj: dict[str, Any]) -> str:
    """How questions refer to an object: its starting colour and its shape (unique within a video)."""
    return f"{obj['colors'][0][1]} {obj['shape']}"


def color_at(obj: dict[str, Any], frame: int) -> str:
    current = obj["colors"][0][1]
    for start, name in obj["colors"]:
        if start <= frame:
            current = name
    return current


def visible(obj: dict[str, Any], frame: int) -> bool:
    return obj["appear_frame"] <= frame < obj["disappear_frame"]


def position(obj: dict[str, Any], frame: int) -> tuple[float, float]:
    x, y = obj["track"][frame - obj["appear_frame"]]
    return float(x), float(y)


def make_video_script(rng: np.random.Generator, video_id: str, spec: VideoSpec) -> dict[str, Any]:
    """Simulate one scene frame by frame and record what happened as events."""
    n_obj = int(rng.integers(2, 5))
    n = spec.num_frames
    combos = [(s, c) for s in SHAPES for c in PALETTE]
    picks = rng.choice(len(combos), size=n_obj, replace=False)
    objects: list[dict[str, Any]] = []
    for k, pick in enumerate(picks):
        shape, color = combos[int(pick)]
        size = int(rng.integers(9, max(10, min(spec.width, spec.height) // 7)))
        appear = 0 if k == 0 or rng.random() < 0.5 else int(rng.integers(1, max(2, n // 2)))
        disappear = n if rng.random() < 0.6 else int(rng.integers(min(n, appear + max(2, n // 3)), n + 1))
        colors: list[list[Any]] = [[appear, color]]
        if rng.random() < 0.5 and disappear - appear > 6:
            others = [c for c in PALETTE if c != color]
            for change in sorted(rng.choice(np.arange(appear + 2, disappear - 1), size=int(rng.integers(1, 3)),
                                            replace=False).tolist()):
                new = str(rng.choice([c for c in others if c != colors[-1][1]]))
                colors.append([int(change), new])
        speed = float(rng.uniform(1.0, 4.0))
        angle = float(rng.uniform(0, 2 * math.pi))
        objects.append({
            "id": f"o{k + 1}",
            "shape": shape,
            "size": size,
            "appear_frame": appear,
            "disappear_frame": disappear,
            "colors": colors,
            "velocity0": [speed * math.cos(angle), speed * math.sin(angle)],
        })
    _place(rng, objects, spec)
    events = _simulate(objects, spec)
    texts = []
    if rng.random() < 0.7:
        start = int(rng.integers(0, max(1, n // 3)))
        texts.append({
            "text": random_text(rng, int(rng.integers(3, 7))),
            "start_frame": start,
            "end_frame": int(rng.integers(min(n, start + max(3, n // 2)), n + 1)),
            "x": 4,
            "y": 4,
            "size": 14,
        })
    background = str(rng.choice(list(BACKGROUNDS)))
    for obj in objects:
        obj.pop("velocity0")
        obj.pop("_v")
        obj.pop("_p")
    return {
        "kind": "video",
        "id": video_id,
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "num_frames": n,
        "duration": round(n / spec.fps, 4),
        "background": list(BACKGROUNDS[background]),
        "background_name": background,
        "palette": {k: list(v) for k, v in PALETTE.items()},
        "objects": objects,
        "texts": texts,
        "events": events,
    }


def _place(rng: np.random.Generator, objects: list[dict[str, Any]], spec: VideoSpec) -> None:
    top = 24  # keep the text band free at the start
    for obj in objects:
        r = obj["size"]
        for _ in range(200):
            p = [float(rng.uniform(r + 1, spec.width - r - 1)), float(rng.uniform(top + r, spec.height - r - 1))]
            clear = all(
                math.dist(p, other["_p"]) > r + other["size"] + 4 for other in objects if "_p" in other
            )
            if clear:
                break
        obj["_p"] = p
        obj["_v"] = list(obj["velocity0"])
        obj["track"] = []


def _simulate(objects: list[dict[str, Any]], spec: VideoSpec) -> list[dict[str, Any]]:
    """Advance every object frame by frame: walls and contacts reverse velocities; events are recorded."""
    events: list[dict[str, Any]] = []
    in_contact: set[tuple[str, str]] = set()
    for f in range(spec.num_frames):
        live = [o for o in objects if visible(o, f)]
        for o in objects:
            if o["appear_frame"] == f:
                events.append({"frame": f, "type": "appear", "objects": [o["id"]]})
            if o["disappear_frame"] == f:
                events.append({"frame": f, "type": "disappear", "objects": [o["id"]]})
            for start, name in o["colors"][1:]:
                if start == f:
                    events.append({"frame": f, "type": "color_change", "objects": [o["id"]],
                                   "from": color_at(o, f - 1), "to": name})
        for o in live:
            o["track"].append([round(o["_p"][0], 2), round(o["_p"][1], 2)])
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                pair = (a["id"], b["id"])
                touching = math.dist(a["_p"], b["_p"]) <= a["size"] + b["size"]
                if touching and pair not in in_contact:
                    events.append({"frame": f, "type": "collision", "objects": list(pair)})
                    a["_v"] = [-a["_v"][0], -a["_v"][1]]
                    b["_v"] = [-b["_v"][0], -b["_v"][1]]
                    in_contact.add(pair)
                elif not touching:
                    in_contact.discard(pair)
        for o in live:
            for axis, limit in ((0, spec.width), (1, spec.height)):
                nxt = o["_p"][axis] + o["_v"][axis]
                if nxt - o["size"] < 0 or nxt + o["size"] > limit:
                    o["_v"][axis] = -o["_v"][axis]
                o["_p"][axis] = min(max(o["_p"][axis] + o["_v"][axis], o["size"]), limit - o["size"])
    events.sort(key=lambda e: (e["frame"], e["type"], e["objects"]))
    return events


def make_image_script(rng: np.random.Generator, image_id: str, side: int) -> dict[str, Any]:
    """A still: shapes in the lower part and a small document (title + numbered lines) at the top."""
    width, height = side, side
    n_shapes = int(rng.integers(3, 8))
    shapes = []
    occupied: list[tuple[float, float, int]] = []
    top = height // 2
    for _ in range(n_shapes):
        size = int(rng.integers(6, max(7, side // 10)))
        for _attempt in range(200):
            x = float(rng.uniform(size + 1, width - size - 1))
            y = float(rng.uniform(top + size, height - size - 1))
            if all(math.dist((x, y), (ox, oy)) > size + os_ + 3 for ox, oy, os_ in occupied):
                break
        occupied.append((x, y, size))
        shapes.append({
            "shape": str(rng.choice(SHAPES)),
            "color": str(rng.choice(list(PALETTE))),
            "size": size,
            "x": round(x, 2),
            "y": round(y, 2),
        })
    numbers = [int(v) for v in rng.integers(1, 50, size=int(rng.integers(2, 4)))]
    return {
        "kind": "image",
        "id": image_id,
        "width": width,
        "height": height,
        "background": list(BACKGROUND),
        "palette": {k: list(v) for k, v in PALETTE.items()},
        "title": random_text(rng, int(rng.integers(4, 7))),
        "numbers": numbers,
        "shapes": shapes,
    }
