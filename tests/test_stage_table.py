"""The stage table (``curation.stages``): a new expert role is one entry, one prompt file, one stage function and a
simulated role, exactly as docs/architecture.md's "Where to add" says, and the graph, the prompt assets and the
simulator follow it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from graph_helpers import materialize_all
from test_curation_chain import SOURCES, defs_for, profile_with, shard_manifests

from curation import stages
from curation.cot import spec_dict
from curation.experts import Completion, ResponseInvalid, gather_bounded
from curation.prompts import default_prompts_dir, media_ref
from curation.stages import STAGES, Stage, StageInputs, register_stage
from synthetic.simulator import server
from synthetic.simulator.server import SimulatedRole, Simulator, register_role, seen_media
from videorft.answers import ANSWER_RE, answers_match
from videorft.storage import read_parquet

ROOT = Path(__file__).resolve().parent.parent
VERDICT = re.compile(r"<verdict>\s*(yes|no)\s*</verdict>")

# 1. the prompt file
PROMPT = """\
system: |
  You check a worked answer to a question about a video.
question: |
  Question: $question
  $options
  Worked answer: $response
  Is the final answer right? Reply <verdict>yes</verdict> or <verdict>no</verdict>.
repair: |
  Your reply could not be used ($error). Reply <verdict>yes</verdict> or <verdict>no</verdict> only.
"""


# 2. the stage function
def _parse_verdict(completion: Completion) -> bool:
    found = VERDICT.search(completion.content)
    if found is None:
        raise ResponseInvalid("no <verdict>yes|no</verdict> in the reply")
    return found.group(1) == "yes"


async def verify_cots(inputs: StageInputs) -> pd.DataFrame:
    """The verifier's verdict on each refined CoT."""
    refined = inputs.tables["refined_cots"].set_index("sample_id")
    prompt = inputs.prompts["cot_verification"]

    async def one(row: pd.Series) -> dict[str, Any]:
        cot = refined.loc[row["sample_id"]]
        if cot["status"] != "ok":
            return {"sample_id": row["sample_id"], "status": "failed", "reason": f"refined_cots: {cot['reason']}",
                    "verdict": None}
        media = media_ref(row["media_uri"], row["media_sha256"], row["data_type"], spec_dict(inputs.frames))
        text = prompt.render("question", question=row["problem"], options="\n".join(row["options"]),
                             response=cot["process"] + cot["solution"])
        messages = [{"role": "system", "content": prompt.spec["system"]},
                    {"role": "user", "content": [media, {"type": "text", "text": text}]}]
        outcome = await inputs.client.complete(messages, _parse_verdict, prompt.repair_message, 1)
        return {"sample_id": row["sample_id"], "status": "ok" if outcome.ok else "failed",
                "reason": outcome.error or "", "verdict": outcome.value if outcome.ok else None}

    async with inputs.client:
        rows = await gather_bounded([r for _, r in inputs.pool.iterrows()], one, inputs.client.config.rows_in_flight)
    return pd.DataFrame(rows, columns=["sample_id", "status", "reason", "verdict"])


# 3. the simulated role: judges from the world's ground truth
def _simulated_verifier(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, Any]:
    frames, text = sim.media(messages)
    question = sim.world.find_question(text, seen_media(sim, frames)[0])
    answers = ANSWER_RE.findall(text)
    truth = question["solution"].removeprefix("<answer>").removesuffix("</answer>") if question else ""
    right = bool(answers) and question is not None and answers_match(question["problem_type"], answers[-1], truth,
                                                                     question["options"])
    return {"content": f"<verdict>{'yes' if right else 'no'}</verdict>"}


@pytest.fixture
def verifier_role(tmp_path: Path) -> Iterator[Path]:
    """The fourth role's files, registered for one test: its prompt in a prompt folder, its table entry, its
    simulated role. Returns the prompt folder."""
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (folder / "cot_verification.yaml").write_text(PROMPT)
    # 4. the table entry
    register_stage(Stage(name="verified_cots", role="verifier", prompt="cot_verification", reads=("refined_cots",),
                         run=verify_cots, done="verified", frames="refine",
                         description="A verifier's verdict on each refined CoT.",
                         prompt_description="asks whether a worked answer is right."))
    register_role("verifier", SimulatedRole(_simulated_verifier))
    try:
        yield folder
    finally:
        STAGES.pop("verified_cots")
        server.SIMULATED_ROLES.pop("verifier")


@pytest.mark.slow
def test_a_fourth_expert_role_joins_the_graph_through_its_entry_prompt_function_and_simulated_role(
        isolated_env, tmp_path, verifier_role):
    ref = profile_with(tmp_path, curation={"prompts_dir": str(verifier_role)},
                       experts={"verifier": {"model": "sim-verifier", "max_concurrency": 4}})
    defs = defs_for(ref)
    graph = defs.resolve_asset_graph()
    assert {dg.AssetKey("verified_cots"), dg.AssetKey("cot_verification_prompt")} <= set(graph.get_all_asset_keys())
    assert dg.AssetKey("refined_cots") in graph.get(dg.AssetKey("verified_cots")).parent_keys
    with dg.instance_for_test() as instance:
        results = materialize_all(defs, instance, " or ".join((SOURCES, *(f"key:{s}" for s in STAGES))))
        assert all(r.success for r in results)
    storage = Path(isolated_env["VIDEORFT_STORAGE_ROOT"])
    verdicts = pd.concat([read_parquet(m["uri"]) for m in shard_manifests(storage, "verified_cots")])
    refined = pd.concat([read_parquet(m["uri"]) for m in shard_manifests(storage, "refined_cots")])
    both = verdicts.merge(refined[["sample_id", "status", "correct"]], on="sample_id", suffixes=("", "_refined"))
    assert len(both) == len(refined) > 0  # one verdict row per sample
    judged = both[both["status"] == "ok"]
    assert len(judged) == (refined["status"] == "ok").sum() > 0
    # the simulated verifier judged every refined CoT as the world's ground truth does
    disagree = judged[judged["verdict"].astype(bool) != judged["correct"].astype(bool)]
    assert disagree.empty, disagree.merge(refined[["sample_id", "answer"]], on="sample_id").to_string()


def test_a_stage_that_reads_an_unregistered_stage_is_refused_with_the_order_named():
    with pytest.raises(ValueError, match="not registered before it"):
        register_stage(Stage(name="x", role="x", prompt="x", reads=("nowhere",), run=verify_cots, done="x",
                             description="x"))
    assert "x" not in STAGES


def test_the_stage_table_is_the_chain_and_names_every_stage_once():
    assert list(STAGES) == ["structured_video_representations", "initial_cots", "refined_cots"]
    assert [s.role for s in STAGES.values()] == ["describer", "reasoner", "refiner"]
    assert stages.STAGES["refined_cots"].checks  # refinement_not_worse is declared by the entry


def test_the_architecture_map_lists_every_stage_of_the_table():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for stage in STAGES.values():
        row = next((line for line in text.splitlines() if f"`{stage.name}`" in line and f"`{stage.role}`" in line),
                   None)
        assert row is not None and f"`{stage.prompt}`" in row, f"docs/architecture.md: no stage row for {stage.name}"
