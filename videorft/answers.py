"""Answer parsing: the one home of the rules that read an answer out of a model's text.

Used by the CoT filter (``curation.cot``), the GRPO rewards (``training.rewards``), the benchmark scoring
(``evaluation.scoring``) and the expert simulator, so a rule changed here changes everywhere at once.

Two extractors, because the callers disagree on purpose about a missing tag:

* :func:`extract_answer` reads a ground-truth ``solution`` or a curated row: the first ``<answer>..</answer>``,
  else the whole string (a bare ``"B"`` is a solution too);
* :func:`extract_prediction` reads a raw model output at evaluation time: the last ``<answer>`` block, an
  unclosed one (generation stopped before ``</answer>``), else the text after ``</think>``, else the whole
  output.

Then the value rules: option letters tolerant of case and punctuation (``"b."``, ``"(B)"``, the option's
text), numbers as floats (:func:`parse_number`, the whole answer must be a number) or exact decimals
(:func:`parse_decimal`, the first number in the text), and :func:`answers_match`, the filter's right/wrong
decision for the structured problem types.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL | re.IGNORECASE)
# r_format's regex (paper Eq. 3): one <think> block then one <answer> block, nothing else but white space
FORMAT_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)
_ANSWER_BLOCK_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_OPEN_ANSWER_RE = re.compile(r"<answer>(.*)$", re.DOTALL | re.IGNORECASE)
_THINK_END_RE = re.compile(r"</think>", re.IGNORECASE)
_WHOLE_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIRST_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# a letter, optionally in parentheses, optionally followed by a label's punctuation, then the rest
_LABELLED_RE = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:)]?\s*(.*)$", re.DOTALL)
_STANDALONE_CAPITAL_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9])")  # capitals only: prose has "a"
_PUNCT = str.maketrans("", "", string.punctuation)


# ---- extraction -------------------------------------------------------------------------------------------

def extract_answer(solution: str) -> str:
    """The text inside the first ``<answer>..</answer>``, or the whole string when there is no tag."""
    match = ANSWER_RE.search(solution)
    return (match.group(1) if match else solution).strip()


def extract_prediction(output: str | None) -> str:
    """The answer text of a raw model output: the last ``<answer>`` block, tolerant of a missing tag."""
    if not output:
        return ""
    found = _ANSWER_BLOCK_RE.findall(output)
    if found:
        return found[-1].strip()
    unclosed = _OPEN_ANSWER_RE.search(output)  # generation stopped before </answer>
    if unclosed:
        return unclosed.group(1).strip()
    parts = _THINK_END_RE.split(output)
    return parts[-1].strip() if len(parts) > 1 else output.strip()


# ---- values -----------------------------------------------------------------------------------------------

def normalize_text(text: str) -> str:
    """Lower case, no punctuation, single spaces: how free text is compared for equality."""
    return " ".join(text.translate(_PUNCT).lower().split())


def parse_number(text: str) -> float | None:
    """The answer as a number when the whole answer is one (``"1,000"``, ``"3."``); else None."""
    cleaned = text.strip().replace(",", "").rstrip(".")
    if not _WHOLE_NUMBER_RE.match(cleaned):
        return None
    return float(cleaned)


def parse_decimal(answer: str) -> Decimal | None:
    """The first number in ``answer`` as an exact decimal ("about 3.5 m" -> 3.5); None if there is none."""
    match = _FIRST_NUMBER_RE.search(answer)
    if not match:
        return None
    try:
        return Decimal(match.group(0).replace(",", ""))
    except InvalidOperation:
        return None


def option_letters(options: Sequence[str]) -> list[str]:
    """``["A. red", "B. blue"]`` -> ``["A", "B"]``."""
    return [o.split(".", 1)[0].strip().upper() for o in options]


def _option_texts(options: Sequence[str]) -> dict[str, str]:
    """Letter -> normalised option text."""
    return {o.split(".", 1)[0].strip().upper(): normalize_text(o.split(".", 1)[1]) for o in options if "." in o}


def option_letter(answer: str, options: Sequence[str]) -> str | None:
    """The one option letter ``answer`` commits to (``B``, ``b.``, ``(B)``, ``B) blue``, ``B. blue`` when B is
    blue, or ``blue`` alone), else None.

    An answer that names two letters (``A, B``, ``A/B``, ``A or B``, ``A B C D``, ``a b``) commits to none: a
    policy that lists every letter must not be paid for one of them. Text after a letter must be that
    option's own text. Without ``options``, only a bare letter (with its punctuation) commits.
    """
    text = answer.strip()
    if not text:
        return None
    letters = option_letters(options) if options else None
    texts = _option_texts(options) if options else {}
    match = _LABELLED_RE.match(text)
    if match:
        letter, rest = match.group(1).upper(), match.group(2).strip()
        if (letters is None or letter in letters) and (
                not rest or (letter in texts and normalize_text(rest) == texts[letter])):
            return letter
    wanted = normalize_text(text)
    return next((letter for letter, option in texts.items() if option == wanted), None)


def bare_letter(text: str) -> str | None:
    """``"b."``, ``"(B)"``, ``"B)"`` -> ``"B"``: a single letter with only its punctuation, no option list."""
    return option_letter(text, ())


def choice_letter(answer: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter an extracted prediction names, for scoring: what :func:`option_letter` accepts, else
    prose that names exactly one option letter standing alone ("The answer is C", "Answer: (B)"). A hedge
    that names two ("A or B", "either A or C") names none."""
    letter = option_letter(answer, options or ())
    if letter:
        return letter
    valid = set(option_letters(options)) if options else set("ABCDEFGH")
    named = {m.group(1) for m in _STANDALONE_CAPITAL_RE.finditer(answer) if m.group(1) in valid}
    return named.pop() if len(named) == 1 else None


# ---- the filter's decision --------------------------------------------------------------------------------

def answers_match(problem_type: str, prediction: str, truth: str, options: Sequence[str] | None = None,
                  regression_tolerance: float = 0.05) -> bool:
    """Is ``prediction`` right? Multiple choice: the same option letter; numerical: equal after rounding to 2
    decimals; regression: relative error within ``regression_tolerance`` (absolute error when the truth is 0);
    OCR and free-form: equal normalised text (the filter scores those with CLIP instead)."""
    if problem_type == "multiple choice":
        got, want = option_letter(prediction, options or ()), option_letter(truth, options or ())
        return got is not None and got == want
    if problem_type in ("numerical", "regression"):
        p, g = parse_number(prediction.strip()), parse_number(truth.strip())
        if p is None or g is None:
            return False
        if problem_type == "numerical":
            return round(p, 2) == round(g, 2)
        if g == 0:
            return abs(p) <= regression_tolerance
        return abs(p - g) / abs(g) <= regression_tolerance
    return normalize_text(prediction) == normalize_text(truth)
