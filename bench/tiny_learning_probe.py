"""Can the tiny Qwen2.5-VL learn to see? A probe outside the graph, on the tiny world's background question.

Three SFT runs of ``tiny-random`` on the tiny world's videos, each evaluated on the background-colour question
of 60 held-out videos (4 options in one fixed order, so a letter habit scores 25% and only the video tells):

- ``short``: only that question, with the CoT ``<think>The background is <colour>.</think>``;
- ``short+images``: the same rows plus the world's image rows with their curated-style CoTs (long, OCR-heavy);
- (the graph's own ``sft_only`` on the curated CoT set is in bench/RESULTS.md, "Tiny Table 2").

Run: ``.venv/bin/python bench/tiny_learning_probe.py`` (about 3 minutes on 2 cores); prints the accuracy and
the answers per variant as JSON. The world, the frames and the model are the tiny profile's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthetic.qa import LETTERS  # noqa: E402
from synthetic.scene import BACKGROUNDS  # noqa: E402
from synthetic.world import build_world  # noqa: E402
from videorft.profile import WorldConfig, load_profile  # noqa: E402

NAMES = list(BACKGROUNDS)


def background_rows(world_root: Path, with_cot: bool) -> list[dict[str, object]]:
    rows = []
    for script_path in sorted((world_root / "videos").glob("v*.json")):
        script = json.loads(script_path.read_text())
        colour = script["background_name"]
        rows.append({"problem_id": script["id"], "problem": "What colour is the background of the video?",
                     "data_type": "video", "problem_type": "multiple choice",
                     "options": [f"{LETTERS[i]}. {n}" for i, n in enumerate(NAMES)],
                     "process": f"<think>The background is {colour}.</think>" if with_cot else "",
                     "solution": f"<answer>{LETTERS[NAMES.index(colour)]}</answer>",
                     "path": str(script_path.with_suffix(".mp4")), "data_source": "probe",
                     # the evaluation rows are read as MMVU's (its category field), the training rows as CoTs
                     **({"category": "general"} if with_cot else {"discipline": "Science"})})
    return rows


def image_rows(world_root: Path) -> list[dict[str, object]]:
    """The world's image questions with a CoT of the curated kind (title, numbers, shapes, conclusion)."""
    out = []
    for q in (json.loads(line) for line in (world_root / "qa_images.jsonl").read_text().splitlines() if line):
        script = json.loads((world_root / q["path"]).with_suffix(".json").read_text())
        shapes = ", ".join(f"a {s['color']} {s['shape']}" for s in script["shapes"])
        answer = q["solution"].removeprefix("<answer>").removesuffix("</answer>")
        cot = (f"<think>The question asks about {q['category']}. In the image I see the title '{script['title']}', "
               f"the numbers {', '.join(map(str, script['numbers']))} and {shapes}. So the answer is {answer}.</think>")
        out.append({k: q[k] for k in ("problem_id", "problem", "data_type", "problem_type", "options", "solution",
                                      "data_source", "category")} | {"process": cot,
                                                                     "path": str(world_root / q["path"])})
    return out


def run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["short", "short+images"], help="run one probe (default: both)")
    parser.add_argument("--work", help="working folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    profile = load_profile("tiny")
    video = profile.video.train
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tiny-probe-"))
    train_world = Path(build_world(profile.world, str(work / "train-world")).root)
    held_out_world = WorldConfig(seed=1001, videos=60, images=0, questions=0)  # the fixtures' seed, 60 videos
    held_out = Path(build_world(held_out_world, str(work / "eval-world")).root)
    (work / "eval.json").write_text(json.dumps(background_rows(held_out, with_cot=False)))
    results = {}
    for name, rows in (("short", background_rows(train_world, True)),
                       ("short+images", background_rows(train_world, True) + image_rows(train_world))):
        if args.only and name != args.only:
            continue
        data = work / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        started = time.perf_counter()
        run([sys.executable, "-m", "training.sft", "--config", "configs/tiny/sft.yaml", "--model", "tiny-random",
             "--data", str(data), "--output-dir", str(work / name), "--set", "trainer.num_train_epochs=20",
             "--frames", str(video.frames), "--max-pixels", str(video.max_pixels)])
        seconds = time.perf_counter() - started
        run([sys.executable, "-m", "evaluation.run", "--model", str(work / name / "final"), "--benchmarks", "mmvu",
             "--data", f"mmvu={work / 'eval.json'}@/", "--output", str(work / f"eval-{name}"), "--bootstrap", "0",
             "--frames", str(video.frames), "--max-pixels", str(video.max_pixels)])
        samples = [json.loads(x) for x in (work / f"eval-{name}" / "samples_mmvu.jsonl").read_text().splitlines()]
        results[name] = {"train_rows": len(rows), "sft_seconds": round(seconds, 1),
                         "held_out_accuracy": sum(s["scores"]["official"] for s in samples) / len(samples),
                         "answers": dict(Counter(str(s.get("extracted")) for s in samples))}
    print(json.dumps({"held_out_questions": 60, "chance": 0.25, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
