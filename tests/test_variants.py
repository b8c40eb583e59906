"""Table 2's variants as partitions of the graph: wiring, configuration, the CLI's variant filter, T-GRPO's
temporal bonus and the scoreboard's paired differences against values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from dagster_project.__main__ import variant_keys
from dagster_project.definitions import build_definitions
from evaluation.benchmarks import BENCHMARK_NAMES
from evaluation.table2 import build_pooled, build_table, chance_level
from training.config import grpo_overrides, load_recipe
from training.rewards import TemporalReward, temporal_bonus
from videorft.profile import DEFAULT_VARIANTS, ProfileError, load_profile

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "small-profile.yaml"
TABLE2 = ["base", "sft_only", "rl_only", "full", "no_refinement", "format_accuracy", "ungated", "t_grpo"]


def _profile_with(tmp_path: Path, **training: object):
    raw = yaml.safe_load(SMALL.read_text())
    raw["training"] = {**raw["training"], **training}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_profile(str(path)), str(path)


def test_the_paper_variants_partition_training_and_evaluation():
    defs = build_definitions(load_profile(str(SMALL)), str(SMALL))
    graph = defs.resolve_asset_graph()
    assert list(DEFAULT_VARIANTS) == TABLE2
    for key in ("sft_checkpoint", "rl_checkpoint"):
        assert graph.get(dg.AssetKey(key)).partitions_def.get_partition_keys() == TABLE2
    scores = graph.get(dg.AssetKey("benchmark_scores")).partitions_def
    assert isinstance(scores, dg.MultiPartitionsDefinition)
    assert {(k.keys_by_dimension["variant"], k.keys_by_dimension["benchmark"]) for k in scores.get_partition_keys()} \
        == {(v, b) for v in TABLE2 for b in BENCHMARK_NAMES}
    # lineage in the graph: SFT reads both CoT sets (the variant picks one), RL reads the SFT checkpoint, the
    # RL set and its precomputed video embeddings (every shard), every score reads the variant's final model
    parents = {k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys}
               for k in ("sft_checkpoint", "rl_checkpoint", "benchmark_scores")}
    assert parents == {"sft_checkpoint": {"cot_sft_set", "unrefined_cot_sft_set"},
                       "rl_checkpoint": {"rl_set", "rl_probe_set", "sft_checkpoint", "video_embeddings"},
                       "benchmark_scores": {"rl_checkpoint"}}
    assert graph.get(dg.AssetKey("video_embeddings")).partitions_def == \
        graph.get(dg.AssetKey("initial_cots")).partitions_def  # partitioned like the curation stages


def test_each_variant_resolves_to_its_data_and_rewards():
    profile = load_profile(str(SMALL))
    variants = profile.training.variants
    assert [v for v in TABLE2 if variants[v].sft == "unrefined_cot_sft_set"] == ["no_refinement"]
    assert [v for v in TABLE2 if variants[v].sft is None] == ["base", "rl_only"]
    assert [v for v in TABLE2 if variants[v].rl is None] == ["base", "sft_only"]
    grpo = profile.training.recipe_path("grpo")

    def rewards(name: str) -> tuple[list[str], str, bool]:
        recipe = load_recipe(grpo, "grpo", grpo_overrides(variants[name]))
        return recipe.reward.functions, recipe.reward.semantic.mode, recipe.reward.temporal.enabled

    everything = ["format_reward", "accuracy_reward", "semantic_consistency_reward"]
    assert rewards("full") == (everything, "gated", False)
    assert rewards("rl_only") == (everything, "gated", False)
    assert rewards("no_refinement") == (everything, "gated", False)
    assert rewards("ungated") == (everything, "ungated", False)
    assert rewards("format_accuracy") == (["format_reward", "accuracy_reward"], "gated", False)
    assert rewards("t_grpo") == (["format_reward", "accuracy_reward"], "gated", True)


def test_a_variant_is_added_or_removed_by_configuration(tmp_path):
    profile, ref = _profile_with(tmp_path, variants={
        "w4": {"description": "semantic weight 4", "sft": "cot_sft_set",
               "rl": {"overrides": ["reward.semantic.weight=4"]}},
        "ungated": None})
    assert list(profile.training.variants) == [v for v in TABLE2 if v != "ungated"] + ["w4"]
    recipe = load_recipe(profile.training.recipe_path("grpo"), "grpo", grpo_overrides(profile.training.variants["w4"]))
    assert recipe.reward.semantic.weight == 4
    graph = build_definitions(profile, ref).resolve_asset_graph()
    assert "w4" in graph.get(dg.AssetKey("rl_checkpoint")).partitions_def.get_partition_keys()


def test_a_bad_variant_fails_when_the_code_location_loads(tmp_path):
    profile, ref = _profile_with(tmp_path, variants={"typo": {"sft": "cot_sft_set",
                                                              "rl": {"rewards": ["acuracy_reward"]}}})
    with pytest.raises(ValueError, match=r"(?s)training\.variants\.typo: .*unknown reward functions"):
        build_definitions(profile, ref)
    with pytest.raises(ProfileError, match="unknown variants"):
        _profile_with(tmp_path, run_variants=["base", "nope"])
    with pytest.raises(ProfileError, match="partition key"):
        _profile_with(tmp_path, variants={"Bad Name": {}})


def test_the_cli_builds_the_chosen_variants_and_every_other_partition():
    profile = load_profile(str(SMALL))
    graph = build_definitions(profile, str(SMALL)).resolve_asset_graph()
    defined = set(TABLE2)
    training = graph.get(dg.AssetKey("rl_checkpoint")).partitions_def
    scores = graph.get(dg.AssetKey("benchmark_scores")).partitions_def
    shards = graph.get(dg.AssetKey("refined_cots")).partitions_def
    wanted = set(profile.training.run_variants)
    assert wanted == {"base", "sft_only", "full"}
    assert variant_keys(training, training.get_partition_keys(), wanted, defined) == ["base", "sft_only", "full"]
    picked = variant_keys(scores, scores.get_partition_keys(), {"full"}, defined)
    assert len(picked) == len(BENCHMARK_NAMES) and {k.keys_by_dimension["variant"] for k in picked} == {"full"}
    assert variant_keys(shards, shards.get_partition_keys(), {"full"}, defined) == shards.get_partition_keys()


def test_temporal_bonus_matches_a_group_worked_out_by_hand():
    # ordered group: 3 of 4 correct (p = 0.75); shuffled: 2 of 4 (p~ = 0.5): 0.75 >= 0.8 * 0.5, so each
    # correct ordered rollout earns alpha
    assert temporal_bonus([1.0, 0.0, 1.0, 0.5], [1.0, 1.0, 0.0, 0.0]) == [0.3, 0.0, 0.3, 0.3]
    # order does not help: p = 0.25 < 0.8 * 1.0
    assert temporal_bonus([1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]) == [0.0] * 4
    # the boundary p = mu * p~ pays (Video-R1: p >= mu * p~): 0.4 = 0.8 * 0.5
    assert temporal_bonus([1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0], alpha=0.5) == [0.5, 0.5, 0, 0, 0]
    # nothing correct: nothing paid, whatever the shuffled group did
    assert temporal_bonus([0.0, 0.0], [0.0, 0.0]) == [0.0, 0.0]


def test_temporal_reward_scores_each_group_against_its_own_shuffled_rollouts():
    reward = TemporalReward(alpha=0.3, mu=0.8)
    reward.shuffled = {"v1": [1.0, 1.0], "v2": [0.0, 0.0]}
    completions = ["<think>x</think><answer>A</answer>", "<think>x</think><answer>B</answer>",
                   "<think>x</think><answer>A</answer>", "<think>x</think><answer>A</answer>",
                   "<think>x</think><answer>A</answer>"]
    out = reward(completions, sample_id=["v1", "v1", "v2", "v2", "img"], solution=["<answer>A</answer>"] * 5,
                 problem_type=["multiple choice"] * 5)
    # v1: p = 0.5 < 0.8 * 1.0, no bonus; v2: p = 1 >= 0; "img" has no shuffled group (an image): 0
    assert out == [0.0, 0.0, 0.3, 0.3, 0.0]


def test_t_grpo_is_a_registry_entry_named_in_a_recipe_or_switched_on_by_its_settings(tmp_path):
    """Issue 33: the temporal reward is an entry of training.rewards.REWARDS that says it needs the trainer's
    shuffled-frame groups; naming it in reward.functions and reward.temporal.enabled build the same rewards."""
    from training.config import load_recipe
    from training.rewards import REWARDS, SHUFFLED_GROUPS, build_reward_funcs, reward_names, reward_weights

    recipe = Path(__file__).resolve().parent.parent / "configs" / "tiny" / "grpo.yaml"
    named = load_recipe(recipe, "grpo", ["reward.functions=[format_reward,accuracy_reward,temporal_reward]",
                                         "reward.weights=[1.0,1.0,0.5]"]).reward
    switched = load_recipe(recipe, "grpo", ["reward.functions=[format_reward,accuracy_reward]",
                                            "reward.temporal.enabled=true", "reward.weights=[1.0,1.0]"]).reward
    assert reward_names(named) == reward_names(switched) == ["format_reward", "accuracy_reward", "temporal_reward"]
    assert reward_weights(named) == [1.0, 1.0, 0.5] and reward_weights(switched) == [1.0, 1.0, 1.0]
    for config in (named, switched):
        funcs = build_reward_funcs(config)
        assert [f.__name__ for f in funcs] == reward_names(config)
        needing = [f for f in funcs if SHUFFLED_GROUPS in getattr(f, "needs", ())]
        assert [f.__name__ for f in needing] == ["temporal_reward"]  # what the trainer feeds shuffled groups
    assert SHUFFLED_GROUPS in REWARDS["temporal_reward"].needs


def _log(scores: list[float], videos: list[str], prefix: str = "q") -> list[dict[str, object]]:
    """Multiple-choice samples whose prediction is right (1) or wrong (0) against answer A."""
    return [{"sample_id": f"{prefix}{i}", "video": v, "problem_type": "multiple choice", "answer": "A",
             "options": ["A. x", "B. y", "C. z", "D. w"], "category": "c",
             "prediction": "<answer>A</answer>" if s else "<answer>B</answer>"} for i, (s, v) in
            enumerate(zip(scores, videos, strict=True))]


def test_scoreboard_differences_match_values_worked_out_by_hand():
    videos = ["v1", "v1", "v2", "v3"]
    full = _log([1, 0, 1, 0], videos)  # 50 %
    sft = _log([1, 1, 1, 0], videos)  # 75 %: +25 points on the same questions
    logs = {("full", "mvbench"): full, ("sft_only", "mvbench"): sft}
    table = build_table(logs, reference="full", iterations=400, seed=0).set_index("variant")
    assert table.at["full", "official"] == 50.0 and table.at["sft_only", "official"] == 75.0
    assert table.at["sft_only", "delta_official"] == 25.0 and table.at["full", "delta_official"] == 0.0
    # the only video where they differ is v1 (+1 question of 2 on it): a resample's difference is
    # (number of v1 draws) / (questions drawn), never negative, and 0 when v1 is not drawn
    assert table.at["sft_only", "delta_official_ci95_low"] == 0.0
    assert 25.0 < table.at["sft_only", "delta_official_ci95_high"] <= 100.0
    assert list(table.reset_index().columns[:11]) == ["variant", "benchmark", "samples", "failed", "chance",
                                                     "videorft", "videorft_ci95_low", "videorft_ci95_high",
                                                     "official", "official_ci95_low", "official_ci95_high"]
    assert table.at["full", "chance"] == 25.0  # four options each


def test_pooled_multiple_choice_counts_each_benchmark_question_once_against_chance():
    logs = {("base", "mvbench"): _log([0, 0], ["v1", "v2"]), ("base", "mmvu"): _log([0, 1], ["v1", "v2"]),
            ("full", "mvbench"): _log([1, 1], ["v1", "v2"]), ("full", "mmvu"): _log([1, 0], ["v1", "v2"])}
    pooled = build_pooled(logs, reference="full", iterations=200).set_index("variant")
    assert pooled.at["base", "questions"] == 4  # same sample ids in two benchmarks are two questions
    assert pooled.at["base", "accuracy"] == 25.0 and pooled.at["full", "accuracy"] == 75.0
    assert pooled.at["full", "delta_vs_base"] == 50.0 and pooled.at["base", "delta_vs_reference"] == -50.0
    assert pooled.at["full", "chance"] == 25.0 == chance_level(logs[("full", "mvbench")])
    assert pooled.at["full", "lenient"] == 75.0  # ours beside the reference protocol's (here they agree)
    assert isinstance(pooled, pd.DataFrame)


def test_pooled_bootstrap_counts_one_video_asked_in_two_benchmarks_as_one_cluster():
    from evaluation.scoring import bootstrap, score_samples
    from evaluation.table2 import POOLED, pooled_multiple_choice

    logs = {("base", "mvbench"): _log([1, 0], ["v1", "v2"]), ("base", "mmvu"): _log([1, 0], ["v1", "v2"])}
    scored = score_samples(pooled_multiple_choice(logs)["base"], "official")
    # two clusters (v1: both right, v2: both wrong): a resample scores 1, 0.5 or 0 with chances 1/4, 1/2, 1/4,
    # so its standard error is sqrt(1/8) = 0.354; four clusters (one per benchmark and video) would give 0.25
    assert abs(bootstrap(POOLED, scored, "official", iterations=4000)["stderr"] - 0.125 ** 0.5) < 0.02


def test_pooled_subsets_split_the_questions_by_a_phrase_and_compare_like_with_like():
    def asked(log: list[dict[str, object]], questions: list[str]) -> list[dict[str, object]]:
        return [{**s, "problem": q} for s, q in zip(log, questions, strict=True)]

    questions = ["What colour is the Background?", "Which shape moves?", "What colour is the background?"]
    videos = ["v1", "v2", "v3"]
    logs = {("base", "mvbench"): asked(_log([0, 1, 0], videos), questions),
            ("full", "mvbench"): asked(_log([1, 0, 1], videos), questions)}
    pooled = build_pooled(logs, reference="full", iterations=200, subsets={"background": "colour is the background"})
    rows = pooled.set_index(["variant", "subset"])
    assert rows.at[("full", "all"), "questions"] == 3
    assert rows.at[("full", "background"), "questions"] == 2 and rows.at[("full", "background"), "accuracy"] == 100.0
    assert rows.at[("full", "not_background"), "accuracy"] == 0.0
    assert rows.at[("full", "background"), "delta_vs_base"] == 100.0  # both background questions, paired
    assert rows.at[("full", "not_background"), "delta_vs_base"] == -100.0


def test_the_table2_figure_draws_a_chance_line_and_keeps_the_papers_numbers_in_their_own_table():
    from assets.evaluation import _table2_figure, paper_table

    logs = {("full", "mvbench"): _log([1, 0, 1, 0], ["v1", "v1", "v2", "v3"])}
    figure = _table2_figure(build_table(logs, reference="full", iterations=50), ["base", "full"])
    axis = figure.axes[0]
    labels = axis.get_legend_handles_labels()[1]
    assert sorted(labels) == ["full", "uniform chance"]  # no paper bars beside the miniature's
    chance = next(c for c in axis.collections if c.get_label() == "uniform chance")
    assert chance.get_segments()[0][0][1] == 25.0  # four options each
    assert set(paper_table()["benchmark"]) == {"vsi_bench", "videommmu", "mmvu", "mvbench", "tempcompass",
                                               "videomme"}


def test_table2_rows_follow_the_profiles_variant_order_not_the_alphabet():
    from evaluation.table2 import build_pooled, build_table, in_table2_order

    logs = {(v, "mvbench"): _log([1, 0, 1, 0], ["a", "b", "c", "d"]) for v in ("full", "base", "sft_only")}
    order = ["base", "sft_only", "rl_only", "full"]
    assert in_table2_order(["full", "zeta", "base", "sft_only"], order) == ["base", "sft_only", "full", "zeta"]
    assert list(build_table(logs, reference="full", iterations=20, order=order)["variant"]) == [
        "base", "sft_only", "full"]
    assert list(dict.fromkeys(build_pooled(logs, reference="full", iterations=20, order=order)["variant"])) == [
        "base", "sft_only", "full"]


def test_the_scoreboard_checks_that_make_runs_variants_are_scored_on_enough_questions():
    from assets.evaluation import scoreboard_checks
    from evaluation.benchmarks import BENCHMARK_NAMES
    from videorft.profile import load_profile

    prof = load_profile("tiny", env={})
    full = pd.DataFrame([{"variant": v, "benchmark": b, "samples": 64, "failed": 0}
                         for v in prof.training.run_variants for b in BENCHMARK_NAMES])
    scored, enough = scoreboard_checks(full, prof)
    assert scored.passed and enough.passed and enough.metadata["fewest"].value == 64
    few = full.assign(failed=[0] * (len(full) - 1) + [40])  # one cell with 24 scored questions
    missing = full.iloc[1:]
    assert not scoreboard_checks(few, prof)[1].passed
    assert "24" in scoreboard_checks(few, prof)[1].metadata["below"].value
    assert not scoreboard_checks(missing, prof)[0].passed
    assert not any(c.passed for c in scoreboard_checks(full.iloc[0:0], prof))  # nothing scored yet


def test_the_scoreboard_run_tracks_each_cell_as_a_metric():
    from evaluation.table2 import scoreboard_metrics

    logs = {("base", "mvbench"): _log([0, 1], ["v1", "v2"]), ("full", "mvbench"): _log([1, 1], ["v1", "v2"])}
    metrics = scoreboard_metrics(build_table(logs, reference="full", iterations=20),
                                 build_pooled(logs, reference="full", iterations=20))
    assert metrics["full/mvbench/official"] == 100.0 and metrics["base/mvbench/official"] == 50.0
    assert metrics["base/mvbench/chance"] == 25.0 and metrics["full/pooled_all/accuracy"] == 100.0
    assert all(isinstance(v, float) for v in metrics.values())


def test_table2_reads_inline_one_line_per_variant_in_table2_order_with_chance():
    from evaluation.table2 import variant_lines

    logs = {("full", "mvbench"): _log([1, 0], ["v1", "v2"]), ("base", "mvbench"): _log([0, 0], ["v1", "v2"]),
            ("base", "mmvu"): _log([1, 1], ["v1", "v2"])}
    lines = variant_lines(build_table(logs, reference="full", iterations=20), order=["base", "sft_only", "full"])
    assert list(lines) == ["base", "full", "chance"]
    # benchmarks in the registry's order, a cell never scored as "-"
    assert lines["base"] == "mmvu 100.0 · mvbench 0.0" and lines["full"] == "mmvu - · mvbench 50.0"
    assert lines["chance"] == "mmvu 25.0 · mvbench 25.0"
