"""Captions of synthetic videos, taken from their scene scripts: what a pretraining corpus says about a video.

A caption is a list of facts, one sentence each: the background, every object (shape, colour, when it
appears, which way it moves, colour changes, when it disappears), every collision and every text overlay.
``caption`` joins them all; ``caption_variant`` draws a subset in a random order and phrasing, so a text
encoder learns the facts rather than one sentence layout (a reasoning span names a few facts in its own order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthetic.qa import first_second_direction
from synthetic.scene import object_name


def _seconds(script: dict[str, Any], frame: int) -> str:
    return f"{round(frame / script['fps'], 2):g}"


def object_facts(script: dict[str, Any], obj: dict[str, Any]) -> str:
    """One sentence about one object: its name, entry, motion, colour changes and exit."""
    parts = ["is there from the start" if obj["appear_frame"] == 0
             else f"appears at {_seconds(script, obj['appear_frame'])} seconds"]
    moved = first_second_direction(script, obj)
    parts.append(f"moves {moved[0]}" if moved else "moves around")
    parts += [f"turns {name} at {_seconds(script, frame)} seconds" for frame, name in obj["colors"][1:]]
    if obj["disappear_frame"] < script["num_frames"]:
        parts.append(f"disappears at {_seconds(script, obj['disappear_frame'])} seconds")
    return f"The {object_name(obj)} " + ", ".join(parts[:-1]) + " and " + parts[-1] + "."


def facts(script: dict[str, Any]) -> list[str]:
    """Every fact of a video script as one sentence, background first, then objects, collisions, texts."""
    if script["kind"] != "video":
        raise ValueError(f"captions describe videos; {script['id']} is a {script['kind']}")
    objects = {o["id"]: o for o in script["objects"]}
    out = [f"The background is {script['background_name']}."]
    out += [object_facts(script, o) for o in script["objects"]]
    seen: set[tuple[str, ...]] = set()
    for event in script["events"]:
        pair = tuple(event["objects"])
        if event["type"] == "collision" and pair not in seen:
            seen.add(pair)
            a, b = (object_name(objects[i]) for i in pair)
            out.append(f"The {a} and the {b} collide at {_seconds(script, event['frame'])} seconds.")
    out += [f"The text '{t['text']}' is written in the top-left corner." for t in script["texts"]]
    return out


def caption(script: dict[str, Any]) -> str:
    """The whole caption: every fact, in script order."""
    return " ".join(facts(script))


_OPENERS = ("", "In the video I see ", "The video shows ", "There is ")


def caption_variant(script: dict[str, Any], rng: np.random.Generator, max_facts: int = 4, min_facts: int = 1) -> str:
    """A random subset of the facts (``min_facts`` to ``max_facts``) in a random order, sometimes as a list of the
    objects seen ("In the video I see a red circle, a blue square."), the way a reasoning text names what it
    sees."""
    all_facts = facts(script)
    if rng.random() < 0.3:
        names = [f"a {object_name(o)}" for o in script["objects"]]
        order = rng.permutation(len(names))
        seen = str(_OPENERS[int(rng.integers(1, len(_OPENERS)))]) + ", ".join(names[i] for i in order) + "."
        return (all_facts[0] + " " + seen) if rng.random() < 0.5 else seen
    most = min(max_facts, len(all_facts))
    k = int(rng.integers(min(min_facts, most), most + 1))
    picked = [all_facts[int(i)] for i in rng.choice(len(all_facts), size=k, replace=False)]
    return " ".join(picked)
