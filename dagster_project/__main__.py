"""``python -m dagster_project materialize [--select SELECTION]`` — the main job's command line (a contract).

Materializes a selection (Dagster's asset-selection syntax; default: everything but the ``pretraining`` group,
which rebuilds the shipped models and runs only when selected) across all partitions,
recording runs in the instance at ``DAGSTER_HOME`` (default ``.videorft/dagster_home``) so they show in the UI.
Assets with different partitioning run as separate runs in dependency order; partitioned batches run once
per partition key; ``--parallel N`` runs up to N partitions of a batch at once (curation shards, benchmarks;
training variants share runs and stay sequential),
which with the profile's ``dagster.executor: multiprocess`` puts each on its own cores. Ends with a summary and
exits non-zero if a run or an error-severity check failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # its INFO lines (database set-up, flushes) are noise here

from dagster_project.runs import Outcome, execute, execute_in_child


@dataclass
class Batch:
    keys: list[Any]
    partitions_def: Any
    level: int


def plan_batches(asset_graph: Any, selected: set[Any]) -> list[Batch]:
    """Group selected assets into runs: a run holds assets sharing one partitions definition, and a batch
    comes after every batch it reads from."""
    level: dict[Any, int] = {}
    for key in asset_graph.toposorted_asset_keys:
        if key not in selected:
            continue
        node = asset_graph.get(key)
        lvl = 0
        for parent in node.parent_keys:
            if parent in level:
                same = asset_graph.get(parent).partitions_def == node.partitions_def
                lvl = max(lvl, level[parent] + (0 if same else 1))
        level[key] = lvl
    batches: dict[tuple[int, Any], Batch] = {}
    for key, lvl in level.items():
        pdef = asset_graph.get(key).partitions_def
        ident = (lvl, id(pdef) if pdef is not None else None)
        batches.setdefault(ident, Batch([], pdef, lvl)).keys.append(key)
    return sorted(batches.values(), key=lambda b: b.level)


def variant_keys(partitions_def: Any, keys: list[Any], variants: set[str], all_variants: set[str]) -> list[Any]:
    """The partition keys of ``keys`` that belong to ``variants``: a variant partition (training assets) or a
    (variant, benchmark) partition (benchmark_scores); other partitions (curation shards) are all kept."""
    from dagster import MultiPartitionsDefinition

    if isinstance(partitions_def, MultiPartitionsDefinition):
        if "variant" not in {d.name for d in partitions_def.partitions_defs}:
            return keys
        return [k for k in keys if k.keys_by_dimension["variant"] in variants]
    if set(keys) == all_variants:
        return [k for k in keys if k in variants]
    return keys


def _selected_assets(graph: Any, selection: str | None) -> set[Any]:
    """The asset keys a selection string names (none: every asset but the shipped models' pretraining, which runs
    only when selected, `make pretrain`); an empty set, with the reason and the asset names printed, when the
    string is bad or matches nothing."""
    from dagster import AssetSelection

    from assets.pretraining import PRETRAINING_GROUP

    try:
        asset_selection = (AssetSelection.from_string(selection) if selection
                           else AssetSelection.all() - AssetSelection.groups(PRETRAINING_GROUP))
        selected = set(asset_selection.resolve(graph))
    except Exception as exc:  # Dagster raises several error types for a bad selection string
        print(f"error: bad selection {selection!r}: {exc}", file=sys.stderr)
        selected = set()
    if not selected:
        print(f"selection {selection!r} matches no asset; assets: "
              f"{', '.join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))}", file=sys.stderr)
    return selected


def materialize(selection: str | None, variants: list[str] | None = None, log_level: str = "warning",
                parallel: int = 1, progress_every: float = 20.0) -> int:
    from dagster import DagsterInstance
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from dagster_project.instance import ensure_dagster_home
    from dagster_project.progress import ProgressLine
    from resources.core import default_dagster_home

    home = ensure_dagster_home(default_dagster_home())
    from dagster_project import definitions

    graph = definitions.defs.resolve_asset_graph()
    selected = _selected_assets(graph, selection)
    if not selected:
        return 2
    # The implicit asset job of the whole repository, reconstructable in step subprocesses by module name.
    repo = ReconstructableRepository.for_module("dagster_project.definitions", "defs", os.getcwd())
    job = repo.get_reconstructable_job(definitions.defs.resolve_implicit_global_asset_job_def().name)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    defined = set(definitions.profile.training.variants)
    wanted = set(variants or definitions.profile.training.run_variants)
    with DagsterInstance.get() as instance:
        batches = plan_batches(graph, selected)
        partitions_of = {id(b): variant_keys(b.partitions_def, b.partitions_def.get_partition_keys(
            dynamic_partitions_store=instance), wanted, defined) if b.partitions_def else [None] for b in batches}
        total_runs = sum(len(p) for p in partitions_of.values())
        print(f"videorft: profile {definitions.profile.name}, {len(selected)} assets in {total_runs} runs, variants "
              f"{', '.join(v for v in definitions.profile.training.variants if v in wanted)}; DAGSTER_HOME={home}",
              flush=True)
        n = 0
        pool: ProcessPoolExecutor | None = None
        progress = ProgressLine(every=progress_every).start()
        try:
            for batch in batches:
                names = ", ".join(k.to_user_string() for k in batch.keys)
                partitions = partitions_of[id(batch)]
                # variants share training runs (full and ungated train one SFT): their batches stay sequential
                independent = not any(graph.get(k).group_name == "training" for k in batch.keys)
                if parallel > 1 and len(partitions) > 1 and independent:
                    if pool is None:  # processes, not threads: Dagster's in-process execution is per process
                        pool = ProcessPoolExecutor(max_workers=parallel, mp_context=mp.get_context("spawn"))
                    keys = [k.to_user_string() for k in batch.keys]
                    futures = {}
                    for partition in partitions:
                        n += 1
                        label = f"{names} [{partition}]"
                        progress.say(f"videorft: run {n}/{total_runs}: {label}")
                        spec = dict(partition.keys_by_dimension) if hasattr(partition, "keys_by_dimension") \
                            else partition
                        futures[pool.submit(execute_in_child, keys, spec, label, log_level)] = (n, time.monotonic())
                    progress.run_started(f"{names} [{len(partitions)} partitions, {parallel} at once]")
                    done: dict[int, Outcome] = {}
                    for future in as_completed(futures):
                        number, run_started = futures[future]
                        done[number] = outcome = future.result()
                        progress.say(f"videorft: run {number}/{total_runs} {'ok' if outcome.success else 'FAILED'} "
                                     f"in {time.monotonic() - run_started:.0f} s{_headline(outcome)}")
                    outcomes += [done[k] for k in sorted(done)]
                else:
                    for partition in partitions:
                        n += 1
                        label = names + (f" [{partition}]" if partition else "")
                        progress.say(f"videorft: run {n}/{total_runs}: {label}")
                        progress.run_started(f"run {n}/{total_runs}")
                        run_started = time.monotonic()
                        outcome = execute(job, instance, batch.keys, partition, label, log_level)
                        outcomes.append(outcome)
                        progress.say(f"videorft: run {n}/{total_runs} {'ok' if outcome.success else 'FAILED'} in "
                                     f"{time.monotonic() - run_started:.0f} s{_headline(outcome)}")
                if not all(o.success for o in outcomes):
                    break
        finally:
            progress.stop()
            if pool is not None:
                pool.shutdown()
    return _summarize(outcomes, time.monotonic() - started, total_runs, home)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def shown_protocols() -> tuple[str, ...]:
    """The order a score is shown in: the leaderboard's protocol first, then the paper's, then the rest (lenient:
    what the tiny models know). Imported here, not at start-up: the CLI's first line should not wait on scoring."""
    from evaluation.scoring import PROTOCOLS

    return ("official", "videorft", *(p for p in PROTOCOLS if p not in ("official", "videorft")))


