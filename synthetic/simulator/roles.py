"""The three simulated experts, answering from the synthetic world's ground truth with deliberate errors.

- describer: a faithful structured representation, except that some objects are left out and some are
  given the wrong colour (fixed per media, so every question about that media inherits the same mistakes);
- reasoner: a five-stage CoT from that (flawed) description; it gets the answer wrong when the description
  misled it about the object asked for, or at ``reasoner_wrong_rate``, and it sometimes invents an object;
- refiner: looks at the real media, replaces sentences that name objects the scene does not contain and
  corrects a wrong answer at ``refiner_fix_rate``; rarely (``refiner_error_rate``) it breaks a right one.

Content mistakes are deterministic (seeded by media and question), so re-asking gives the same reply; the
server's HTTP faults are random per request.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any

import numpy as np

from synthetic.scene import PALETTE, SHAPES, color_at, position, visible
from videorft.answers import answers_match, parse_number
from videorft.profile import SimulatorConfig

_MENTION_RE = re.compile(rf"\b({'|'.join(PALETTE)})\s+({'|'.join(SHAPES)})s?\b")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _rng(cfg: SimulatorConfig, *parts: Any) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps([cfg.seed, *parts]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _where(x: float, y: float, w: int, h: int) -> str:
    col = "left" if x < w / 3 else ("right" if x > 2 * w / 3 else "centre")
    row = "top" if y < h / 3 else ("bottom" if y > 2 * h / 3 else "middle")
    return "centre" if (row, col) == ("middle", "centre") else f"{row}-{col}"


# ---- describer -----------------------------------------------------------------------------------------

def describer_errors(cfg: SimulatorConfig, script: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
    """Which objects this media's describer leaves out, and which it gives a wrong colour."""
    rng = _rng(cfg, "describer", script["id"])
    items = script["objects"] if script["kind"] == "video" else [{"id": str(i), **s}
                                                                 for i, s in enumerate(script["shapes"])]
    dropped, altered = set(), {}
    for obj in items:
        roll = rng.random()
        if roll < cfg.describer_drop_rate and len(items) - len(dropped) > 1:
            dropped.add(obj["id"])
        elif roll < cfg.describer_drop_rate + cfg.describer_alter_rate:
            true = obj["colors"][0][1] if "colors" in obj else obj["color"]
            altered[obj["id"]] = str(rng.choice([c for c in PALETTE if c != true]))
    return dropped, altered


def _gist(cfg: SimulatorConfig, script: dict[str, Any]) -> str:
    """What a reasoner's CoT says it sees: the describer's view (its errors included), without the details
    that only name one video among many (duration, size)."""
    dropped, altered = describer_errors(cfg, script)
    if script["kind"] == "image":
        shapes = [f"a {altered.get(str(i), s['color'])} {s['shape']}" for i, s in enumerate(script["shapes"])
                  if str(i) not in dropped]
        return f"the title '{script['title']}', the numbers {', '.join(map(str, script['numbers']))} and " + \
            ", ".join(shapes)
    names = [f"a {altered.get(o['id'], o['colors'][0][1])} {o['shape']}" for o in script["objects"]
             if o["id"] not in dropped]
    return ", ".join(names)


def _background(script: dict[str, Any]) -> str:
    return str(script.get("background_name", "dark"))


def caption_of(cfg: SimulatorConfig, script: dict[str, Any]) -> str:
    dropped, altered = describer_errors(cfg, script)
    if script["kind"] == "image":
        shapes = [f"a {altered.get(str(i), s['color'])} {s['shape']}" for i, s in enumerate(script["shapes"])
                  if str(i) not in dropped]
        return (f"A {script['width']}x{script['height']} image titled '{script['title']}' listing the numbers "
                f"{', '.join(map(str, script['numbers']))} above {len(shapes)} shapes: {', '.join(shapes)}.")
    names = [f"a {altered.get(o['id'], o['colors'][0][1])} {o['shape']}" for o in script["objects"]
             if o["id"] not in dropped]
    text = "".join(f", with the text '{t['text']}' in the top-left corner" for t in script["texts"])
    # the background first: what follows "I see" in a CoT is then the video's, not a detail that names one
    # video among many (its duration, its size), which a small model would memorise instead of looking
    return (f"A {_background(script)}-background animation of {script['duration']:.2f} seconds at "
            f"{script['width']}x{script['height']} showing {', '.join(names)} moving and bouncing{text}.")


