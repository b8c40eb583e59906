"""How assets present what they report in Dagster's UI: counts and funnels as tables, rounded numbers, training
curves as top-level floats (which the Plots tab charts across materializations), a compact curve table, and
plots as inline images on the asset page. One home, so every asset reads the same way.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import pandas as pd

from training.checks import metric_name

FLOAT_DIGITS = 4


def rounded(value: float, digits: int = FLOAT_DIGITS) -> float:
    """A float as people read it (``0.8833`` not ``0.8833333333333333``); integers stay integers."""
    return value if isinstance(value, int) else round(float(value), digits)


def markdown_table(frame: pd.DataFrame, limit: int) -> str:
    """The first ``limit`` rows as a Markdown table (cells on one line, at most 80 characters)."""
    if frame.empty:
        return "_empty_"
    shown = frame.head(limit).copy()
    for col in shown.columns:
        shown[col] = shown[col].map(lambda v: str(v).replace("|", "\\|").replace("\n", " ")[:80])
    return shown.to_markdown(index=False)


def counts_table(counts: Mapping[str, int], label: str, order: Iterable[str] | None = None) -> dg.TableMetadataValue:
    """``label | rows | share %``: a count per value, in ``order`` (default: most rows first)."""
    keys = list(order) if order is not None else [k for k, _ in sorted(counts.items(), key=lambda kv: -kv[1])]
    total = sum(counts.values()) or 1
    schema = dg.TableSchema(columns=[
        dg.TableColumn(label, "string", description=f"the {label}"),
        dg.TableColumn("rows", "int", description="rows with this value"),
        dg.TableColumn("share_pct", "float", description="percent of all rows"),
    ])
    records = [dg.TableRecord({label: str(k), "rows": int(counts.get(k, 0)),
                               "share_pct": round(100 * counts.get(k, 0) / total, 1)}) for k in keys]
    return dg.MetadataValue.table(records, schema=schema)


def funnel_table(stages: Mapping[str, int]) -> dg.TableMetadataValue:
    """The curation funnel in stage order: rows left after each stage, percent of the pool and of the stage
    before."""
    schema = dg.TableSchema(columns=[
        dg.TableColumn("stage", "string", description="curation stage, in pipeline order"),
        dg.TableColumn("rows", "int", description="rows left after the stage"),
        dg.TableColumn("of_pool_pct", "float", description="percent of the raw pool"),
        dg.TableColumn("of_previous_pct", "float", description="percent of the stage before (retention of this stage)"),
    ])
    records, first, previous = [], None, None
    for stage, rows in stages.items():
        first = rows if first is None else first
        records.append(dg.TableRecord({"stage": stage, "rows": int(rows),
                                       "of_pool_pct": round(100 * rows / first, 1) if first else 0.0,
                                       "of_previous_pct": round(100 * rows / previous, 1) if previous else 100.0}))
        previous = rows
    return dg.MetadataValue.table(records, schema=schema)


def curve_markdown(steps: list[dict[str, Any]], columns: list[str], rows: int = 10) -> str:
    """A compact Markdown table of a training curve: about ``rows`` logged steps, evenly spaced, always the
    first and the last."""
    logged = [s for s in steps if any(c in s for c in columns)]
    if not logged:
        return "_no logged steps_"
    stride = max(1, round(len(logged) / rows))
    picked = logged[::stride]
    if picked[-1] is not logged[-1]:
        picked.append(logged[-1])
    frame = pd.DataFrame([{"step": s["step"], **{metric_name(c): s.get(c) for c in columns}} for s in picked])
    return frame.to_markdown(index=False, floatfmt=".4g")


def column_schema(columns: Mapping[str, str], types: Mapping[str, str] | None = None) -> dg.TableSchema:
    """A dataset's columns with their descriptions (``dagster/column_schema``); type ``string`` unless given."""
    types = types or {}
    return dg.TableSchema(columns=[dg.TableColumn(name, types.get(name, "string"), description=text)
                                   for name, text in columns.items()])


def versions_table(versions: Mapping[str, Any]) -> dg.TableMetadataValue:
    """What a result was made from: one row per input (a dataset, a prompt, a start checkpoint) and its version."""
    schema = dg.TableSchema(columns=[
        dg.TableColumn("input", "string", description="dataset, prompt (prompt.<name>) or checkpoint"),
        dg.TableColumn("version", "string", description="its content hash (or name)"),
    ])
    return dg.MetadataValue.table([dg.TableRecord({"input": k, "version": str(v)}) for k, v in versions.items()],
                                  schema=schema)


def column_lineage(deps: Mapping[str, list[tuple[str, str]]]) -> dg.TableColumnLineage:
    """``dagster/column_lineage``: each derived column and the (upstream asset, column) pairs it comes from."""
    return dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(dg.AssetKey(asset), source) for asset, source in sources]
        for column, sources in deps.items()})


# Who answers for an asset and where the paper describes it (Dagster's owners and tags: filters in the UI)
OWNERS = {"sources": "team:data", "prompts": "team:curation", "curation": "team:curation",
          "training": "team:training", "evaluation": "team:evaluation", "pretraining": "team:training"}
# "pretraining" is the miniature's stand-in for the paper's starting point, Qwen2.5-VL-7B (4.1)
# where each group's method is in the paper (its headings: 2.1 data collection, 2.2 CoT generation, 3.1-3.3 GRPO
# and the rewards, 4.1 set-up); the tiny models' pretraining stands in for the base model of 4.1
PAPER_SECTIONS = {"sources": "2.1", "prompts": "2.2", "curation": "2.2", "training": "3.1-3.3", "evaluation": "4.1",
                  "pretraining": "4.1"}


def ownership(group: str) -> dict[str, Any]:
    """``owners`` and ``tags`` for an asset of ``group`` (its Dagster group name)."""
    return {"owners": [OWNERS[group]], "tags": {"domain": group, "paper_section": PAPER_SECTIONS[group]}}
