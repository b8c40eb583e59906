"""The reference protocols, one sample at a time: what each reference's own code decides for one logged reply.

* ``videorft`` — VideoRFT's ``src/eval_bench.py`` (``reward_fn``, commit bba6099): the first closed
  ``<answer>..</answer>`` (case-sensitive), else the whole reply; multiple choice by exact string, numerical by
  the decimal-presence rule then equality at 2 decimals, regression by MRA in float32; any other problem type
  scores 0, as the script scores it.
* ``official`` — lmms-eval v0.7.2 (commit cb45ac4), each benchmark by its own task's ``process_results`` and
  what it calls, fed the answer text of :func:`videorft.answers.extract_prediction` (the last closed
  ``<answer>`` block, else an unclosed one, else the text after ``</think>``, else the whole reply): lmms-eval
  strips the reasoning before its tasks see a reply, and a reasoning model's reply is read the same way.

Each rule below is a re-expression of the reference's code, tested against that code vendored verbatim under
``tests/references/`` on generated malformed replies (``tests/test_protocols.py``). Where the two cannot agree
(lmms-eval calling a GPT judge, dividing by a ground truth of 0) the README's deviations table says what stands
in, and ``bench/reference_agreement.py`` counts those rows.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from videorft.answers import option_letters

OFFICIAL_MRA_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # lmms-eval's (0.95 - 0.5) / 0.05 + 2 points, floored
OfficialRule = Callable[[Mapping[str, Any], str], float]


# ---- mean relative accuracy -------------------------------------------------------------------------------

def mra_official(prediction: float | None, truth: float) -> float:
    """VSI-Bench's MRA as lmms-eval computes it: the mean over theta in ``numpy.linspace(0.5, 0.95, 10)`` of
    ``|p - g| / g <= 1 - theta``, in float64.

    Ground truth 0 (lmms-eval raises ZeroDivisionError and the run stops): 1 if the prediction is 0, else 0. A
    negative ground truth is divided by its magnitude (lmms-eval's ``/ g`` would credit any prediction);
    VSI-Bench has neither. Both are rows of the README's deviations table.
    """
    if prediction is None:
        return 0.0
    if truth == 0:
        return float(prediction == 0)
    error = abs(prediction - truth) / abs(truth)
    return float(np.mean(error <= 1 - OFFICIAL_MRA_THRESHOLDS))


def mra_videorft(prediction: float | None, truth: float) -> float:
    """MRA as VideoRFT's evaluation script computes it: float32 tensors, ``|p - g| / (|g| + 1e-8)``, thresholds
    ``torch.arange(0.5, 0.95 + 0.025, 0.05)`` in float32, strict ``rel < 1 - theta``, the mean in float32.

    Torch itself does the arithmetic, so the float32 rounding at each threshold is the script's: 3 vs 4 scores
    0.5 here and 0.6 officially (``<`` against ``<=`` at 0.25), 4.73 vs 4.3 scores 0.9 here and 0.8 officially
    (float32 and float64 round the error to opposite sides of 0.1).
    """
    import torch

    if prediction is None:
        return 0.0
    p = torch.tensor(prediction, dtype=torch.float32)
    g = torch.tensor(truth, dtype=torch.float32)
    error = torch.abs(p - g) / (torch.abs(g) + 1e-8)
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)
    return float((error < (1 - thresholds)).float().mean().item())


# ---- videorft: the paper's eval_bench.py ------------------------------------------------------------------

_VIDEORFT_ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def videorft_answer(text: str) -> str:
    """The script's ``extract_answer``: the first closed, lower-case ``<answer>`` block, stripped; else ""."""
    match = _VIDEORFT_ANSWER_RE.search(text)
    return match.group(1).strip() if match else ""


def _float_or_none(text: str) -> float | None:
    """The script's ``normalize_number``: ``float`` of the text without commas ("3 m" is no number)."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def videorft_score(problem_type: str, reply: str, answer: str) -> float:
    """``reward_fn(sample, reply, problem_type)`` of VideoRFT's ``eval_bench.py``.

    ``answer`` is the logged ground truth (a letter or a value); the script reads it out of the row's
    ``solution``, ``<answer>answer</answer>``, which gives the same text.
    """
    output = videorft_answer(reply) or reply
    truth = videorft_answer(answer if "</answer>" in answer else f"<answer>{answer}</answer>")
    if problem_type == "multiple choice":
        return float(output.strip() == truth.strip())
    if problem_type == "numerical":
        if ("." in truth or "," in truth) != ("." in output or "," in output):
            return 0.0
        g, p = _float_or_none(truth), _float_or_none(output)
        return float(g is not None and p is not None and round(g, 2) == round(p, 2))
    if problem_type == "regression":
        g, p = _float_or_none(truth), _float_or_none(output)
        return 0.0 if g is None or p is None else mra_videorft(p, g)
    return 0.0


# ---- official: lmms-eval v0.7.2, per task -----------------------------------------------------------------

def _option(sample: Mapping[str, Any], letter: str) -> str:
    """The option ``letter`` labels, as ``"B. text"`` (TempCompass's answer field), else ""."""
    return next((str(o) for o in sample.get("options") or [] if str(o).split(".", 1)[0].strip() == letter), "")


def _option_texts(sample: Mapping[str, Any]) -> dict[str, str]:
    return {str(o).split(".", 1)[0].strip(): str(o).split(".", 1)[1].strip() for o in sample.get("options") or []
            if "." in str(o)}


_MCQ_PHRASES = ("the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
                "best answer is", "the correct option is", "correct option is", "the best option is",
                "best option is", "the choice is", "choice is", "the correct choice is", "correct choice is",
                "i choose", "i select", "i pick", "my answer is", "my choice is", "옵션", "정답은", "답은", "답:",
                "答案是", "答案为", "选", "答えは")
_MCQ_MARKS = (("({})", "parentheses", 6), ("{}.", "period", 5), ("{}:", "colon", 4), ("{})", "right_paren", 3),
              ("{} ", "space", 2))


def mcq_letter(response: str, choices: Sequence[str] = tuple("ABCDEFGH")) -> str:
    """lmms-eval's ``extract_mcq_answer`` (``tasks/_task_utils/mcq_extract.py``): every candidate letter in
    every format, ranked start (10) > end (9) > answer phrase (7) > ``(A)`` (6) > ``A.`` (5) > ``A:`` (4) >
    ``A)`` (3) > ``A `` (2), the last position winning within a rank; any occurrence only when nothing else
    matched; "" for none."""
    if not response or not response.strip():
        return ""
    choices = tuple(choices) or tuple("ABCDEFGH")  # the reference's ``choices or _DEFAULT_CHOICES``
    text = response.strip()
    for char in ",.!?;:'\"":
        text = text.strip(char)
    text = f" {text} "
    found: list[tuple[int, int, str]] = []  # (priority, position, letter)
    for mark, _, priority in _MCQ_MARKS:
        found += [(priority, text.rfind(mark.format(c)), c) for c in choices if mark.format(c) in text]
    lower = text.lower()
    for phrase in _MCQ_PHRASES:
        at = lower.find(phrase)
        if at != -1:
            found += [(7, text.find(c, at + len(phrase)), c) for c in choices if text.find(c, at + len(phrase)) != -1]
    stripped = text.strip()
    found += [(10, 0, c) for c in choices
              if stripped.startswith(c) and (len(stripped) == 1 or not stripped[1].isalpha())]
    found += [(9, len(text) - 1, c) for c in choices
              if stripped.endswith(c) and (len(stripped) == 1 or not stripped[-2].isalpha())]
    if not found:
        found = [(0, text.rfind(c), c) for c in choices if c in text]
    # Python's sort is stable and the reference sorts (priority, position) descending: equal keys keep order
    return sorted(found, key=lambda f: (f[0], f[1]), reverse=True)[0][2] if found else ""


def vsi_bench_official(sample: Mapping[str, Any], text: str) -> float:
    """``vsibench_process_results``: the reply's first word (``fuzzy_matching``); multiple choice by exact
    match ignoring case, numbers by ``float`` of that word and MRA (``mra_official``); no number scores 0."""
    word = text.split(" ")[0].rstrip(".").strip()
    if sample["problem_type"] == "multiple choice":
        return float(word.lower() == str(sample["answer"]).lower())
    pred, truth = _to_float(word), _to_float(str(sample["answer"]))
    return 0.0 if pred is None or truth is None else mra_official(pred, truth)


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def videomme_official(sample: Mapping[str, Any], text: str) -> float:
    """``videomme_process_results``: ``extract_mcq_answer`` over A-D, equal to the answer ignoring case."""
    return float(mcq_letter(text, ("A", "B", "C", "D")).lower() == str(sample["answer"]).lower())


_MVBENCH_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: a lookahead for "<=digit", as in the reference
_MVBENCH_COMMA = re.compile(r"(\d)(\,)(\d)")
_MVBENCH_PUNCT = (";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                  "?", "!")
_MVBENCH_LABELLED = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)


def _mvbench_process(answer: str) -> str:
    """``mcq_acc``'s ``process``: ``"B. text"`` is B; else VQA punctuation rules, then the first standalone
    A-E (any case), else the processed text."""
    labelled = _MVBENCH_LABELLED.match(answer.strip())
    if labelled:
        return labelled.group(1).upper()
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    out = text
    for p in _MVBENCH_PUNCT:
        spaced = p + " " in text or " " + p in text or _MVBENCH_COMMA.search(text) is not None
        out = out.replace(p, "" if spaced else " ")
    out = _MVBENCH_PERIOD.sub("", out, count=re.UNICODE)  # sic: the reference passes re.UNICODE as the count
    out = out.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = re.search(r"\b([A-E])\b", out, re.IGNORECASE)
    return letter.group(1).upper() if letter else out


def mvbench_official(sample: Mapping[str, Any], text: str) -> float:
    """``mvbench_process_results``: ``mcq_acc`` of the answer letter and the reply. An empty reply is left
    out of its task's denominator by the aggregate (``evaluation.scoring.aggregate``)."""
    return float(_mvbench_process(text) == _mvbench_process(str(sample["answer"])))


def _superscripts(text: str) -> str:
    for sup, caret in zip("²³¹⁰⁴⁵⁶⁷⁸⁹", ("^2", "^3", "^1", "^0", "^4", "^5", "^6", "^7", "^8", "^9"), strict=True):
        text = text.replace(sup, caret)
    return text


def _mmvu_choice(answer: str, choices: Mapping[str, str], pred: str) -> bool:
    """``evaluate_with_rule_based`` for a multiple-choice question: the first standalone A-E, the answer's letter
    standing alone anywhere, the option's text inside the reply, or its letter with one of its words."""
    first = re.search(r"\b([A-E])\b", pred, re.IGNORECASE)
    if first and first.group(1).upper() == answer.upper():
        return True
    if answer.upper() in pred.upper() and re.search(rf"\b{re.escape(answer)}\b", pred, re.IGNORECASE):
        return True
    if answer in choices:
        choice = choices[answer].strip().lower()
        if choice in pred.lower():
            return True
        if answer.upper() in pred.upper():
            words = [w.strip(string.punctuation) for w in choice.split() if len(w.strip(string.punctuation)) > 2]
            if words and any(w in pred.lower() for w in words):
                return True
    return False


def _mmvu_open(answer: str, pred: str) -> bool:
    """``evaluate_with_rule_based`` for an open question: equal, either inside the other, first numbers within
    0.01, every word of a 2-5 word answer present, or the same O() notation."""
    p_norm, a_norm = _superscripts(pred.strip().lower()), _superscripts(answer.strip().lower())
    p, a = " ".join(p_norm.split()), " ".join(a_norm.split())
    if p == a or a in p or p in a:
        return True
    p_nums, a_nums = re.findall(r"\d+\.?\d*", p_norm), re.findall(r"\d+\.?\d*", a_norm)
    if p_nums and a_nums and abs(float(a_nums[0]) - float(p_nums[0])) < 0.01:
        return True
    a_words = [w.strip(string.punctuation) for w in a.split() if w.strip(string.punctuation)]
    p_words = [w.strip(string.punctuation) for w in p.split() if w.strip(string.punctuation)]
    if 2 <= len(a_words) <= 5 and all(w in p_words for w in a_words if len(w) > 2):
        return True
    p_o, a_o = re.search(r"O\s*\([^)]+\)", p, re.IGNORECASE), re.search(r"O\s*\([^)]+\)", a, re.IGNORECASE)
    return bool(p_o and a_o and _superscripts(p_o.group(0).lower()) == _superscripts(a_o.group(0).lower()))


def mmvu_official(sample: Mapping[str, Any], text: str) -> float:
    """``mmvu_process_results``' rule-based decision. An open answer the rules reject goes to lmms-eval's GPT
    judge, which is not called here: the rules' decision is what lmms-eval itself returns when the judge
    fails."""
    answer = str(sample["answer"]).strip()
    if sample["problem_type"] == "multiple choice":
        return float(_mmvu_choice(answer, _option_texts(sample), text.strip()))
    return float(_mmvu_open(answer, text))


def _videommmu_numbers(text: str) -> list[str]:
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return commas + scientific + simple


def _videommmu_normal(text: str) -> list[Any]:
    """``normalize_str``: a number as ``[round(float, 2)]``; a one-letter string padded with a space on either
    side (so "a" inside a word does not match); any other string lower-cased."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


_VIDEOMMMU_KEYS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ", "are ",
                   "in total ", "total ", "identify ", "recognize ", "calculated as ", "counted as ", "measured as ",
                   "observed as ", "concluded as ", "found to be ", "equals ", "determined to be ", "number of ",
                   "value is ", "adds up to ", "have ", "has ")


def _videommmu_key_parts(response: str) -> list[str]:
    """``get_key_subresponses``: per sentence, the shortest tail after a conclusion phrase ("=" counts in the
    last sentence); the whole lower-cased reply when no sentence has one."""
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    parts = []
    for index, sentence in enumerate(sentences):
        keys = _VIDEOMMMU_KEYS + (("=",) if index == len(sentences) - 1 else ())
        shortest = ""
        for key in keys:
            tail = sentence.split(key)[-1].strip() if key in sentence else None
            if tail is not None and (not shortest or len(tail) < len(shortest)):  # an empty tail is replaced
                shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            parts.append(shortest)
    return parts or [response]


def _videommmu_open(answer: str, response: str) -> bool:
    """``parse_open_response`` then ``eval_open``: a normalised answer string inside a parsed string, or a
    parsed number equal to the answer's."""
    if response in ("API Error", ""):
        return False
    parts = _videommmu_key_parts(response)
    parsed = {n for p in [*parts, *(x for part in parts for x in _videommmu_numbers(part))]
              for n in _videommmu_normal(p)}
    golds = _videommmu_normal(answer)
    return any((isinstance(p, str) and any(isinstance(g, str) and g in p for g in golds))
               or (not isinstance(p, str) and p in golds) for p in parsed)


def videommmu_official(sample: Mapping[str, Any], text: str) -> float:
    """``videommmu_process_results`` and ``evaluate_videommmu``: multiple choice by ``extract_mcq_answer`` over
    the options' letters ("No Answer Found." when none) equal to the answer; other questions by the MMMU open
    parser and matcher."""
    answer = str(sample["answer"])
    if sample["problem_type"] == "multiple choice":
        return float((mcq_letter(text, option_letters(sample.get("options") or [])) or "No Answer Found.") == answer)
    return float(_videommmu_open(answer, text))


def tempcompass_official(sample: Mapping[str, Any], text: str) -> float:
    """``tempcompass_process_results_multi_choice``: the whole option (``"B. text"``), a bare A-D, or a reply
    starting ``B.`` or ``B)`` is matched by rule; anything else goes to lmms-eval's ChatGPT judge, which is not
    called here and scores 0 (lmms-eval's own rating when the judge fails)."""
    answer = _option(sample, str(sample["answer"])) or str(sample["answer"])
    if text == answer:
        return 1.0
    if text in ("A", "B", "C", "D"):
        return float(text == answer[0])
    if any(text.startswith(f"{c}.") for c in "ABCD"):
        return float(text.split(".")[0] == answer[0])
    if any(text.startswith(f"{c})") for c in "ABCD"):
        return float(text.split(")")[0] == answer[0])
    return 0.0


def multiple_choice_only(rule: OfficialRule) -> OfficialRule:
    """``rule`` for multiple choice; the ``videorft`` rule for problem types the benchmark's lmms-eval task does
    not have (the VideoMME, MVBench and TempCompass tasks the paper evaluates are multiple choice only)."""
    def score(sample: Mapping[str, Any], text: str) -> float:
        if sample["problem_type"] == "multiple choice":
            return rule(sample, text)
        return videorft_score(str(sample["problem_type"]), text, str(sample["answer"]))
    score.__doc__ = rule.__doc__
    return score
