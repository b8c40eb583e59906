"""The dataset report of the curated CoT set: the retention funnel, counts by type and category, the CoT
token-length distribution (the paper's Fig. 4), the most frequent words and a few sample CoTs.

Token lengths use open_clip's bundled byte-pair tokenizer, which works offline; absolute numbers differ a
little from Qwen's tokenizer but the shape of the distribution is what the report is for.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from typing import Any

import pandas as pd

from videorft.schema import PROBLEM_TYPES

_TAG_RE = re.compile(r"</?(think|answer)>")
_WORD_RE = re.compile(r"[a-z][a-z']+")


@cache
def _tokenizer() -> Any:
    from videorft.compat import make_torchvision_importable

    make_torchvision_importable()
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def token_lengths(texts: list[str]) -> list[int]:
    tok = _tokenizer()
    return [len(tok.encode(t)) for t in texts]


def top_words(texts: list[str], n: int = 30) -> dict[str, int]:
    """The ``n`` commonest words of the CoTs, without stop words and without the format's own tags (every CoT
    has ``<think>``: counting it says nothing about the reasoning)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    counts: Counter[str] = Counter()
    for text in texts:
        prose = _TAG_RE.sub(" ", text.lower())
        counts.update(w for w in _WORD_RE.findall(prose) if w not in ENGLISH_STOP_WORDS and len(w) > 2)
    return dict(counts.most_common(n))


def funnel_counts(pool: pd.DataFrame, representations: pd.DataFrame, initial: pd.DataFrame,
                  refined: pd.DataFrame | None, kept: int) -> dict[str, int]:
    """Samples surviving each stage: pool -> described -> reasoned [-> refined] -> kept."""
    described_media = set(representations.loc[representations["status"] == "ok", "media_sha256"])
    stages = {
        "pool": len(pool),
        "described": int(pool["media_sha256"].isin(described_media).sum()),
        "reasoned": int((initial["status"] == "ok").sum()),
    }
    if refined is not None:
        stages["refined"] = int((refined["status"] == "ok").sum())
    return {**stages, "kept": kept}


def accuracy(frame: pd.DataFrame) -> float | None:
    scored = frame["correct"].dropna()
    return float(scored.mean()) if len(scored) else None


def sample_markdown(kept: pd.DataFrame, n: int) -> str:
    if kept.empty or n == 0:
        return "_no samples_"
    picks = []
    for kind in PROBLEM_TYPES:  # one per problem type first, so the samples show the variety
        match = kept[kept["problem_type"] == kind]
        if len(match):
            picks.append(match.iloc[0])
    shown = pd.DataFrame(picks[:n]) if picks else kept.head(n)
    blocks = []
    for _, row in shown.iterrows():
        blocks.append(f"**{row['problem_type']} / {row['category']}** `{row['sample_id']}`\n\n"
                      f"> {row['problem']}\n\n```\n{row['process'][:1500]}\n{row['solution']}\n```")
    return "\n\n".join(blocks)
