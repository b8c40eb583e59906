"""Agreement of our rewards and scores with the reference implementations, case by case.

The references are re-expressed here from their definitions, as their sources state them: VideoRFT's GRPO
``accuracy_reward`` / ``format_reward`` (``src/r1-v/src/open_r1/grpo.py``), its evaluation script's MRA
(``src/eval_bench.py``: float32 tensors, ``|p - g| / (|g| + 1e-8)``, ``torch.arange(0.5, 0.975, 0.05)``, strict
``<``) and lmms-eval's VSI-Bench MRA (float64, ``|p - g| / g``, ``numpy.linspace(0.5, 0.95, 10)``, ``<=``).

Protocols: each benchmark's ``official`` and the ``videorft`` protocol, sample by sample, against the
references' own code vendored under ``tests/references/`` (lmms-eval v0.7.2's task functions, VideoRFT's
``eval_bench.py``), on the generated logs of ``tests/references/agreement.py``.

Completions are generated per problem type: well-formed answers (right, near, wrong) and the ill-formed or
gaming ones the README's table lists. Every disagreement is classified; a disagreement outside the documented
deviations is a bug (the script exits 1).

    .venv/bin/python bench/reference_agreement.py [--per-type 480] [--vsi-rows 600] [--per-case 40]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from videorft.compat import make_torchvision_importable  # noqa: E402

make_torchvision_importable()


sys.path.insert(0, str(ROOT / "tests" / "references"))

import agreement  # noqa: E402

from evaluation.scoring import sample_score  # noqa: E402
from training.rewards import accuracy_reward, format_reward  # noqa: E402

OPTIONS = ["A. red", "B. blue", "C. green", "D. yellow"]


# ---- the references, from their definitions ---------------------------------------------------------------

def ref_extract(text: str) -> str:
    match = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
    return match.group(1).strip() if match else ""


def ref_number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def ref_wer(reference: str, hypothesis: str) -> float:
    r, h = reference.split(), hypothesis.split()
    d = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
    d[:, 0], d[0, :] = range(len(r) + 1), range(len(h) + 1)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i, j] = d[i - 1, j - 1] if r[i - 1] == h[j - 1] else 1 + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
    return d[len(r), len(h)] / max(1, len(r))


def ref_accuracy(completion: str, solution: str, problem_type: str) -> float:
    from rouge_score import rouge_scorer

    out, gt = ref_extract(completion), ref_extract(solution)
    if problem_type == "multiple choice":
        return float(out.strip() == gt.strip())
    if problem_type == "numerical":
        if ("." in gt or "," in gt) != ("." in out or "," in out):
            return 0.0
        g, p = ref_number(gt), ref_number(out)
        return 0.0 if g is None or p is None else float(round(g, 2) == round(p, 2))
    if problem_type == "OCR":
        return max(0.0, min(1.0, 1 - ref_wer(gt, out)))
    if problem_type == "free-form":
        s = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(gt, out)
        return max(0.0, min(1.0, (s["rouge1"].fmeasure + s["rouge2"].fmeasure + s["rougeL"].fmeasure) / 3))
    g, p = ref_number(gt), ref_number(out)
    if g is None or p is None:
        return 0.0
    return 1 - min(1.0, max(0.0, (abs(p - g) + 1e-9) / (abs(g) + 1e-9)))


def ref_format(completion: str) -> float:
    return float(bool(re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", completion, re.DOTALL)))


def ref_mra_lmms_eval(p: float, g: float) -> float:
    """lmms-eval's VSI-Bench MRA, its own vendored code (tests/references)."""
    return float(agreement.lmms_eval.mean_relative_accuracy(p, g, start=0.5, end=0.95, interval=0.05))


def ref_mra_videorft(p: float, g: float) -> float:
    """VideoRFT eval_bench.py's MRA, its own vendored code (tests/references)."""
    return float(agreement.eval_bench.mean_relative_accuracy(p, g))


# ---- generated completions --------------------------------------------------------------------------------

WORDS = ["red", "blue", "green", "circle", "square", "moves", "left", "right", "exit", "north", "south", "the",
         "a", "ball", "room", "table"]


