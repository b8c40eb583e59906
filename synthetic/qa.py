"""Questions whose answers follow from a scene script, in the VideoRFT / Video-R1 JSON schema.

Every template covers one of the five problem types and one of the paper's five categories, and records
its name and arguments under ``meta`` so that a test (or a curious user) can re-derive the answer.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from synthetic.scene import BACKGROUNDS, PALETTE, color_at, object_name, position, visible

Question = dict[str, Any]
LETTERS = "ABCDEFGH"


def _q(problem: str, problem_type: str, category: str, answer: str, template: str,
       options: list[str] | None = None, **args: Any) -> Question:
    return {
        "problem": problem,
        "problem_type": problem_type,
        "category": category,
        "options": options or [],
        "solution": f"<answer>{answer}</answer>",
        "meta": {"template": template, "args": args},
    }


def _mc(rng: np.random.Generator, correct: str, distractors: list[str], k: int = 4) -> tuple[list[str], str]:
    pool = [d for d in dict.fromkeys(distractors) if d != correct]
    chosen = [str(x) for x in rng.choice(pool, size=min(k - 1, len(pool)), replace=False)] + [correct]
    order = rng.permutation(len(chosen))
    labelled = [chosen[i] for i in order]
    letter = LETTERS[labelled.index(correct)]
    return [f"{LETTERS[i]}. {text}" for i, text in enumerate(labelled)], letter


def _fmt(x: float) -> str:
    return f"{round(x, 2):g}"


def _seconds(script: dict[str, Any], frame: int) -> float:
    return round(frame / script["fps"], 2)


def _by_id(script: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in script["objects"]}


# ---- video templates -----------------------------------------------------------------------------------

def count_total(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    n = len(script["objects"])
    return [_q("How many different shapes appear in the video in total?", "numerical", "mathematics",
               str(n), "count_total")]


def count_at_end(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    last = script["num_frames"] - 1
    n = sum(visible(o, last) for o in script["objects"])
    return [_q("How many shapes are visible in the last frame of the video?", "numerical", "mathematics",
               str(n), "count_at_end")]


def count_color_changes(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    out = []
    for o in script["objects"]:
        out.append(_q(f"How many times does the {object_name(o)} change colour during the video?",
                      "numerical", "mathematics", str(len(o["colors"]) - 1), "count_color_changes",
                      object=o["id"]))
    return out


def color_at_end(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    out = []
    for o in script["objects"]:
        last = o["disappear_frame"] - 1
        final = color_at(o, last)
        options, letter = _mc(rng, final, list(PALETTE))
        out.append(_q(f"What colour is the {object_name(o)} the last time it is seen in the video?",
                      "multiple choice", "general", letter, "color_at_end", options, object=o["id"]))
    return out


def background_colour(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    """The world's four backgrounds in a shuffled order, as every other multiple-choice template: a 4-way question
    answered by the video alone, with no fixed letter for a colour to be learned instead of looking."""
    options, letter = _mc(rng, script["background_name"], list(BACKGROUNDS))
    return [_q("What colour is the background of the video?", "multiple choice", "general", letter,
               "background_colour", options)]


def appears_last(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    objs = script["objects"]
    latest = max(o["appear_frame"] for o in objs)
    winners = [o for o in objs if o["appear_frame"] == latest]
    if len(objs) < 2 or len(winners) != 1 or latest == 0:
        return []
    names = [object_name(o) for o in objs]
    options, letter = _mc(rng, object_name(winners[0]), names)
    return [_q("Which shape is the last one to appear in the video?", "multiple choice", "spatiotemporal",
               letter, "appears_last", options)]


def first_second_direction(script: dict[str, Any], obj: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(direction, start_frame, end_frame)`` of an object's net displacement over its first second on screen,
    when one axis clearly wins (else None): the one rule of "which way it moves", for questions and captions."""
    start = obj["appear_frame"]
    end = min(obj["disappear_frame"] - 1, start + script["fps"])
    if end - start < 3:
        return None
    (x0, y0), (x1, y1) = position(obj, start), position(obj, end)
    dx, dy = x1 - x0, y1 - y0
    if max(abs(dx), abs(dy)) < 6 or min(abs(dx), abs(dy)) * 2 > max(abs(dx), abs(dy)):
        return None
    direction = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
    return direction, start, end


