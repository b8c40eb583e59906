"""What ``F`` uniformly sampled frames can show at all: an ideal observer's accuracy on the fixtures' questions.

The observer sees every sampled frame perfectly (every object's position and colour, exactly, as the scene
script has it) and nothing between them; it answers by the template's own rule restricted to those frames, and
guesses uniformly among the options it cannot tell apart. Its accuracy per template is the ceiling of any model
that reads those frames, whatever its size: a model at 4 frames cannot beat the 4-frame ceiling.

    .venv/bin/python bench/perceivable.py --frames 4 8 16 [--out bench/results/perceivable.json]

It reads the questions of the tiny profile's benchmark fixtures (built if missing) and each video's scene script
(the ``.json`` beside the ``.mp4``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.benchmarks import BENCHMARKS, load_samples
from evaluation.controls import group_of
from evaluation.run import benchmark_sources
from evaluation.table2 import chance_level
from synthetic.scene import color_at, object_name, position
from videorft.media import sample_indices
from videorft.profile import load_profile

Observer = Callable[[dict[str, Any], dict[str, Any], list[int]], float]


def _visible(obj: dict[str, Any], frames: list[int]) -> list[int]:
    return [f for f in frames if obj["appear_frame"] <= f < obj["disappear_frame"]]


def _named(script: dict[str, Any], problem: str) -> dict[str, Any] | None:
    named = [o for o in script["objects"] if f" {object_name(o)} " in f" {problem} "]
    return max(named, key=lambda o: len(object_name(o))) if named else None


def _option(sample: dict[str, Any], text: str) -> str | None:
    return next((o.split(". ", 1)[0] for o in sample["options"] if o.split(". ", 1)[1] == text), None)


def _guess(sample: dict[str, Any], candidates: list[str]) -> float:
    """Expected score of a uniform guess among ``candidates`` (option texts the frames cannot tell apart)."""
    letters = [_option(sample, c) for c in candidates]
    letters = [x for x in letters if x is not None] or [o.split(". ", 1)[0] for o in sample["options"]]
    return letters.count(sample["answer"]) / len(letters)


def color_at_end(sample: dict[str, Any], script: dict[str, Any], frames: list[int]) -> float:
    obj = _named(script, sample["problem"])
    seen = _visible(obj, frames) if obj else []
    if not seen:
        return _guess(sample, [])
    return _guess(sample, [color_at(obj, seen[-1])])


def appears_last(sample: dict[str, Any], script: dict[str, Any], frames: list[int]) -> float:
    first_seen = {object_name(o): (_visible(o, frames) or [None])[0] for o in script["objects"]}
    seen = {n: f for n, f in first_seen.items() if f is not None}
    if not seen:
        return _guess(sample, [])
    latest = max(seen.values())
    return _guess(sample, [n for n, f in seen.items() if f == latest])


def main_direction(sample: dict[str, Any], script: dict[str, Any], frames: list[int]) -> float:
    obj = _named(script, sample["problem"])
    if obj is None:
        return _guess(sample, [])
    start, end = obj["appear_frame"], min(obj["disappear_frame"] - 1, obj["appear_frame"] + script["fps"])
    inside = [f for f in frames if start <= f <= end]
    if len(inside) < 2:
        return _guess(sample, [])
    (x0, y0), (x1, y1) = position(obj, inside[0]), position(obj, inside[-1])
    dx, dy = x1 - x0, y1 - y0
    direction = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
    return _guess(sample, [direction])


def background_colour(sample: dict[str, Any], script: dict[str, Any], frames: list[int]) -> float:
    return _guess(sample, [script["background_name"]])


OBSERVERS: dict[str, Observer] = {"color_at_end": color_at_end, "appears_last": appears_last,
                                   "main_direction": main_direction, "background_colour": background_colour}


def fixture_samples() -> list[dict[str, Any]]:
    """The tiny profile's multiple-choice fixture questions, each with its video's scene script."""
    out = []
    for name, source in benchmark_sources(load_profile("tiny"), list(BENCHMARKS)).items():
        for sample in load_samples(name, source["questions"], source.get("video_root")):
            if sample.problem_type == "multiple choice":
                out.append(sample.to_dict())
    return out


def ceilings(samples: list[dict[str, Any]], frame_counts: list[int]) -> dict[str, Any]:
    by_template: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in samples:
        by_template[group_of(s)].append(s)
    out: dict[str, Any] = {}
    for template, rows in sorted(by_template.items()):
        entry: dict[str, Any] = {"questions": len(rows), "chance": chance_level(rows)}
        for f in frame_counts:
            observer = OBSERVERS.get(template)
            if observer is None:
                continue
            scores = []
            for s in rows:
                script = json.loads(Path(s["video"]).with_suffix(".json").read_text())
                scores.append(observer(s, script, sample_indices(script["num_frames"], script["fps"], frames=f)))
            entry[f"ceiling_{f}"] = float(np.mean(scores))
        out[template] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = ceilings(fixture_samples(), args.frames)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