def describe(cfg: SimulatorConfig, script: dict[str, Any], frame_indices: list[int]) -> dict[str, Any]:
    dropped, altered = describer_errors(cfg, script)
    if script["kind"] == "image":
        objects, relations = [], []
        for i, s in enumerate(script["shapes"]):
            if str(i) in dropped:
                continue
            name = f"{altered.get(str(i), s['color'])} {s['shape']}"
            objects.append(name)
            relations.append(f"the {name} is near the {_where(s['x'], s['y'], script['width'], script['height'])}")
        objects += [f"title text '{script['title']}'"] + [f"number {n}" for n in script["numbers"]]
        frame = {"timestamp": 0, "caption": caption_of(cfg, script), "objects": objects, "actions": [],
                 "scene": "a plain dark background with a small document at the top",
                 "spatial_relations": relations, "interactions": []}
        return {"caption": caption_of(cfg, script), "frames": [frame]}

    def name(o: dict[str, Any], f: int) -> str:
        return f"{altered[o['id']]} {o['shape']}" if o["id"] in altered else f"{color_at(o, f)} {o['shape']}"

    records = []
    previous = -1
    for f in frame_indices:
        live = [o for o in script["objects"] if visible(o, f) and o["id"] not in dropped]
        actions, interactions = [], []
        for e in script["events"]:
            if not previous < e["frame"] <= f or any(i in dropped for i in e["objects"]):
                continue
            objs = {o["id"]: o for o in script["objects"]}
            subject = name(objs[e["objects"][0]], e["frame"])
            if e["type"] == "collision":
                other = name(objs[e["objects"][1]], e["frame"])
                interactions.append(f"the {subject} collides with the {other} and both bounce back")
            elif e["type"] == "color_change":
                actions.append(f"the {e['from']} {objs[e['objects'][0]]['shape']} turns {e['to']}")
            else:
                actions.append(f"the {subject} {e['type']}s")
        for o in live:
            if previous >= 0 and visible(o, previous):
                (x0, y0), (x1, y1) = position(o, previous), position(o, f)
                dx, dy = x1 - x0, y1 - y0
                if max(abs(dx), abs(dy)) > 2:
                    way = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")
                    actions.append(f"the {name(o, f)} moves {way}")
        relations = [f"the {name(o, f)} is near the {_where(*position(o, f), script['width'], script['height'])}"
                     for o in live]
        for a, b in itertools.pairwise(live):
            side = "left of" if position(a, f)[0] < position(b, f)[0] else "right of"
            relations.append(f"the {name(a, f)} is {side} the {name(b, f)}")
        texts = [f"text '{t['text']}'" for t in script["texts"] if t["start_frame"] <= f < t["end_frame"]]
        objects = [name(o, f) for o in live] + texts
        records.append({
            "timestamp": round(f / script["fps"], 2),
            "caption": f"{len(live)} shape(s) on screen: {', '.join(name(o, f) for o in live) or 'none'}"
                       + (f"; {texts[0]} in the top-left corner" if texts else "") + ".",
            "objects": objects, "actions": actions, "scene": f"a plain {_background(script)} background",
            "spatial_relations": relations, "interactions": interactions,
        })
        previous = f
    return {"caption": caption_of(cfg, script), "frames": records}


# ---- answers -------------------------------------------------------------------------------------------

def wrong_answer(question: dict[str, Any], rng: np.random.Generator) -> str:
    truth = question["answer"]
    kind = question["problem_type"]
    if kind == "multiple choice":
        letters = [o.split(".", 1)[0] for o in question["options"] if o.split(".", 1)[0] != truth]
        return str(rng.choice(letters)) if letters else truth
    if kind in ("numerical", "regression"):
        value = parse_number(truth) or 0.0
        if kind == "numerical":
            return f"{max(0, int(value) + (1 if value < 1 or rng.random() < 0.5 else -1))}"
        return f"{value * float(rng.uniform(1.3, 1.8)) + 0.5:.2f}"
    if kind == "OCR":
        chars = list(truth)
        i = int(rng.integers(len(chars)))
        chars[i] = "X" if chars[i] != "X" else "Y"
        return "".join(chars)
    return "Nothing in particular happens: it stays where it is and keeps its colour."