def main_direction(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    out = []
    for o in script["objects"]:
        moved = first_second_direction(script, o)
        if moved is None:
            continue
        direction, start, end = moved
        options, letter = _mc(rng, direction, ["left", "right", "up", "down"])
        out.append(_q(f"In which direction does the {object_name(o)} mainly move during its first second "
                      "on screen?", "multiple choice", "spatiotemporal", letter, "main_direction", options,
                      object=o["id"], start_frame=start, end_frame=end))
    return out


def first_collision_partner(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    objs = _by_id(script)
    out = []
    for o in script["objects"]:
        hits = [e for e in script["events"] if e["type"] == "collision" and o["id"] in e["objects"]]
        others = [object_name(x) for x in script["objects"] if x["id"] != o["id"]]
        if hits:
            partner = next(i for i in hits[0]["objects"] if i != o["id"])
            correct = object_name(objs[partner])
        else:
            correct = "it collides with no other shape"
        options, letter = _mc(rng, correct, [*others, "it collides with no other shape"])
        out.append(_q(f"Which shape does the {object_name(o)} collide with first?", "multiple choice",
                      "science", letter, "first_collision_partner", options, object=o["id"]))
    return out


def read_text(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    return [_q("What text is written in the top-left corner of the video?", "OCR", "document", t["text"],
               "read_text", text_index=i) for i, t in enumerate(script["texts"])]


def appear_time(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    return [_q(f"At what time, in seconds, does the {object_name(o)} first appear?", "regression",
               "spatiotemporal", _fmt(_seconds(script, o["appear_frame"])), "appear_time", object=o["id"])
            for o in script["objects"] if o["appear_frame"] > 0]


def path_speed(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    """Mean speed while on screen: path length over the rendered track divided by its duration."""
    out = []
    for o in script["objects"]:
        track = o["track"]
        if len(track) < 3:
            continue
        length = sum(math.dist(a, b) for a, b in itertools.pairwise(track))
        speed = length / ((len(track) - 1) / script["fps"])
        out.append(_q(f"What is the average speed of the {object_name(o)}, in pixels per second, while it is "
                      "visible?", "regression", "science", _fmt(speed), "path_speed", object=o["id"]))
    return out


def describe_object(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    objs = _by_id(script)
    out = []
    for o in script["objects"]:
        parts = []
        for e in script["events"]:
            if o["id"] not in e["objects"]:
                continue
            t = _seconds(script, e["frame"])
            if e["type"] == "appear":
                parts.append(f"appears at {t:g} seconds")
            elif e["type"] == "color_change":
                parts.append(f"turns from {e['from']} to {e['to']} at {t:g} seconds")
            elif e["type"] == "collision":
                other = next(i for i in e["objects"] if i != o["id"])
                parts.append(f"collides with the {object_name(objs[other])} at {t:g} seconds")
            elif e["type"] == "disappear":
                parts.append(f"disappears at {t:g} seconds")
        if not parts:
            parts.append("stays on screen for the whole video")
        sentence = f"The {object_name(o)} " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + \
            parts[-1] + "."
        out.append(_q(f"Describe what happens to the {object_name(o)} in the video.", "free-form", "general",
                      sentence, "describe_object", object=o["id"]))
    return out


def collision_effect(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    objs = _by_id(script)
    out = []
    pairs = {tuple(e["objects"]): e for e in reversed(script["events"]) if e["type"] == "collision"}
    for e in sorted(pairs.values(), key=lambda ev: ev["frame"]):  # one question per pair: its first contact
        a, b = (objs[i] for i in e["objects"])
        out.append(_q(f"What happens to the motion of the {object_name(a)} and the {object_name(b)} when they "
                      "touch?", "free-form", "science",
                      f"They bounce off each other: both the {object_name(a)} and the {object_name(b)} reverse "
                      "direction.", "collision_effect", objects=e["objects"], frame=e["frame"]))
    return out


# ---- image templates -----------------------------------------------------------------------------------

def image_count_shape(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    shape = str(rng.choice(sorted({s["shape"] for s in script["shapes"]})))
    n = sum(s["shape"] == shape for s in script["shapes"])
    return [_q(f"How many {shape}s are there in the image?", "numerical", "mathematics", str(n),
               "image_count_shape", shape=shape)]


def image_sum_numbers(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    return [_q("What is the sum of the numbers listed under the title of the image?", "numerical", "mathematics",
               str(sum(script["numbers"])), "image_sum_numbers")]


def image_title(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    return [_q("What is the title written at the top of the image?", "OCR", "document", script["title"],
               "image_title")]


def image_largest_color(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    sizes = sorted(s["size"] for s in script["shapes"])
    if len(sizes) > 1 and sizes[-1] == sizes[-2]:
        return []
    largest = max(script["shapes"], key=lambda s: s["size"])
    options, letter = _mc(rng, largest["color"], list(PALETTE))
    return [_q("What colour is the largest shape in the image?", "multiple choice", "general", letter,
               "image_largest_color", options)]


def image_lowest_shape(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    ys = sorted((s["y"] for s in script["shapes"]), reverse=True)
    if len(ys) > 1 and ys[0] - ys[1] < 4:
        return []
    lowest = max(script["shapes"], key=lambda s: s["y"])
    correct = f"{lowest['color']} {lowest['shape']}"
    distractors = [f"{s['color']} {s['shape']}" for s in script["shapes"]] + \
        [f"{c} {lowest['shape']}" for c in PALETTE]
    options, letter = _mc(rng, correct, distractors)
    return [_q("Which shape is closest to the bottom edge of the image?", "multiple choice", "spatiotemporal",
               letter, "image_lowest_shape", options)]


VIDEO_TEMPLATES: dict[str, Callable[[dict[str, Any], np.random.Generator], list[Question]]] = {
    f.__name__: f for f in (count_total, count_at_end, count_color_changes, color_at_end, background_colour,
                            appears_last,
                            main_direction, first_collision_partner, read_text, appear_time, path_speed,
                            describe_object, collision_effect)
}
IMAGE_TEMPLATES: dict[str, Callable[[dict[str, Any], np.random.Generator], list[Question]]] = {
    f.__name__: f for f in (image_count_shape, image_sum_numbers, image_title, image_largest_color,
                            image_lowest_shape)
}


# How each template asks, so a question read back from any benchmark format names its template (the controls'
# per-template baselines; tests/test_world.py checks every generated question maps back to its own template).
TEMPLATE_QUESTIONS: dict[str, re.Pattern[str]] = {name: re.compile(pattern) for name, pattern in {
    "count_total": r"How many different shapes appear in the video in total\?",
    "count_at_end": r"How many shapes are visible in the last frame of the video\?",
    "count_color_changes": r"How many times does the .+ change colour during the video\?",
    "color_at_end": r"What colour is the .+ the last time it is seen in the video\?",
    "background_colour": r"What colour is the background of the video\?",
    "appears_last": r"Which shape is the last one to appear in the video\?",
    "main_direction": r"In which direction does the .+ mainly move during its first second on screen\?",
    "first_collision_partner": r"Which shape does the .+ collide with first\?",
    "read_text": r"What text is written in the top-left corner of the video\?",
    "appear_time": r"At what time, in seconds, does the .+ first appear\?",
    "path_speed": r"What is the average speed of the .+, in pixels per second, while it is visible\?",
    "describe_object": r"Describe what happens to the .+ in the video\.",
    "collision_effect": r"What happens to the motion of the .+ and the .+ when they touch\?",
    "image_count_shape": r"How many \w+s are there in the image\?",
    "image_sum_numbers": r"What is the sum of the numbers listed under the title of the image\?",
    "image_title": r"What is the title written at the top of the image\?",
    "image_largest_color": r"What colour is the largest shape in the image\?",
    "image_lowest_shape": r"Which shape is closest to the bottom edge of the image\?",
}.items()}


def template_of(problem: str) -> str | None:
    """The template a question text was generated from (None: not one of the synthetic world's)."""
    text = problem.strip()
    return next((name for name, pattern in TEMPLATE_QUESTIONS.items() if pattern.fullmatch(text)), None)


def candidate_questions(script: dict[str, Any], rng: np.random.Generator) -> list[Question]:
    templates = VIDEO_TEMPLATES if script["kind"] == "video" else IMAGE_TEMPLATES
    out = []
    for fn in templates.values():
        out.extend(fn(script, rng))
    return out


def select_balanced(candidates: list[Question], n: int, rng: np.random.Generator,
                    shares: dict[str, float] | None = None) -> list[Question]:
    """Pick ``n`` questions: first ``round(n * share)`` from each template in ``shares`` (as many as it has),
    then round-robin across all templates, so every problem type and category is covered."""
    by_template: dict[str, list[Question]] = {}
    for q in candidates:
        by_template.setdefault(q["meta"]["template"], []).append(q)
    known = sorted({*VIDEO_TEMPLATES, *IMAGE_TEMPLATES})
    unknown = sorted(set(shares or {}) - set(known))
    if unknown:
        raise ValueError(f"world.template_shares: unknown templates {unknown}; known: {known}")
    queues: dict[str, list[Question]] = {}
    for name in sorted(by_template):
        group = by_template[name]
        queues[name] = [group[i] for i in rng.permutation(len(group))]
    picked: list[Question] = []
    for name, share in sorted((shares or {}).items()):
        queue = queues.get(name, [])
        for _ in range(min(round(n * share), len(queue), n - len(picked))):
            picked.append(queue.pop())
    while len(picked) < n and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked
