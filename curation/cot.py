"""The CoT curation stages (paper 2.2): structured representations -> initial CoTs -> refined CoTs -> the
filtered SFT set, plus the RL set. Pure library code: tables in, tables out, an expert client passed in.

Every stage returns one row per input (per distinct media for the describer, per sample after that) with a
``status`` (``ok`` / ``failed``) and a ``reason``: a failure is a row, never an exception and never a silent
drop, and a sample whose upstream stage failed carries that failure forward. Every row keeps its
provenance: prompt hash, expert model and the response-cache keys of every call that made it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from curation.experts import Completion, ExpertClient, ResponseInvalid, gather_bounded
from curation.prompts import (
    PromptSet,
    answer_format,
    cot_generation_messages,
    media_ref,
    refinement_messages,
    representation_messages,
)
from videorft.answers import ANSWER_RE, answers_match
from videorft.media import sample_indices
from videorft.profile import FilterConfig, FrameSpec
from videorft.provenance import stable_hash

Progress = Callable[[int, int], None]
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_FULL_FORMAT_RE = re.compile(r"^\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*$", re.DOTALL)
SFT_COLUMNS = ("problem_id", "problem", "data_type", "problem_type", "options", "process", "solution", "path",
               "data_source", "category", "sample_id", "media_sha256", "prompt_hashes", "expert_models",
               "cache_keys", "clip_similarity")
# What each column of the SFT and RL sets holds (Dagster's column schema shows these)
COLUMN_DESCRIPTIONS = {
    "problem_id": "the question's id in its source",
    "problem": "the question text",
    "data_type": "video or image",
    "problem_type": "multiple choice, numerical, OCR, free-form or regression",
    "options": "the answer options of a multiple-choice question ('A. ...'), else empty",
    "process": "the chain of thought, <think>...</think> (refined CoT; the initial one for the unrefined set)",
    "solution": "the reference answer, <answer>...</answer>",
    "path": "URI of the video or image",
    "data_source": "the dataset the question came from",
    "category": "the paper's category (general, science, spatiotemporal, ...)",
    "sample_id": "stable id of the question across stages",
    "media_sha256": "content hash of the video or image",
    "prompt_hashes": "JSON: prompt name -> hash of the prompt version that produced this row",
    "expert_models": "JSON: expert role -> model that produced this row",
    "cache_keys": "JSON: the expert responses' cache keys (replay without paying again)",
    "clip_similarity": "SigLIP similarity between the CoT and the video's description (the filter's score)",
}


# The stage tables' columns (structured_video_representations, initial_cots, refined_cots)
STAGE_COLUMN_DESCRIPTIONS = {
    "sample_id": "stable id of the question across stages",
    "media_sha256": "content hash of the video or image",
    "media_uri": "URI of the video or image",
    "data_type": "video or image",
    "status": "ok, or failed (see reason)",
    "reason": "why the row failed (request error, invalid response, undecodable media), empty when ok",
    "representation": "the describer's structured representation (JSON: caption, objects, events, text)",
    "frames": "frames the describer was shown",
    "describer_model": "the expert model that described the media",
    "reasoner_model": "the expert model that wrote the blind CoT",
    "refiner_model": "the expert model that refined the CoT against the media",
    "prompt_hash": "hash of the prompt version this stage used",
    "representation_prompt_hash": "hash of the describer prompt behind the representation reasoned over",
    "cache_keys": "JSON: the expert responses' cache keys (replay without paying again)",
    "repairs": "repair turns the response needed to validate",
    "cot": "the expert's reasoning as returned",
    "answer": "the answer the CoT concludes with",
    "correct": "whether that answer matches the reference",
    "process": "the refined CoT, <think>...</think>",
    "solution": "the refined answer, <answer>...</answer>",
    "changed": "whether refinement changed the CoT",
}


def prompt_hashes_by_prompt(column: Iterable[str]) -> dict[str, list[str]]:
    """Which version of each prompt made a set: ``{prompt name: sorted hashes}`` from the rows' ``prompt_hashes``
    JSON (more than one hash for a prompt means the set mixes prompt versions)."""
    found: dict[str, set[str]] = {}
    for value in column:
        for prompt, digest in json.loads(value).items():
            found.setdefault(prompt, set()).add(digest)
    return {prompt: sorted(hashes) for prompt, hashes in sorted(found.items())}


RL_COLUMNS = ("problem_id", "problem", "data_type", "problem_type", "options", "process", "solution", "path",
              "data_source", "category", "sample_id", "media_sha256")


def spec_dict(spec: FrameSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def table_hash(frame: pd.DataFrame) -> str:
    """Content hash of a table: equal rows in equal order give an equal hash (the asset's data version)."""
    return stable_hash(json.loads(frame.to_json(orient="split", index=False, default_handler=str)))


def _options(value: Any) -> list[str]:
    return [str(o) for o in value] if value is not None and len(value) else []


# ---- response parsing ----------------------------------------------------------------------------------

def parse_representation(completion: Completion, schema: dict[str, Any]) -> str:
    """The structured representation as canonical JSON text, or ResponseInvalid naming the schema error."""
    from jsonschema import Draft202012Validator

    text = _FENCE_RE.sub("", completion.content.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ResponseInvalid("the reply contains no JSON object")
    try:
        data = json.loads(text[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ResponseInvalid(f"the JSON does not parse: {exc.msg} at character {exc.pos}") from None
    error = next(iter(sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResponseInvalid(f"schema violation at {where}: {error.message}")
    return json.dumps(data, ensure_ascii=False)


def parse_initial_cot(completion: Completion) -> tuple[str, str]:
    """(cot, answer) from a reasoner reply: the reasoning field if the model has one, else its <think> text."""
    answers = ANSWER_RE.findall(completion.content)
    if not answers or not answers[-1].strip():
        raise ResponseInvalid("no final answer inside <answer> </answer> tags")
    cot = (completion.reasoning or "").strip()
    if not cot:
        thinks = _THINK_RE.findall(completion.content)
        cot = thinks[0].strip() if thinks else ANSWER_RE.sub("", completion.content).strip()
    if not cot:
        raise ResponseInvalid("no reasoning before the answer")
    return cot, answers[-1].strip()


def parse_refined_cot(completion: Completion) -> tuple[str, str]:
    match = _FULL_FORMAT_RE.match(completion.content)
    if not match or not match.group(1).strip() or not match.group(2).strip():
        raise ResponseInvalid("the reply must be exactly <think>reasoning</think><answer>answer</answer>")
    return match.group(1).strip(), match.group(2).strip()


# ---- stage 1: structured representations ---------------------------------------------------------------

def _timestamps(row: pd.Series, spec: FrameSpec) -> list[float]:
    if row["data_type"] != "video":
        return [0.0]
    fps = float(row["media_fps"]) or 1.0
    idx = sample_indices(int(row["media_num_frames"]), fps, frames=spec.frames, fps=spec.fps,
                         max_frames=spec.max_frames)
    return [round(i / fps, 2) for i in idx]


async def describe_media(pool: pd.DataFrame, prompt: PromptSet, client: ExpertClient, spec: FrameSpec,
                         repair_attempts: int, progress: Progress | None = None) -> pd.DataFrame:
    """One structured representation per distinct media in ``pool``."""
    media = pool.drop_duplicates("media_sha256").sort_values("media_sha256")
    schema = prompt.schema
    assert schema is not None

    async def one(row: pd.Series) -> dict[str, Any]:
        ref = media_ref(row["media_uri"], row["media_sha256"], row["data_type"], spec_dict(spec))
        stamps = _timestamps(row, spec)
        messages = representation_messages(prompt, ref, stamps, float(row["media_duration"]), spec.fps,
                                           int(row["media_width"]), int(row["media_height"]))
        outcome = await client.complete(messages, lambda c: parse_representation(c, schema),
                                        prompt.repair_message, repair_attempts)
        return {"media_sha256": row["media_sha256"], "media_uri": row["media_uri"], "data_type": row["data_type"],
                "status": "ok" if outcome.ok else "failed", "reason": outcome.error or "",
                "representation": outcome.value if outcome.ok else "", "frames": len(stamps),
                "describer_model": client.config.model, "prompt_hash": prompt.content_hash,
                "cache_keys": json.dumps(outcome.cache_keys), "repairs": outcome.repairs}

    async with client:
        rows = await gather_bounded([r for _, r in media.iterrows()], one, client.config.rows_in_flight,
                                    progress)
    return pd.DataFrame(rows, columns=["media_sha256", "media_uri", "data_type", "status", "reason",
                                       "representation", "frames", "describer_model", "prompt_hash",
                                       "cache_keys", "repairs"])


# ---- stage 2: initial CoTs -----------------------------------------------------------------------------

async def generate_cots(pool: pd.DataFrame, representations: pd.DataFrame, prompt: PromptSet,
                        client: ExpertClient, repair_attempts: int, regression_tolerance: float,
                        progress: Progress | None = None) -> pd.DataFrame:
    """Blind CoTs (paper Eq. 1): the reasoner sees the representation and the question, never the media."""
    reps = representations.set_index("media_sha256")

    async def one(row: pd.Series) -> dict[str, Any]:
        base = {"sample_id": row["sample_id"], "media_sha256": row["media_sha256"],
                "reasoner_model": client.config.model, "prompt_hash": prompt.content_hash,
                "representation_prompt_hash": ""}
        rep = reps.loc[row["media_sha256"]] if row["media_sha256"] in reps.index else None
        if rep is None or rep["status"] != "ok":
            why = rep["reason"] if rep is not None else "no representation for this media"
            return {**base, "status": "failed", "reason": f"structured_video_representations: {why}",
                    "cot": "", "answer": "", "correct": None, "cache_keys": "[]", "repairs": 0}
        base["representation_prompt_hash"] = rep["prompt_hash"]
        messages = cot_generation_messages(prompt, rep["representation"], row["problem"], _options(row["options"]),
                                           row["problem_type"], row["data_type"])
        outcome = await client.complete(messages, parse_initial_cot, prompt.repair_message, repair_attempts)
        cot, answer = outcome.value if outcome.ok else ("", "")
        correct = answers_match(row["problem_type"], answer, row["answer"], _options(row["options"]),
                                regression_tolerance) if outcome.ok else None
        return {**base, "status": "ok" if outcome.ok else "failed", "reason": outcome.error or "", "cot": cot,
                "answer": answer, "correct": correct, "cache_keys": json.dumps(outcome.cache_keys),
                "repairs": outcome.repairs}

    async with client:
        rows = await gather_bounded([r for _, r in pool.iterrows()], one, client.config.rows_in_flight,
                                    progress)
    return pd.DataFrame(rows, columns=["sample_id", "media_sha256", "status", "reason", "cot", "answer", "correct",
                                       "reasoner_model", "prompt_hash", "representation_prompt_hash", "cache_keys",
                                       "repairs"]).astype({"correct": "boolean"})


# ---- stage 3: refined CoTs -----------------------------------------------------------------------------

async def refine_cots(pool: pd.DataFrame, initial: pd.DataFrame, prompt: PromptSet, cot_prompt: PromptSet,
                      client: ExpertClient, spec: FrameSpec, repair_attempts: int, regression_tolerance: float,
                      progress: Progress | None = None) -> pd.DataFrame:
    """Cross-modal refinement (paper Eq. 2): the refiner sees the media next to the blind CoT and revises it."""
    first = initial.set_index("sample_id")

    async def one(row: pd.Series) -> dict[str, Any]:
        base = {"sample_id": row["sample_id"], "refiner_model": client.config.model,
                "prompt_hash": prompt.content_hash}
        init = first.loc[row["sample_id"]] if row["sample_id"] in first.index else None
        if init is None or init["status"] != "ok":
            why = f"initial_cots: {init['reason']}" if init is not None else "initial_cots: no initial CoT"
            return {**base, "status": "failed", "reason": why, "cot": "", "answer": "", "process": "",
                    "solution": "", "correct": None, "changed": None, "cache_keys": "[]", "repairs": 0}
        ref = media_ref(row["media_uri"], row["media_sha256"], row["data_type"], spec_dict(spec))
        initial_response = f"<think>{init['cot']}</think>\n<answer>{init['answer']}</answer>"
        fmt = answer_format(cot_prompt, row["problem_type"], row["data_type"])
        messages = refinement_messages(prompt, ref, row["problem"], _options(row["options"]), initial_response, fmt)
        outcome = await client.complete(messages, parse_refined_cot, prompt.repair_message, repair_attempts)
        cot, answer = outcome.value if outcome.ok else ("", "")
        correct = answers_match(row["problem_type"], answer, row["answer"], _options(row["options"]),
                                regression_tolerance) if outcome.ok else None
        return {**base, "status": "ok" if outcome.ok else "failed", "reason": outcome.error or "", "cot": cot,
                "answer": answer, "process": f"<think>{cot}</think>" if outcome.ok else "",
                "solution": f"<answer>{answer}</answer>" if outcome.ok else "", "correct": correct,
                "changed": (cot != init["cot"] or answer != init["answer"]) if outcome.ok else None,
                "cache_keys": json.dumps(outcome.cache_keys), "repairs": outcome.repairs}

    async with client:
        rows = await gather_bounded([r for _, r in pool.iterrows()], one, client.config.rows_in_flight,
                                    progress)
    return pd.DataFrame(rows, columns=["sample_id", "status", "reason", "cot", "answer", "process", "solution",
                                       "correct", "changed", "refiner_model", "prompt_hash", "cache_keys",
                                       "repairs"]).astype({"correct": "boolean", "changed": "boolean"})


def run(coro: Any) -> Any:
    """Run a stage coroutine from synchronous code (Dagster ops, CLIs)."""
    return asyncio.run(coro)


# ---- stage 4: the filter and the two datasets ----------------------------------------------------------

def unrefined_as_final(initial: pd.DataFrame) -> pd.DataFrame:
    """The blind CoTs (Eq. 1) in the refined table's shape: the paper's "w/o CoT Refinement" data (Table 2)."""
    ok = initial["status"] == "ok"
    out = initial[["sample_id", "status", "reason", "cot", "answer", "prompt_hash"]].copy()
    out["process"] = np.where(ok, "<think>" + out["cot"] + "</think>", "")
    out["solution"] = np.where(ok, "<answer>" + out["answer"] + "</answer>", "")
    upstream = out["reason"].str.startswith("structured_video_representations:")
    out["reason"] = np.where(ok | upstream, out["reason"], "initial_cots: " + out["reason"])
    return out


def check_rl_only_templates(names: list[str]) -> None:
    """``curation.filter.rl_only_templates`` names known question templates (``synthetic.qa``)."""
    if not names:
        return  # production profiles name none and never import the synthetic world
    from synthetic.qa import IMAGE_TEMPLATES, VIDEO_TEMPLATES

    unknown = sorted(set(names) - {*VIDEO_TEMPLATES, *IMAGE_TEMPLATES})
    if unknown:
        raise ValueError(f"curation.filter.rl_only_templates: unknown templates {unknown}; known: "
                         f"{sorted({*VIDEO_TEMPLATES, *IMAGE_TEMPLATES})}")


def held_for_rl(problems: pd.Series, templates: list[str]) -> pd.Series:
    """Per question, the template that keeps it out of the CoT sets (``rl_only_templates``), else ''."""
    wanted = set(templates)
    if not wanted:
        return problems.map(lambda p: "")
    from synthetic.qa import template_of

    return problems.map(lambda p: template_of(str(p)) or "").map(lambda t: t if t in wanted else "")


def filter_cots(pool: pd.DataFrame, representations: pd.DataFrame, initial: pd.DataFrame,
                refined: pd.DataFrame | None, cfg: FilterConfig,
                similarity: Callable[[list[str], list[str]], np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, dropped): the SFT set in the VideoRFT schema, and one row with a reason per dropped sample.

    Structured types are kept only when the final answer is right; open types only when the CLIP
    similarity between the final and the reference answer reaches ``cfg.clip_threshold``. The final CoT is
    the refined one; with ``refined=None`` it is the blind initial CoT (the "w/o CoT Refinement" ablation),
    filtered by the same rules so the two sets differ only in the refinement.
    """
    reps = representations.set_index("media_sha256")
    init = initial.set_index("sample_id")
    unrefined = refined is None
    ref = (unrefined_as_final(initial) if unrefined else refined).set_index("sample_id")
    merged = pool.copy()
    merged["r_status"] = merged["sample_id"].map(ref["status"]).fillna("failed")
    merged["r_reason"] = merged["sample_id"].map(ref["reason"]).fillna(
        f"{'initial' if unrefined else 'refined'}_cots: missing")
    merged["r_answer"] = merged["sample_id"].map(ref["answer"]).fillna("")
    ok = merged["r_status"] == "ok"
    open_mask = ok & merged["problem_type"].isin(cfg.open_types)
    sims = pd.Series(np.nan, index=merged.index, dtype="float64")
    if open_mask.any():
        values = similarity(merged.loc[open_mask, "r_answer"].tolist(), merged.loc[open_mask, "answer"].tolist())
        sims.loc[open_mask] = np.round(values.astype("float64"), 4)
    check_rl_only_templates(cfg.rl_only_templates)
    kept_rows, dropped_rows = [], []
    held = held_for_rl(merged["problem"], cfg.rl_only_templates)
    for i, row in merged.iterrows():
        sid = row["sample_id"]
        if held[i]:
            dropped_rows.append({"sample_id": sid, "stage": "filter", "problem_type": row["problem_type"],
                                 "reason": f"template {held[i]} is held for RL (curation.filter.rl_only_templates)"})
            continue
        if row["r_status"] != "ok":
            reason = str(row["r_reason"])
            stage = next((s for s in ("structured_video_representations", "initial_cots") if f"{s}:" in reason),
                         "refined_cots")
            dropped_rows.append({"sample_id": sid, "stage": stage, "reason": row["r_reason"],
                                 "problem_type": row["problem_type"]})
            continue
        if row["problem_type"] in cfg.open_types:
            if sims[i] < cfg.clip_threshold:
                dropped_rows.append({"sample_id": sid, "stage": "filter", "problem_type": row["problem_type"],
                                     "reason": f"CLIP similarity to the reference {sims[i]:.3f} < "
                                               f"{cfg.clip_threshold}"})
                continue
        elif not answers_match(row["problem_type"], row["r_answer"], row["answer"], _options(row["options"]),
                               cfg.regression_tolerance):
            dropped_rows.append({"sample_id": sid, "stage": "filter", "problem_type": row["problem_type"],
                                 "reason": f"wrong final answer ({row['r_answer']!r}, reference {row['answer']!r})"})
            continue
        r, n, rep = ref.loc[sid], init.loc[sid], reps.loc[row["media_sha256"]]
        kept_rows.append({
            "problem_id": row["problem_id"], "problem": row["problem"], "data_type": row["data_type"],
            "problem_type": row["problem_type"], "options": _options(row["options"]), "process": r["process"],
            "solution": r["solution"], "path": row["media_uri"], "data_source": row["data_source"],
            "category": row["category"], "sample_id": sid, "media_sha256": row["media_sha256"],
            "prompt_hashes": json.dumps({"structured_representation": rep["prompt_hash"],
                                         "cot_generation": n["prompt_hash"],
                                         **({} if unrefined else {"cot_refinement": r["prompt_hash"]})}),
            "expert_models": json.dumps({"describer": rep["describer_model"], "reasoner": n["reasoner_model"],
                                         **({} if unrefined else {"refiner": r["refiner_model"]})}),
            "cache_keys": json.dumps({"describer": json.loads(rep["cache_keys"]),
                                      "reasoner": json.loads(n["cache_keys"]),
                                      **({} if unrefined else {"refiner": json.loads(r["cache_keys"])})}),
            "clip_similarity": None if np.isnan(sims[i]) else float(sims[i]),
        })
    kept = pd.DataFrame(kept_rows, columns=list(SFT_COLUMNS))
    dropped = pd.DataFrame(dropped_rows, columns=["sample_id", "stage", "reason", "problem_type"])
    return kept, dropped


def rl_rows(pool: pd.DataFrame) -> pd.DataFrame:
    """Every valid pool sample in the RL format: the question, the media and ``<answer>`` ground truth."""
    out = pd.DataFrame({
        "problem_id": pool["problem_id"], "problem": pool["problem"], "data_type": pool["data_type"],
        "problem_type": pool["problem_type"], "options": pool["options"].map(_options), "process": "",
        "solution": "<answer>" + pool["answer"].astype(str) + "</answer>", "path": pool["media_uri"],
        "data_source": pool["data_source"], "category": pool["category"], "sample_id": pool["sample_id"],
        "media_sha256": pool["media_sha256"],
    }, columns=list(RL_COLUMNS))
    return out.sort_values("sample_id", kind="stable").reset_index(drop=True)


FORMAT_RE = re.compile(r"^<think>.+?</think>$", re.DOTALL)


def format_valid(kept: pd.DataFrame) -> pd.Series:
    """Per row: ``process`` is one ``<think>..</think>`` block and ``solution`` one ``<answer>..</answer>``."""
    process_ok = kept["process"].map(lambda p: bool(FORMAT_RE.match(p)) and p.count("<think>") == 1)
    solution_ok = kept["solution"].map(lambda s: bool(re.fullmatch(r"<answer>.+?</answer>", s, re.DOTALL)))
    return process_ok & solution_ok
