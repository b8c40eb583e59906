"""``python -m evaluation.rescore FILE.jsonl``: re-score a prediction log offline, both protocols.

A log line is one JSON object with at least ``benchmark, category, problem_type, prediction, answer, video``
(``options`` for multiple choice when the answer is given as option text; ``failed: true`` for a sample
whose generation failed). Prints JSON: per benchmark, each protocol's overall score, per-category scores,
bootstrap error and interval, and the sample and failure counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from evaluation.scoring import score_log
from videorft.storage import as_path

REQUIRED = ("benchmark", "category", "problem_type", "prediction", "answer", "video")


class LogError(ValueError):
    pass


def read_log(uri: str) -> list[dict[str, Any]]:
    """The samples of a JSONL log (local or s3://); a malformed line is an error naming its line number."""
    rows = []
    for n, line in enumerate(as_path(uri).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LogError(f"{uri}:{n}: not JSON ({exc.msg})") from exc
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise LogError(f"{uri}:{n}: missing {', '.join(missing)} (a logged sample needs {', '.join(REQUIRED)})")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.rescore", description=__doc__.split("\n")[0])
    parser.add_argument("log", help="prediction log (JSONL, local path or s3://)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap iterations (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    try:
        rows = read_log(args.log)
    except (LogError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = score_log(rows, max(args.bootstrap, 0), args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
