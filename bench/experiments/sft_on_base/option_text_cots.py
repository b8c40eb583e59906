"""Rewrite a CoT SFT set so a multiple-choice answer is the option's text, not its letter, in the CoT and in
``<answer>`` ("option B (red)" -> "red", "the answer is B." -> "the answer is red.", ``<answer>red</answer>``):
the form the shipped base answers in (``pretraining.data``), so SFT does not also have to teach the option-to-
letter lookup. Other problem types are copied unchanged.

    .venv/bin/python bench/experiments/sft_on_base/option_text_cots.py SRC.jsonl OUT_DIR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def rewrite(row: dict) -> dict:
    if row["problem_type"] != "multiple choice":
        return row
    texts = {o.split(". ", 1)[0]: o.split(". ", 1)[1] for o in row["options"]}
    letter = row["solution"].removeprefix("<answer>").removesuffix("</answer>")
    process = re.sub(r"option ([A-H]) \(([^)]*)\)", lambda m: m.group(2), row["process"])
    process = re.sub(r"the answer is ([A-H])\.", lambda m: f"the answer is {texts.get(m.group(1), m.group(1))}.",
                     process)
    return {**row, "process": process, "solution": f"<answer>{texts[letter]}</answer>"}


def main(src: str, out: str) -> None:
    rows = [rewrite(json.loads(line)) for line in Path(src).read_text().splitlines() if line.strip()]
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "cot_sft_set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} rows -> {out}/cot_sft_set.jsonl")


if __name__ == "__main__":
    main(*sys.argv[1:3])
