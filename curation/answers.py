"""Is a generated answer right? The rules the CoT filter applies to the structured problem types.

Multiple choice compares option letters after normalising case and punctuation ("<answer>b.</answer>" is B;
an answer that repeats an option's text maps to that option's letter); numerical compares values rounded
to 2 decimals; regression accepts a relative error within a tolerance; OCR and free-form compare
normalised text exactly (the filter scores them with CLIP instead, see ``curation.clip_filter``).
"""

from __future__ import annotations

import string

from curation.schema import option_letter, parse_number

_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    return " ".join(text.translate(_PUNCT).lower().split())


def _bare_letter(text: str) -> str | None:
    """``"b."``, ``"(B)"``, ``"B: blue"`` -> ``"B"`` when no option list is at hand."""
    stripped = text.strip().lstrip("(").strip()
    if stripped[:1].isalpha() and (len(stripped) == 1 or not stripped[1].isalnum()):
        return stripped[0].upper()
    return None


def answers_match(problem_type: str, prediction: str, truth: str, options: list[str] | None = None,
                  regression_tolerance: float = 0.05) -> bool:
    if problem_type == "multiple choice":
        got = option_letter(prediction, options or []) or _bare_letter(prediction)
        want = option_letter(truth, options or []) or _bare_letter(truth)
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