def _headline(outcome: Outcome) -> str:
    """The one thing to know about a finished run: rows, the training result or the score."""
    parts = []
    several = len({key for key, _, _ in outcome.materialized}) > 1  # then each count names its asset
    for key, _, meta in outcome.materialized:
        if "score_official" in meta:
            parts.append(" / ".join(f"{p} {_fmt(meta.get(f'score_{p}'))}" for p in shown_protocols()))
        elif "reused_from_variant" in meta:
            parts.append(f"reused {meta['reused_from_variant']}'s checkpoint")
        elif "skipped_stage" in meta:
            parts.append(f"no {meta['skipped_stage']} in this variant: model passed on")
        elif "global_step" in meta:
            shown = ", ".join(f"{k[len('final_'):]} {_fmt(meta[k])}" for k in ("final_loss", "final_reward",
                                                                                "final_accuracy_reward") if k in meta)
            parts.append(f"{meta['global_step']} steps{', ' + shown if shown else ''}")
        elif "dagster/row_count" in meta:
            parts.append(f"{key} {meta['dagster/row_count']} rows" if several else f"{meta['dagster/row_count']} rows")
    failed = [name for name, passed, state in outcome.checks if not passed and not state.startswith("skipped")]
    if failed:
        parts.append(f"{len(failed)} check(s) not passed")
    return f": {'; '.join(dict.fromkeys(parts))}" if parts else ""