def _wrap(answer: str, rng: random.Random) -> tuple[str, str]:
    """A completion around ``answer`` and the case it belongs to."""
    kind = rng.choices(["well", "space_around", "unclosed", "no_tag", "two_answers"], [80, 5, 5, 5, 5])[0]
    think = "<think>I watched the video. " + " ".join(rng.choices(WORDS, k=6)) + ".</think>"
    if kind == "well":
        return f"{think}<answer>{answer}</answer>", "well"
    if kind == "space_around":
        return f"\n{think}\n<answer>{answer}</answer>\n", "space_around"
    if kind == "unclosed":
        return f"{think}<answer>{answer}", "unclosed"
    if kind == "no_tag":
        return f"{think}{answer}", "no_tag"
    return f"{think}<answer>{answer}</answer><answer>{answer}</answer>", "two_answers"


def generate(per_type: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(per_type):  # multiple choice
        truth = rng.choice("ABCD")
        answer, case = rng.choice([(truth, "right"), (rng.choice("ABCD"), "any"), (truth.lower(), "lower"),
                                   (f"{truth}, {rng.choice('ABCD')}", "hedge"), ("A B C D", "hedge"),
                                   (f"{truth} or {rng.choice('ABCD')}", "hedge")])
        rows.append(("multiple choice", truth, answer, case))
    for _ in range(per_type):  # numerical
        truth = str(rng.randint(0, 40))
        answer, case = rng.choice([(truth, "right"), (str(int(truth) + rng.randint(1, 3)), "wrong"),
                                   (truth + ".0", "decimal_mark"), (f"{int(truth) * 100:,}", "thousands"),
                                   ("three", "number_word")])
        if case == "thousands":
            truth = str(int(truth) * 100)
            case = "thousands" if "," in answer else "right"
        rows.append(("numerical", truth, answer, case))
    for _ in range(per_type):  # OCR
        truth = " ".join(rng.choices(["Exit", "12", "North", "STOP", "Main", "St"], k=3))
        answer, case = rng.choice([(truth, "right"), (truth.replace(" ", "\n"), "layout"),
                                   (truth.replace(" ", "  ", 1), "layout"), (truth.split()[0], "partial")])
        rows.append(("OCR", truth, answer, case))
    for _ in range(per_type):  # free-form
        truth = " ".join(rng.choices(WORDS, k=6))
        answer = " ".join(rng.choices(WORDS, k=rng.randint(2, 8)))
        rows.append(("free-form", truth, answer, "any"))
    for _ in range(per_type):  # regression
        truth = rng.choice([0, 0.5, 1, 2, 3, 4, 5, 10, 12.5])
        answer, case = rng.choice([(str(truth), "right"), (str(round(truth * rng.uniform(0.5, 1.5), 2)), "near"),
                                   ("about 3", "prose")])
        rows.append(("regression", str(truth), answer, "truth_zero" if truth == 0 else case))
    out = []
    for problem_type, truth, answer, case in rows:
        completion, wrap = _wrap(answer, rng)
        out.append({"problem_type": problem_type, "solution": f"<answer>{truth}</answer>", "completion": completion,
                    "case": case, "wrap": wrap})
    return out


# Documented deviations (README "Where we differ from the reference code, and why"): what a disagreement may be.
def explain(row: dict, ours: float, ref: float) -> str | None:
    t, case, wrap = row["problem_type"], row["case"], row["wrap"]
    if wrap == "two_answers":
        return "two answer blocks score 0"
    if t == "multiple choice" and case == "lower":
        return "multiple choice: case-insensitive letter"
    if t == "numerical" and case in ("decimal_mark", "thousands"):
        return "numerical: value equality, no decimal-presence rule"
    if t == "OCR" and case == "layout":
        return "OCR: WER over white-space-separated words"  # the reference's split() agrees; jiwer alone did not
    if t == "regression" and case == "truth_zero":
        return "regression: ground truth 0 scores an exact 0 as 1"
    if t == "regression" and abs(ours - ref) < 1e-6:
        return None
    return None


def reward_agreement(rows: list[dict]) -> dict:
    per_case: Counter = Counter()
    unexplained = []
    agree = 0
    fmt_agree = fmt_explained = 0
    for row in rows:
        ours = accuracy_reward([row["completion"]], solution=[row["solution"]], problem_type=[row["problem_type"]],
                               options=[OPTIONS if row["problem_type"] == "multiple choice" else None])[0]
        ref = ref_accuracy(row["completion"], row["solution"], row["problem_type"])
        if abs(ours - ref) < 1e-6:
            agree += 1
        else:
            why = explain(row, ours, ref)
            per_case[why or "UNEXPLAINED"] += 1
            if why is None:
                unexplained.append({**row, "ours": ours, "reference": ref})
        f_ours, f_ref = format_reward([row["completion"]])[0], ref_format(row["completion"])
        if f_ours == f_ref:
            fmt_agree += 1
        elif row["wrap"] == "space_around":
            fmt_explained += 1
        else:
            unexplained.append({**row, "format_ours": f_ours, "format_reference": f_ref})
    return {"completions": len(rows), "accuracy_agree": agree, "accuracy_disagree_by_reason": dict(per_case),
            "format_agree": fmt_agree, "format_disagree_white_space_around": fmt_explained,
            "unexplained": unexplained[:20], "unexplained_count": len(unexplained)}


def mra_agreement(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truths = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 4.3, 5.0, 2.5, 3.3], n)
    preds = [round(float(g * rng.choice([0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5]) + rng.choice([0, 0, 0.43, -1])), 2)
             for g in truths]
    result = {"rows": n}
    for protocol, reference in (("official", ref_mra_lmms_eval), ("videorft", ref_mra_videorft)):
        ours = [sample_score("regression", f"<answer>{p}</answer>", f"{g}", None, protocol, "vsi_bench")
                for p, g in zip(preds, truths, strict=True)]
        ref = [reference(float(p), float(g)) for p, g in zip(preds, truths, strict=True)]
        diff = [abs(a - b) for a, b in zip(ours, ref, strict=True)]
        result[protocol] = {"samples_equal": int(sum(d < 1e-6 for d in diff)), "max_abs_diff": float(max(diff)),
                            "mean_ours": float(np.mean(ours)), "mean_reference": float(np.mean(ref)),
                            "mean_diff": float(abs(np.mean(ours) - np.mean(ref)))}
    return result


