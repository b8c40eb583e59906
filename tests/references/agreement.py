"""Per-sample agreement of our protocols with the references' own code (vendored beside this file), on generated
logs of well-formed and realistically malformed replies. Shared by ``tests/test_protocols.py`` (a small log) and
``bench/reference_agreement.py`` (a large one, into ``bench/RESULTS.md``).

A disagreement is either a row of the README's deviations table (``deviation`` names it) or a bug.
"""

from __future__ import annotations

import random
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmms_eval_v0_7_2 as lmms_eval
import videorft_eval_bench as eval_bench

from evaluation.benchmarks import BENCHMARKS
from evaluation.scoring import sample_score
from videorft.answers import extract_prediction

LETTERS = "ABCD"
TEXTS = ["red circle", "blue square", "moving left", "two", "the camera pans", "a person waves", "none of them",
         "green", "it speeds up", "B-movie", "about 3", "yes"]
THINK = "<think>Looking at the frames, the object turns before the end.</think>"
MC_REPLIES = {  # case -> reply, from the chosen letter L, another letter W and the chosen option's text T
    "well-formed": THINK + "<answer>{L}</answer>",
    "lower case": THINK + "<answer>{l}</answer>",
    "the answer is": THINK + "<answer>The answer is {L}</answer>",
    "parenthesised": THINK + "<answer>({L})</answer>",
    "option text": THINK + "<answer>{T}</answer>",
    "letter and text": THINK + "<answer>{L}. {T}</answer>",
    "letter and paren": "<answer>{L})</answer>",
    "unclosed tag": THINK + "<answer>{L}",
    "missing tags": THINK + "{L}",
    "bare letter": "{L}",
    "two answer blocks": "<answer>{W}</answer> wait <answer>{L}</answer>",
    "upper-case tags": "<ANSWER>{L}</ANSWER>",
    "spaces in tag": "<answer> {L} </answer>",
    "answer colon": "Answer: {L}",
    "hedge": THINK + "<answer>{L} or {W}</answer>",
    "prose": "The correct answer is ({L}) because the object turns.",
    "line break": "<answer>{L}\nbecause it turns</answer>",
    "many periods": "<answer>" + ". " * 40 + "{L}</answer>",
    "empty": "",
}
NUMBERS = ["4", "3.5", "12", "1000", "0.8", "25", "0"]
NUMBER_REPLIES = {
    "well-formed": "<answer>{p}</answer>",
    "with unit": "<answer>{p} m</answer>",
    "words first": "<answer>about {p}</answer>",
    "thousands separator": "<answer>{pc}</answer>",
    "decimal point added": "<answer>{p}.0</answer>",
    "missing tags": THINK + "{p}",
    "unclosed tag": "<answer>{p}",
    "two answer blocks": "<answer>7</answer><answer>{p}</answer>",
    "spelled out": "<answer>four</answer>",
    "empty": "",
}
OPEN_ANSWERS = ["depth-first search", "42", "O(n^2)", "b", "3.14", "mitochondria"]
OPEN_REPLIES = {
    "well-formed": "<answer>{a}</answer>",
    "sentence": "<answer>The answer is {a}.</answer>",
    "upper case": "<answer>{A}</answer>",
    "superscript": "<answer>O(n²)</answer>",
    "number in prose": "<answer>so the total is {a}</answer>",
    "wrong": "<answer>breadth-first search</answer>",
    "missing tags": "{a}",
    "empty": "",
}
BENCHMARK_TYPES = {"vsi_bench": ("multiple choice", "regression"), "videommmu": ("multiple choice", "free-form"),
                   "mmvu": ("multiple choice", "free-form"), "mvbench": ("multiple choice",),
                   "tempcompass": ("multiple choice",), "videomme": ("multiple choice",)}


def _mc(rng: random.Random, case: str) -> dict[str, Any]:
    texts = rng.sample(TEXTS, 4)
    options = [f"{c}. {t}" for c, t in zip(LETTERS, texts, strict=True)]
    answer = rng.choice(LETTERS)
    chosen = answer if rng.random() < 0.5 else rng.choice([c for c in LETTERS if c != answer])
    other = rng.choice([c for c in LETTERS if c != chosen])
    reply = MC_REPLIES[case].format(L=chosen, l=chosen.lower(), W=other, T=texts[LETTERS.index(chosen)])
    return {"problem_type": "multiple choice", "options": options, "answer": answer, "reply": reply}


def _number(rng: random.Random, case: str, problem_type: str) -> dict[str, Any]:
    truth = rng.choice(NUMBERS)
    g = float(truth)
    p = rng.choice([g, g, round(g * 1.2, 2), round(g * 0.75, 2), round(g + 3, 2), 0.0])
    shown = f"{p:g}" if p != int(p) or abs(p) >= 1e6 else str(int(p))
    reply = NUMBER_REPLIES[case].format(p=shown, pc=f"{p:,g}" if p == int(p) else shown)
    return {"problem_type": problem_type, "options": [], "answer": truth, "reply": reply}


def _open(rng: random.Random, case: str) -> dict[str, Any]:
    answer = rng.choice(OPEN_ANSWERS)
    said = answer if rng.random() < 0.7 else rng.choice(OPEN_ANSWERS)
    reply = OPEN_REPLIES[case].format(a=said, A=said.upper())
    return {"problem_type": "free-form", "options": [], "answer": answer, "reply": reply}