def _score_lines(outcomes: list[Outcome], variants: list[str]) -> list[str]:
    """Variants x benchmarks, every protocol (official / videorft / lenient), for the scores materialized in this
    invocation."""
    scores: dict[tuple[str, str], str] = {}
    for o in outcomes:
        for key, partition, meta in o.materialized:
            if key == "benchmark_scores" and "score_official" in meta and "|" in partition:
                benchmark, variant = partition.split("|", 1)
                scores[(variant, benchmark)] = "/".join(_fmt(meta.get(f"score_{p}")) for p in shown_protocols())
    if not scores:
        return []
    benchmarks = list(dict.fromkeys(b for _, b in scores))  # in the order they ran
    rows = [v for v in variants if any((v, b) in scores for b in benchmarks)]
    width = max(len(x) for x in [*benchmarks, *scores.values()]) + 2
    lines = [f"scores, {' / '.join(shown_protocols())} (%):", "  " + "variant".ljust(16) + "".join(
        b.rjust(width) for b in benchmarks)]
    lines += ["  " + v.ljust(16) + "".join(scores.get((v, b), "-").rjust(width) for b in benchmarks) for v in rows]
    return lines


def _variants_line(outcomes: list[Outcome], variants: list[str]) -> list[str]:
    """Which Table 2 variants this invocation trained or scored, and how to build the others (their partitions
    stay grey in the UI until then)."""
    built = {part.split("|")[-1] for o in outcomes for key, part, _ in o.materialized
             if key in ("sft_checkpoint", "rl_checkpoint", "benchmark_scores") and part}
    rest = [v for v in variants if v not in built]
    if not built or not rest:
        return []
    return [f"variants: {', '.join(v for v in variants if v in built)} built; `make table2` builds the rest "
            f"({', '.join(rest)})"]


def _summarize(outcomes: list[Outcome], seconds: float, total_runs: int, home: Any) -> int:
    from dagster_project import definitions
    from videorft.mlflow_links import find_experiment_address

    prof = definitions.profile
    failed_runs = [o for o in outcomes if not o.success]
    skipped = total_runs - len(outcomes)
    checks = [c for o in outcomes for c in o.checks]
    not_passed = [c for c in checks if not c[1] and not c[2].startswith("skipped")]
    failed_checks = [c for c in not_passed if c[2] == "ERROR"]
    ok = not failed_runs and not skipped and not failed_checks
    lines = ["", "=" * 78,
             f"videorft materialize: {len(outcomes) - len(failed_runs)} of {total_runs} runs ok in {seconds:.0f} s "
             f"(profile {prof.name})",
             f"checks: {sum(1 for c in checks if c[1] and not c[2].startswith('skipped'))} passed, "
             f"{sum(1 for c in checks if c[2].startswith('skipped'))} skipped (a stage the variant does not have), "
             f"{len(not_passed) - len(failed_checks)} warned, {len(failed_checks)} failed"]
    lines += [f"  {'FAILED' if state == 'ERROR' else 'warn  '} {name}" for name, _, state in not_passed]
    datasets = [(key, meta["dagster/row_count"]) for o in outcomes for key, part, meta in o.materialized
                if not part and "dagster/row_count" in meta and key != "scoreboard"]
    if datasets:
        lines.append("datasets: " + ", ".join(f"{k} {n} rows" for k, n in datasets))
    trained = [(key, part, meta) for o in outcomes for key, part, meta in o.materialized if "global_step" in meta
               or "reused_from_variant" in meta]
    if trained:
        lines.append("checkpoints:")
        for key, part, meta in trained:
            lines.append(f"  {key}[{part}]".ljust(30) + _headline(Outcome("", "", True, [(key, part, meta)]))[2:])
    lines += _score_lines(outcomes, list(prof.training.variants))
    lines += _variants_line(outcomes, list(prof.training.variants))
    board = [meta["csv"] for o in outcomes for key, _, meta in o.materialized if key == "scoreboard" and "csv" in meta]
    if board:
        lines.append(f"Table 2: {board[-1]}")
    for o in failed_runs:
        lines.append(f"FAILED run {o.label} ({o.run_id})")
        lines.extend(f"    error {e}" for e in o.errors)
    if skipped:
        lines.append(f"skipped {skipped} run(s) downstream of the failure")
    mlflow_page = find_experiment_address(prof.resolved_mlflow_uri(), prof.resolved_mlflow_ui_url(),
                                          prof.mlflow.experiment)
    lines += [
        "-" * 78,
        f"Dagster UI : make ui         -> http://127.0.0.1:{os.environ.get('PORT') or 3000}   (DAGSTER_HOME={home})",
        f"MLflow UI  : make mlflow-ui  -> {mlflow_page}   (store {prof.resolved_mlflow_uri()})",
        f"storage    : {prof.resolved_storage_root()}",
        f"result     : {'success' if ok else 'FAILED'}",
        "=" * 78,
    ]
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


