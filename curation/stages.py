"""The expert stages of curation, one declaration each: the stage table.

A stage is known by one name, its asset's (``structured_video_representations``, ``initial_cots``,
``refined_cots``): the Dagster asset, its storage folder, its MLflow run, the failure reasons it passes
downstream and the CLI's output file all use it. The entry maps that name to the contract names beside it: the
expert ``role`` (profile ``experts.<role>``, ``VIDEORFT_<ROLE>_*``) and the ``prompt`` file
(``curation/prompts/<prompt>.yaml``, asset ``<prompt>_prompt``). The Dagster assets
(``assets.curation``), the CLI (``python -m curation``), the simulator's roles and docs/architecture.md iterate
this table, so a new expert stage is one entry, one prompt file, one stage function (``register_stage``) and,
for the offline profiles, a simulated role (``synthetic.simulator.server.register_role``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from curation import cot, report
from curation.experts import ExpertClient
from curation.prompts import PromptSet
from videorft.profile import FrameSpec, Profile

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StageInputs:
    """What a stage function is given: the pool shard, the tables of the stages it reads (by stage name), its
    prompts (by prompt name), its expert's client, the profile and what the expert is shown of the media."""

    pool: pd.DataFrame
    tables: Mapping[str, pd.DataFrame]
    prompts: Mapping[str, PromptSet]
    client: ExpertClient
    profile: Profile
    frames: FrameSpec | None = None  # the stage's ``video.<frames>`` spec, resolved from the profile
    progress: Progress | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """One declared check's result on a stage's table."""

    name: str
    passed: bool
    metadata: dict[str, Any]