def _answer_text(question: dict[str, Any], answer: str) -> str:
    if question["problem_type"] == "multiple choice":
        for option in question["options"]:
            if option.split(".", 1)[0] == answer:
                return f"option {answer} ({option.split('.', 1)[1].strip()})"
    return answer


def _truth_names(script: dict[str, Any]) -> set[str]:
    if script["kind"] == "image":
        return {f"{s['color']} {s['shape']}" for s in script["shapes"]}
    return {f"{c} {o['shape']}" for o in script["objects"] for _, c in o["colors"]}


def _invented(script: dict[str, Any], rng: np.random.Generator) -> str:
    truth = _truth_names(script)
    fake = [f"{c} {s}" for c in PALETTE for s in SHAPES if f"{c} {s}" not in truth]
    return str(rng.choice(fake))


# ---- reasoner ------------------------------------------------------------------------------------------

def reason(cfg: SimulatorConfig, script: dict[str, Any], question: dict[str, Any]) -> tuple[str, str]:
    """(reasoning, answer) of the blind reasoner for one question."""
    rng = _rng(cfg, "reasoner", script["id"], question["problem"], question["options"])
    dropped, altered = describer_errors(cfg, script)
    target = question["meta"]["args"].get("object")
    misled = target is not None and (target in dropped or target in altered)
    wrong = misled or rng.random() < cfg.reasoner_wrong_rate
    answer = wrong_answer(question, rng) if wrong else question["answer"]
    medium = script["kind"]
    # Short and in the paper's order (question parsing, then what the media shows, then the conclusion): the
    # tiny model learns from the few words that depend on the video (background, shapes, the option they
    # point to) only when they are not drowned in boilerplate (bench/RESULTS.md, "Tiny Table 2").
    sentences = [
        f"The question asks about {question['category']}.",
        *([f"The background is {_background(script)}."] if medium == "video" else []),
        f"In the {medium} I see {_gist(cfg, script)}.",
    ]
    if rng.random() < cfg.reasoner_invent_rate:
        sentences.append(f"I also notice a {_invented(script, rng)} near the centre.")
    sentences.append(f"The evidence points to {_answer_text(question, answer)}. So the answer is {answer}.")
    return " ".join(sentences), answer


# ---- refiner -------------------------------------------------------------------------------------------

def refine(cfg: SimulatorConfig, script: dict[str, Any], question: dict[str, Any], cot: str,
           answer: str) -> tuple[str, str]:
    """(revised reasoning, answer): contradicted claims replaced, a wrong answer corrected, structure kept."""
    rng = _rng(cfg, "refiner", script["id"], question["problem"], question["options"], answer)
    truth_names = _truth_names(script)
    medium = script["kind"]
    sentences = _SENTENCE_RE.split(cot.strip())
    revised = []
    for sentence in sentences:
        mentions = {f"{c} {s}" for c, s in _MENTION_RE.findall(sentence)}
        if mentions - truth_names and rng.random() < cfg.refiner_fix_rate:
            seen = sorted(n for n in truth_names if n.split()[1] in {m.split()[1] for m in mentions}) or \
                sorted(truth_names)
            revised.append(f"Looking at the {medium} itself, there is no {sorted(mentions - truth_names)[0]}; "
                           f"what is actually there is the {' and the '.join(seen[:3])}.")
        else:
            revised.append(sentence)
    truth = question["answer"]
    final = answer
    right = answers_match(question["problem_type"], answer, truth, question["options"], 0.0)
    if not right and rng.random() < cfg.refiner_fix_rate:
        final = truth
        revised[-1] = (f"Checking this against the {medium}, the earlier conclusion does not hold: the correct "
                       f"answer is {_answer_text(question, truth)}. So the answer is {truth}.")
    elif right and rng.random() < cfg.refiner_error_rate:
        final = wrong_answer(question, rng)
        revised[-1] = f"On reflection I change my mind. So the answer is {final}."
    return " ".join(revised), final