def judge_bound(row: dict) -> bool:
    """Would lmms-eval ask its GPT judge here? TempCompass: a reply its rules do not match; MMVU: an open answer
    its rules reject. We score the judge-unavailable outcome (TempCompass 0, MMVU the rules' decision)."""
    from videorft.answers import extract_prediction

    text = extract_prediction(row["reply"])
    if row["benchmark"] == "tempcompass" and row["protocol"] == "official":
        doc = {"answer": row["options"][agreement.LETTERS.index(row["answer"])], "question": "q", "video_id": "v",
               "dim": "action"}
        return not agreement.lmms_eval.tempcompass_process_results_multi_choice(doc, [text])["avg_accuracy"][
            "match_success"]
    return (row["benchmark"] == "mmvu" and row["protocol"] == "official" and row["problem_type"] != "multiple choice"
            and row["reference"] == 0.0)


def protocol_agreement(per_case: int, seed: int) -> dict:
    """Both reference protocols against the references' own code (tests/references), per benchmark."""
    results = list(agreement.compare(agreement.generate(per_case, seed)))
    table = agreement.table(results)
    for t in table:
        t["judge_bound"] = sum(judge_bound(r) for r in results
                               if r["benchmark"] == t["benchmark"] and r["protocol"] == t["protocol"])
    unexplained = [r for r in results if not r["agree"] and not r["deviation"]]
    return {"rows": len(results), "table": table, "unexplained_count": len(unexplained),
            "unexplained": unexplained[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-type", type=int, default=480)
    parser.add_argument("--vsi-rows", type=int, default=600)
    parser.add_argument("--per-case", type=int, default=40, help="replies per benchmark, problem type and case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reference_agreement.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    rewards = reward_agreement(generate(args.per_type, args.seed))
    mra = mra_agreement(args.vsi_rows, args.seed)
    protocols = protocol_agreement(args.per_case, args.seed)
    report = {"command": " ".join(["bench/reference_agreement.py", *sys.argv[1:]]), "rewards": rewards, "mra": mra,
              "protocols": protocols, "seconds": time.perf_counter() - started}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("rewards", "protocols")} | {
        "rewards": {k: v for k, v in rewards.items() if k != "unexplained"},
        "protocols": {k: v for k, v in protocols.items() if k != "unexplained"}}, indent=1))
    return 1 if rewards["unexplained_count"] or protocols["unexplained_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
