"""The VideoRFT / Video-R1 QA vocabulary: problem types, categories, data types and option labels.

How an answer is read out of text lives in :mod:`videorft.answers`.
"""

from __future__ import annotations

import re

PROBLEM_TYPES: tuple[str, ...] = ("multiple choice", "numerical", "OCR", "free-form", "regression")
CATEGORIES: tuple[str, ...] = ("general", "mathematics", "science", "document", "spatiotemporal")
DATA_TYPES: tuple[str, ...] = ("video", "image")

_PROBLEM_TYPE_ALIASES = {
    "multiple choice": "multiple choice", "multiple-choice": "multiple choice", "multiple_choice": "multiple choice",
    "mc": "multiple choice", "numerical": "numerical", "numeric": "numerical", "num": "numerical",
    "ocr": "OCR", "free-form": "free-form", "free form": "free-form", "freeform": "free-form",
    "free": "free-form", "open-ended": "free-form", "regression": "regression", "reg": "regression",
}
# Video-R1 style rows carry no category: infer one from the data source's name (recorded as inferred).
_CATEGORY_HINTS: tuple[tuple[str, str], ...] = (
    ("math", "mathematics"), ("geo", "mathematics"), ("chart", "document"), ("doc", "document"),
    ("ocr", "document"), ("text", "document"), ("table", "document"), ("sci", "science"),
    ("physic", "science"), ("chem", "science"), ("med", "science"), ("clevrer", "spatiotemporal"),
    ("spatial", "spatiotemporal"), ("vsi", "spatiotemporal"), ("star", "spatiotemporal"),
    ("perception", "spatiotemporal"),
)
OPTION_LABEL_RE = re.compile(r"^\s*\(?([A-Za-z])\s*[\.\):]\s*(.*)$", re.DOTALL)


def normalize_problem_type(value: str) -> str | None:
    return _PROBLEM_TYPE_ALIASES.get(value.strip().lower())


def infer_category(data_source: str) -> str:
    name = data_source.lower()
    for hint, category in _CATEGORY_HINTS:
        if hint in name:
            return category
    return "general"


def normalize_options(options: list[str]) -> list[str]:
    """Options as ``["A. text", "B. text", ...]`` whether or not they came labelled."""
    out = []
    for i, option in enumerate(options):
        match = OPTION_LABEL_RE.match(option)
        text = match.group(2).strip() if match else option.strip()
        out.append(f"{chr(ord('A') + i)}. {text}")
    return out
