"""The synthetic world: deterministic, covering, and every answer re-derived here from the saved script."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from synthetic.world import build_world
from videorft.answers import extract_answer
from videorft.schema import CATEGORIES, PROBLEM_TYPES


def _rows(root: Path) -> list[dict]:
    rows = json.loads((root / "qa_videos.json").read_text())
    rows += [json.loads(line) for line in (root / "qa_images.jsonl").read_text().splitlines()]
    return rows


def _option(row: dict, letter: str) -> str:
    return next(o.split(". ", 1)[1] for o in row["options"] if o.startswith(letter + "."))


def _name(obj: dict) -> str:
    return f"{obj['colors'][0][1]} {obj['shape']}"


def expected_answer(row: dict, script: dict) -> str | None:
    """An independent derivation of each template's answer from the script (None: checked otherwise)."""
    t, args = row["meta"]["template"], row["meta"]["args"]
    objs = {o["id"]: o for o in script.get("objects", [])}
    o = objs.get(args.get("object", ""))
    events = script.get("events", [])
    fps = script.get("fps", 1)
    if t == "count_total":
        return str(len(objs))
    if t == "count_at_end":
        return str(sum(1 for x in objs.values() if x["disappear_frame"] == script["num_frames"]))
    if t == "count_color_changes":
        return str(sum(1 for e in events if e["type"] == "color_change" and e["objects"] == [o["id"]]))
    if t == "color_at_end":
        return o["colors"][-1][1]
    if t == "appears_last":
        return _name(max(objs.values(), key=lambda x: x["appear_frame"]))
    if t == "background_colour":  # from the rendered colour, not the name the script stores
        from synthetic.scene import BACKGROUNDS

        return next(name for name, rgb in BACKGROUNDS.items() if list(rgb) == script["background"])
    if t == "main_direction":
        (x0, y0), (x1, y1) = o["track"][0], o["track"][args["end_frame"] - o["appear_frame"]]
        dx, dy = x1 - x0, y1 - y0
        return ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
    if t == "first_collision_partner":
        hits = [e for e in events if e["type"] == "collision" and o["id"] in e["objects"]]
        if not hits:
            return "it collides with no other shape"
        return _name(objs[next(i for i in hits[0]["objects"] if i != o["id"])])
    if t == "read_text":
        return script["texts"][args["text_index"]]["text"]
    if t == "appear_time":
        return f"{round(o['appear_frame'] / fps, 2):g}"
    if t == "path_speed":
        track = np.array(o["track"])
        length = np.linalg.norm(np.diff(track, axis=0), axis=1).sum()
        return f"{round(length / ((len(track) - 1) / fps), 2):g}"
    if t == "image_count_shape":
        return str(sum(s["shape"] == args["shape"] for s in script["shapes"]))
    if t == "image_sum_numbers":
        return str(sum(script["numbers"]))
    if t == "image_title":
        return script["title"]
    if t == "image_largest_color":
        return max(script["shapes"], key=lambda s: s["size"])["color"]
    if t == "image_lowest_shape":
        s = max(script["shapes"], key=lambda s: s["y"])
        return f"{s['color']} {s['shape']}"
    return None


def test_every_answer_follows_from_its_script(small_world):
    root = Path(small_world.root)
    seen_templates = set()
    for row in _rows(root):
        script = json.loads((root / row["path"]).with_suffix(".json").read_text())
        answer = extract_answer(row["solution"])
        template = row["meta"]["template"]
        seen_templates.add(template)
        expected = expected_answer(row, script)
        if row["problem_type"] == "multiple choice":
            assert _option(row, answer) == expected, row
        elif template == "describe_object":
            obj = next(o for o in script["objects"] if o["id"] == row["meta"]["args"]["object"])
            for e in script["events"]:
                if obj["id"] in e["objects"]:
                    assert f"{round(e['frame'] / script['fps'], 2):g} seconds" in answer, (e, answer)
            assert answer.startswith(f"The {_name(obj)} ")
        elif template == "collision_effect":
            pair = row["meta"]["args"]["objects"]
            assert any(e["type"] == "collision" and e["objects"] == pair for e in script["events"])
            assert all(_name(next(o for o in script["objects"] if o["id"] == i)) in answer for i in pair)
        else:
            assert answer == expected, row
    assert len(seen_templates) >= 12


def test_world_covers_all_problem_types_and_categories_and_sizes(small_world, small_profile):
    rows = _rows(Path(small_world.root))
    assert len(rows) == small_profile.world.questions == small_world.questions
    assert set(Counter(r["problem_type"] for r in rows)) == set(PROBLEM_TYPES)
    assert set(Counter(r["category"] for r in rows)) == set(CATEGORIES)
    assert small_world.videos == 12 and small_world.images == 6
    assert len({r["problem_id"] for r in rows}) == len(rows)
    keys = {(r["path"], r["problem"], tuple(r["options"]), r["solution"]) for r in rows}
    assert len(keys) == len(rows), "the generator itself must not emit duplicate questions"
    for r in rows:
        if r["problem_type"] == "multiple choice":
            assert len(r["options"]) >= 2 and all(o[1:3] == ". " for o in r["options"])


def test_world_is_deterministic_by_seed(tmp_path, small_profile, small_world):
    again = build_world(small_profile.world, str(tmp_path / "again"))
    assert again.content_hash == small_world.content_hash
    for rel in ["qa_videos.json", "qa_images.jsonl", "videos/v0003.mp4", "images/i0002.png"]:
        assert (tmp_path / "again" / rel).read_bytes() == (Path(small_world.root) / rel).read_bytes()
    other = build_world(small_profile.world.model_copy(update={"seed": 8}), str(tmp_path / "other"))
    assert other.content_hash != small_world.content_hash