def write_pools(pools: dict[str, int]) -> int:
    """Set each pool's slot count in the instance (the webserver's Concurrency page shows them)."""
    from dagster import DagsterInstance

    from dagster_project.instance import ensure_dagster_home
    from resources.core import default_dagster_home

    ensure_dagster_home(default_dagster_home())
    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            print(f"error: the instance's event log ({type(storage).__name__}) has no concurrency pools",
                  file=sys.stderr)
            return 2
        for name, limit in sorted(pools.items()):
            storage.set_concurrency_slots(name, limit)
            print(f"pool {name}: {limit} slot(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mat = sub.add_parser("materialize", help="materialize a selection across all partitions")
    mat.add_argument("--select", default=None,
                     help="Dagster asset selection, e.g. 'raw_qa_pool', '+raw_qa_pool', 'group:curation' "
                     "(default: everything)")
    mat.add_argument("--profile", default=None, help="profile name or YAML path (default: $VIDEORFT_PROFILE or tiny)")
    mat.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                     help="Dagster's console log level (default warning: the run's full logs are in the UI)")
    mat.add_argument("--variants", default=None,
                     help="comma-separated Table 2 variants to build, or 'all' (default: the profile's "
                     "training.run_variants)")
    mat.add_argument("--parallel", type=int, default=1, metavar="N",
                     help="run up to N partitions of a batch at once (default 1); with dagster.executor: "
                     "multiprocess each run's steps are processes of their own")
    mat.add_argument("--progress-every", type=float, default=20.0, metavar="SECONDS",
                     help="off a terminal, print the runs' progress (or a heartbeat) at most this often "
                     "(default 20); on a terminal it is one line updated in place")
    ui = sub.add_parser("mlflow-ui", help="serve MLflow's UI over the profile's local store (make mlflow-ui); links "
                        "recorded for another local port redirect to it")
    ui.add_argument("--port", type=int, default=None, help="default: $MLFLOW_PORT, else the profile's (5000)")
    ui.add_argument("--profile", default=None)
    show = sub.add_parser("profile", help="print the resolved profile as JSON (secrets omitted)")
    show.add_argument("--profile", default=None)
    pools = sub.add_parser("pools", help="write the profile's concurrency-pool limits (llm_api, gpu) to the "
                           "instance at $DAGSTER_HOME (idempotent)")
    pools.add_argument("--profile", default=None)
    pods = sub.add_parser("pod-specs", help="print the Kubernetes pod specs the launcher would submit for "
                          "sft_checkpoint, rl_checkpoint and benchmark_scores (YAML; no cluster needed)")
    pods.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["VIDEORFT_PROFILE"] = args.profile
    from videorft.profile import ProfileError, load_profile

    try:
        profile = load_profile()
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "profile":
        print(json.dumps(profile.public_dump(), indent=2))
        return 0
    if args.command == "pools":
        return write_pools(profile.dagster.pools)
    if args.command == "mlflow-ui":
        from dagster_project.mlflow_ui import serve

        return serve(profile, args.port)
    if args.command == "pod-specs":
        import yaml

        from resources.launchers import render_pod_specs

        specs = json.loads(json.dumps(render_pod_specs(profile)))  # no shared objects: no YAML anchors
        print(f"# python -m dagster_project pod-specs --profile {profile.name}\n"
              "# (the asset appends --data/--model/--output-dir flags at launch)")
        print(yaml.safe_dump(specs, sort_keys=False), end="")
        return 0
    variants = None
    if args.variants:
        variants = list(profile.training.variants) if args.variants == "all" else args.variants.split(",")
        unknown = [v for v in variants if v not in profile.training.variants]
        if unknown:
            print(f"error: --variants names unknown variants {unknown}; defined: {list(profile.training.variants)}",
                  file=sys.stderr)
            return 2
    if args.parallel < 1:
        print("error: --parallel must be at least 1", file=sys.stderr)
        return 2
    if args.progress_every <= 0:
        print("error: --progress-every must be above 0 seconds", file=sys.stderr)
        return 2
    return materialize(args.select, variants, args.log_level, args.parallel, args.progress_every)


if __name__ == "__main__":
    sys.exit(main())