@dataclass(frozen=True)
class StageReport:
    """What a stage says about its table: metrics (metadata and MLflow), the rows its parse rate is judged on
    (None: all; rows that failed upstream are not its own failures) and its declared checks' outcomes."""

    metrics: dict[str, Any] = field(default_factory=dict)
    eligible: pd.Series | None = None
    checks: tuple[CheckOutcome, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One expert stage. ``frames`` names the profile's ``video.<frames>`` spec of what the expert is shown
    (None: text only); ``checks`` are the checks beyond ``parse_rate`` (name -> description) that ``report``
    returns outcomes for."""

    name: str
    role: str
    prompt: str
    run: Callable[[StageInputs], Awaitable[pd.DataFrame]]
    description: str
    done: str  # the progress word: "described: 40/120"
    prompt_description: str = ""
    reads: tuple[str, ...] = ()
    extra_prompts: tuple[str, ...] = ()
    frames: str | None = None
    report: Callable[[pd.DataFrame, StageInputs], StageReport] = lambda table, inputs: StageReport()
    checks: Mapping[str, str] = field(default_factory=dict)

    @property
    def prompts(self) -> tuple[str, ...]:
        return (self.prompt, *self.extra_prompts)

    def frame_spec(self, profile: Profile) -> FrameSpec | None:
        return getattr(profile.video, self.frames) if self.frames else None

    def inputs(self, pool: pd.DataFrame, tables: Mapping[str, pd.DataFrame], prompts: Mapping[str, PromptSet],
               client: ExpertClient, profile: Profile, progress: Progress | None = None) -> StageInputs:
        """This stage's inputs: only the tables and prompts it declares."""
        return StageInputs(pool, {r: tables[r] for r in self.reads}, {p: prompts[p] for p in self.prompts}, client,
                           profile, self.frame_spec(profile), progress)


STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> Stage:
    """Add a stage after the ones it reads (the table's order is the chain's order)."""
    if stage.name in STAGES:
        raise ValueError(f"curation stage {stage.name!r} is already registered")
    unknown = [r for r in stage.reads if r not in STAGES]
    if unknown:
        raise ValueError(f"curation stage {stage.name!r} reads {unknown}, which are not registered before it; "
                         f"stages: {list(STAGES)}")
    owned = {s.prompt for s in STAGES.values()} | {stage.prompt}
    foreign = [p for p in stage.extra_prompts if p not in owned]
    if foreign:
        raise ValueError(f"curation stage {stage.name!r} reads prompts {foreign} that no stage owns (each prompt "
                         "is one stage's `prompt`, which gives it its asset)")
    STAGES[stage.name] = stage
    return stage


def failed_upstream(table: pd.DataFrame, upstream: str) -> pd.Series:
    """Rows that failed because a stage they read failed: not counted against this stage's parse rate."""
    return ~table["reason"].astype(str).str.startswith(upstream)


# ---- the paper's three stages (section 2.2) ------------------------------------------------------------

def _describe(inputs: StageInputs) -> Awaitable[pd.DataFrame]:
    c = inputs.profile.curation
    return cot.describe_media(inputs.pool, inputs.prompts["structured_representation"], inputs.client,
                              inputs.frames, c.repair_attempts, inputs.progress)


def _describe_report(table: pd.DataFrame, inputs: StageInputs) -> StageReport:
    return StageReport({"media": len(table), "frames_decoded": inputs.client.encoder.decoded})


def _reason(inputs: StageInputs) -> Awaitable[pd.DataFrame]:
    c = inputs.profile.curation
    return cot.generate_cots(inputs.pool, inputs.tables["structured_video_representations"],
                             inputs.prompts["cot_generation"], inputs.client, c.repair_attempts,
                             c.filter.regression_tolerance, inputs.progress)


def _reason_report(table: pd.DataFrame, inputs: StageInputs) -> StageReport:
    acc = report.accuracy(table)
    return StageReport({"answer_accuracy": acc if acc is not None else float("nan")},
                       failed_upstream(table, "structured_video_representations"))


def _refine(inputs: StageInputs) -> Awaitable[pd.DataFrame]:
    c = inputs.profile.curation
    return cot.refine_cots(inputs.pool, inputs.tables["initial_cots"], inputs.prompts["cot_refinement"],
                           inputs.prompts["cot_generation"], inputs.client, inputs.frames,
                           c.repair_attempts, c.filter.regression_tolerance, inputs.progress)


def _refine_report(table: pd.DataFrame, inputs: StageInputs) -> StageReport:
    both = table[["sample_id", "correct"]].merge(inputs.tables["initial_cots"][["sample_id", "correct"]],
                                                 on="sample_id", suffixes=("_refined", "_initial")).dropna()
    refined = float(both["correct_refined"].mean()) if len(both) else 1.0
    initial = float(both["correct_initial"].mean()) if len(both) else 1.0
    return StageReport(
        {"answer_accuracy": refined, "answer_accuracy_initial": initial,
         "changed_rows": int(table["changed"].fillna(False).sum()), "frames_decoded": inputs.client.encoder.decoded},
        failed_upstream(table, "initial_cots"),
        (CheckOutcome("refinement_not_worse", refined >= initial,
                      {"accuracy_refined": refined, "accuracy_initial": initial, "samples": len(both)}),))


register_stage(Stage(
    name="structured_video_representations", role="describer", prompt="structured_representation",
    run=_describe, report=_describe_report, frames="describe", done="described",
    prompt_description="paper 2.2, D.1: a high-level caption plus one JSON record per frame sampled at 1 fps, "
    "validated against the shipped JSON schema; video and image variants.",
    description="The describer's structured representation of every distinct video (and image) in the shard: a "
    "caption plus per-frame JSON records at 1 fps, schema-validated; invalid replies are re-asked with the error, "
    "then recorded as failures."))
register_stage(Stage(
    name="initial_cots", role="reasoner", prompt="cot_generation", reads=("structured_video_representations",),
    run=_reason, report=_reason_report, done="reasoned",
    prompt_description="paper Eq. 1, D.1: five sub-prompts (simulated observation, task understanding, selective "
    "focus, visual reasoning, reflective answering) and the answer format by type.",
    description="Blind CoTs (paper Eq. 1): the reasoner answers each question from the structured representation "
    "alone; a reasoning model's separate reasoning field is kept as the CoT."))
register_stage(Stage(
    name="refined_cots", role="refiner", prompt="cot_refinement", extra_prompts=("cot_generation",),
    reads=("initial_cots",), run=_refine, report=_refine_report, frames="refine", done="refined",
    prompt_description="paper Eq. 2, D.1/D.2: verify the blind CoT against the media, localise and explain "
    "inconsistencies, revise while keeping the logical structure; video and image variants.",
    checks={"refinement_not_worse": "answer accuracy of refined CoTs >= that of the initial CoTs they revise "
            "(paper Table 2: refinement improves the data)"},
    description="Cross-modal refinement (paper Eq. 2): the refiner sees the media next to each blind CoT, "
    "corrects claims the media contradicts and keeps the reasoning's structure."))