def generate(per_case: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows ``{benchmark, case, problem_type, options, answer, reply}``: ``per_case`` per benchmark, problem type
    and reply case."""
    rng = random.Random(seed)
    rows = []
    for benchmark, types in BENCHMARK_TYPES.items():
        for problem_type in types:
            cases = {"multiple choice": MC_REPLIES, "regression": NUMBER_REPLIES, "free-form": OPEN_REPLIES}
            for case in cases[problem_type]:
                for _ in range(per_case):
                    row = (_mc(rng, case) if problem_type == "multiple choice" else
                           _number(rng, case, problem_type) if problem_type == "regression" else _open(rng, case))
                    rows.append({"benchmark": benchmark, "case": case, **row})
    for case in NUMBER_REPLIES:  # the paper's script's numerical rule (no lmms-eval task has the type)
        rows += [{"benchmark": "videorft_numerical", "case": case, **_number(rng, case, "numerical")}
                 for _ in range(per_case)]
    return rows


# ---- the references ---------------------------------------------------------------------------------------

def videorft_reference(row: dict[str, Any]) -> float:
    return float(eval_bench.reward_fn({"solution": f"<answer>{row['answer']}</answer>"}, row["reply"],
                                      row["problem_type"]))


def official_reference(row: dict[str, Any]) -> float:
    """The benchmark's lmms-eval v0.7.2 decision on ``extract_prediction(reply)``. Raises what it raises."""
    text, answer, benchmark = extract_prediction(row["reply"]), row["answer"], row["benchmark"]
    texts = [o.split(". ", 1)[1] for o in row["options"]]
    mc = row["problem_type"] == "multiple choice"
    if benchmark == "vsi_bench":
        doc = {"question_type": "route_planning" if mc else "object_counting", "ground_truth": answer}
        out = lmms_eval.vsibench_process_results(doc, [text])["vsibench_overall"]
        return float(out["accuracy"] if mc else out["MRA:.5:.95:.05"])
    if benchmark == "videomme":
        doc = {"answer": answer, "domain": "Knowledge", "sub_category": "s", "task_type": "t", "question_id": "q",
               "duration": "short", "videoID": "v"}
        return float(lmms_eval.videomme_process_results(doc, [text])["videomme_perception_score"]["score"])
    if benchmark == "mvbench":
        doc = {"candidates": texts, "answer": texts[LETTERS.index(answer)]}
        return float(lmms_eval.mvbench_process_results(doc, [text])["mvbench_accuracy"]["score"])
    if benchmark == "mmvu":
        doc = ({"question_type": "multiple-choice", "answer": answer, "choices": dict(zip(LETTERS, texts, strict=True))}
               if mc else {"question_type": "open-ended", "answer": answer})
        return float(lmms_eval.evaluate_with_rule_based(doc, text))
    if benchmark == "videommmu":
        if mc:
            index2ans, choices = lmms_eval.get_multi_choice_info(texts)
            parsed = lmms_eval.parse_multi_choice_response(text, choices, index2ans)
        else:
            parsed = lmms_eval.parse_open_response(text)
        sample = {"id": "q", "answer": answer, "parsed_pred": parsed,
                  "question_type": "multiple-choice" if mc else "open"}
        return float(lmms_eval.evaluate_videommmu([sample])[1]["acc"])
    if benchmark == "tempcompass":
        doc = {"answer": row["options"][LETTERS.index(answer)], "question": "q", "video_id": "v", "dim": "action"}
        return float(lmms_eval.tempcompass_process_results_multi_choice(doc, [text])["avg_accuracy"]["rating"])
    raise KeyError(benchmark)


def ours(row: dict[str, Any], protocol: str) -> float:
    benchmark = row["benchmark"] if row["benchmark"] in BENCHMARKS else None
    return sample_score(row["problem_type"], row["reply"], row["answer"], row["options"], protocol, benchmark)


def deviation(row: dict[str, Any], protocol: str, error: BaseException | None) -> str | None:
    """The README deviations-table row a disagreement belongs to, or None (a bug)."""
    if protocol == "official" and isinstance(error, ZeroDivisionError) and row["benchmark"] == "vsi_bench":
        return ("VSI-Bench MRA with a ground truth of 0: lmms-eval stops with ZeroDivisionError; we score 1 if the "
                "prediction is 0, else 0")
    return None


def compare(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Per row and protocol: ours, the reference's (None where it raised), and the deviation if they differ."""
    for row in rows:
        protocols = ("videorft",) if row["benchmark"] not in BENCHMARKS else ("videorft", "official")
        for protocol in protocols:
            error = None
            try:
                ref: float | None = (videorft_reference if protocol == "videorft" else official_reference)(row)
            except Exception as exc:
                ref, error = None, exc
            mine = ours(row, protocol)
            agree = ref is not None and abs(mine - ref) < 1e-9
            yield {**row, "protocol": protocol, "ours": mine, "reference": ref,
                   "agree": agree, "deviation": None if agree else deviation(row, protocol, error),
                   "error": repr(error) if error else None}


def table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (benchmark, protocol): rows, agreements, documented deviations by name, and unexplained ones."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["benchmark"], r["protocol"])].append(r)
    out = []
    for (benchmark, protocol), rs in sorted(groups.items()):
        documented = Counter(r["deviation"] for r in rs if not r["agree"] and r["deviation"])
        out.append({"benchmark": benchmark, "protocol": protocol, "rows": len(rs),
                    "agree": sum(r["agree"] for r in rs), "documented": dict(documented),
                    "unexplained": sum(not r["agree"] and not r["deviation"] for r in rs)})
    return out