def test_an_identical_world_is_reused_not_rendered_again(tmp_path, small_profile):
    cfg = small_profile.world.model_copy(update={"videos": 2, "images": 1, "questions": 10})
    first = build_world(cfg, str(tmp_path / "w"))
    video = tmp_path / "w" / "videos" / "v0000.mp4"
    before = video.stat().st_mtime_ns
    assert build_world(cfg, str(tmp_path / "w")) == first
    assert video.stat().st_mtime_ns == before


def _decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("video_id", ["v0000", "v0005", "v0011"])
def test_video_pixels_show_the_script(small_world, video_id):
    """Decoded frames have the scripted size and length, and each object's colour at its scripted position."""
    root = Path(small_world.root) / "videos"
    script = json.loads((root / f"{video_id}.json").read_text())
    frames = _decode_all(root / f"{video_id}.mp4")
    assert len(frames) == script["num_frames"]
    assert frames[0].shape == (script["height"], script["width"], 3)
    checked = 0
    for f in range(0, script["num_frames"], 5):
        live = [o for o in script["objects"] if o["appear_frame"] <= f < o["disappear_frame"]]
        for o in live:
            x, y = o["track"][f - o["appear_frame"]]
            clear = all(math.dist((x, y), other["track"][f - other["appear_frame"]]) > o["size"] + other["size"]
                        for other in live if other is not o)
            if not clear or y < 26 or o["size"] < 6:
                continue
            color = next(c for start, c in reversed(o["colors"]) if start <= f)
            got = frames[f][round(y), round(x)].astype(int)
            assert np.abs(got - np.array(script["palette"][color])).max() < 50, (video_id, f, o["id"], got, color)
            checked += 1
    assert checked > 0


def test_template_shares_reserve_their_share_of_the_questions_and_unknown_templates_are_refused():
    from synthetic.world import build_questions, build_scripts
    from videorft.profile import WorldConfig

    cfg = WorldConfig(videos=30, images=4, questions=60)
    videos, images = build_scripts(cfg)
    plain = Counter(q["meta"]["template"] for q in build_questions(cfg, videos, images))
    shared = cfg.model_copy(update={"template_shares": {"background_colour": 0.4}})
    counts = Counter(q["meta"]["template"] for q in build_questions(shared, videos, images))
    assert sum(counts.values()) == 60
    assert counts["background_colour"] >= 24 > plain["background_colour"]
    assert len(counts) == len(plain)  # the rest still covers every template
    with pytest.raises(ValueError, match="unknown templates"):
        build_questions(cfg.model_copy(update={"template_shares": {"backgrnd": 0.1}}), videos, images)
    with pytest.raises(ValueError, match="at most 1"):
        WorldConfig(template_shares={"background_colour": 0.7, "read_text": 0.6})


def test_every_generated_question_names_its_own_template():
    from synthetic.qa import candidate_questions, template_of
    from synthetic.world import build_scripts
    from videorft.profile import WorldConfig

    videos, images = build_scripts(WorldConfig(seed=3, videos=30, images=10, questions=0))
    asked = [q for s in [*videos, *images] for q in candidate_questions(s, np.random.default_rng(0))]
    assert {q["meta"]["template"] for q in asked} >= {"background_colour", "main_direction", "read_text"}
    assert [template_of(q["problem"]) for q in asked] == [q["meta"]["template"] for q in asked]
    assert template_of("What is the capital of France?") is None


def test_every_multiple_choice_template_shuffles_its_options():
    """No template keeps one order: an answer's text must not always sit at one letter (the old background
    question's did, so its letter could be learned as a colour code)."""
    from synthetic.qa import candidate_questions
    from synthetic.world import build_scripts
    from videorft.profile import WorldConfig

    videos, _ = build_scripts(WorldConfig(seed=5, videos=80, images=0, questions=0))
    letters_of: dict[str, dict[str, set[str]]] = {}
    for s in videos:
        for q in candidate_questions(s, np.random.default_rng([5, int(s["id"][1:])])):
            if q["problem_type"] == "multiple choice":
                letter = extract_answer(q["solution"])
                text = next(o.split(". ", 1)[1] for o in q["options"] if o.startswith(letter + "."))
                letters_of.setdefault(q["meta"]["template"], {}).setdefault(text, set()).add(letter)
    assert "background_colour" in letters_of
    for template, by_text in letters_of.items():
        assert max(len(letters) for letters in by_text.values()) >= 3, (template, by_text)


def test_a_caption_states_every_fact_of_its_script():
    from synthetic.captions import caption, caption_variant, facts
    from synthetic.scene import object_name
    from synthetic.world import build_scripts
    from videorft.profile import WorldConfig

    videos, _ = build_scripts(WorldConfig(seed=9, videos=20, images=0, questions=0))
    for script in videos:
        text = caption(script)
        assert text.startswith(f"The background is {script['background_name']}.")
        for o in script["objects"]:
            assert f"The {object_name(o)} " in text
            for _, colour in o["colors"][1:]:
                assert f"turns {colour}" in text
        collisions = {tuple(e["objects"]) for e in script["events"] if e["type"] == "collision"}
        assert text.count(" collide at ") == len(collisions)
        assert all(f"'{t['text']}'" in text for t in script["texts"])
        variant = caption_variant(script, np.random.default_rng(0), max_facts=3, min_facts=2)
        sentences = [f for f in facts(script) if f in variant]
        assert sentences or variant.split(". ", 1)[-1].startswith(("In the video", "The video shows", "There is")), \
            variant
