"""Scoring: extraction, both protocols against hand-computed cases, the statistics, and the rescore CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.protocols import mra_official, mra_videorft
from evaluation.scoring import (
    aggregate,
    paired_bootstrap,
    sample_score,
    score_benchmark,
    score_samples,
)
from videorft.answers import extract_prediction as extract_answer

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ["A. red", "B. green", "C. blue", "D. yellow"]


@pytest.mark.parametrize("output, expected", [
    ("<think>hmm</think><answer>A.</answer>", "A."),
    ("<think>x</think><ANSWER> b </ANSWER>", "b"),
    ("<think>x</think> C", "C"),  # no answer tag: the text after </think>
    ("<think>x</think><answer>D", "D"),  # cut off before </answer>
    ("B", "B"),
    ("", ""),
    (None, ""),
    ("<answer>A</answer> then <answer>C</answer>", "C"),  # the last one counts
])
def test_answer_extraction_tolerates_case_tags_and_truncation(output, expected):
    assert extract_answer(output) == expected


@pytest.mark.parametrize("prediction, score", [
    ("<answer>A.</answer>", 1.0), ("<answer>a</answer>", 1.0), ("<answer>(A)</answer>", 1.0),
    ("<answer>red</answer>", 1.0), ("A", 1.0), ("<think>so</think>The answer is A", 1.0),
    ("<answer>B</answer>", 0.0), ("", 0.0), ("<answer></answer>", 0.0),
    ("<think>Watching the video, I see a red circle", 0.0),  # an "a" in prose is not option A
])
def test_lenient_multiple_choice_matches_the_letter_after_normalising(prediction, score):
    assert sample_score("multiple choice", prediction, "<answer>A</answer>", OPTIONS, "lenient") == score


@pytest.mark.parametrize("prediction, videorft, videomme, vsi_bench", [
    ("<answer>A</answer>", 1.0, 1.0, 1.0),
    ("<answer>a</answer>", 0.0, 0.0, 1.0),         # the script compares strings; VSI-Bench ignores case
    ("<ANSWER>A</ANSWER>", 0.0, 1.0, 1.0),         # the script's tag is lower case: it compares the whole reply
    ("<answer>The answer is A</answer>", 0.0, 1.0, 0.0),  # VSI-Bench reads the first word
    ("<answer>(A)</answer>", 0.0, 1.0, 0.0),
    ("<answer>red</answer>", 0.0, 0.0, 0.0),       # the option's text: no reference reads it
    ("<answer>A</answer><answer>B</answer>", 1.0, 0.0, 0.0),  # the script: the first block; lmms-eval's feed: the last
])
def test_reference_protocols_read_a_reply_as_their_references_do(prediction, videorft, videomme, vsi_bench):
    assert sample_score("multiple choice", prediction, "A", OPTIONS, "videorft") == videorft
    assert sample_score("multiple choice", prediction, "A", OPTIONS, "official", "videomme") == videomme
    assert sample_score("multiple choice", prediction, "A", OPTIONS, "official", "vsi_bench") == vsi_bench


def test_official_needs_the_benchmark_whose_task_decides():
    with pytest.raises(ValueError, match="per benchmark"):
        sample_score("multiple choice", "A", "A", OPTIONS, "official")


def test_mra_at_the_boundary_differs_between_protocols():
    # |3 - 4| / 4 = 0.25 meets theta = 0.75 only with <=: 6/10 officially, 5/10 in the paper's script
    assert sample_score("regression", "<answer>3</answer>", "4", None, "official", "vsi_bench") == pytest.approx(0.6)
    assert sample_score("regression", "<answer>3</answer>", "4", None, "videorft") == pytest.approx(0.5)
    assert mra_videorft(4.0, 4.0) == 1.0
    assert mra_official(5.9, 4.0) == pytest.approx(0.1)  # err 0.475
    assert mra_official(None, 4.0) == 0.0
    assert sample_score("regression", "<answer>about 3.5 m</answer>", "3.5", None, "lenient") == 1.0
    assert sample_score("regression", "<answer>about 3.5 m</answer>", "3.5", None, "official", "vsi_bench") == 0.0
    assert sample_score("regression", "<answer>3.5 m</answer>", "3.5", None, "official", "vsi_bench") == 1.0
    assert sample_score("regression", "no number", "3.5", None, "lenient") == 0.0


def test_numerical_is_exact_after_rounding_to_two_decimals():
    assert sample_score("numerical", "<answer>3.141</answer>", "<answer>3.14</answer>", None, "videorft") == 1.0
    assert sample_score("numerical", "<answer>3.2</answer>", "3.14", None, "videorft") == 0.0


def _vsi(category: str, problem_type: str, prediction: str, answer: str, video: str) -> dict:
    return {"benchmark": "vsi_bench", "category": category, "problem_type": problem_type,
            "prediction": f"<answer>{prediction}</answer>", "answer": answer, "video": video}


def test_vsi_bench_overall_paper_vs_official():
    samples = [
        _vsi("object_counting", "regression", "3", "4", "v1"),            # MRA 0.5 paper, 0.6 official
        _vsi("object_rel_direction_easy", "multiple choice", "A", "A", "v1"),    # 1
        _vsi("object_rel_direction_medium", "multiple choice", "B", "A", "v2"),  # 0
        _vsi("object_rel_direction_hard", "multiple choice", "A", "A", "v2"),    # 1
        _vsi("route_planning", "multiple choice", "C", "C", "v3"),               # 1
    ]
    # paper: (mean MC accuracy 3/4 + mean MRA 0.5) / 2
    assert aggregate("vsi_bench", score_samples(samples, "videorft"), "videorft") == pytest.approx((0.75 + 0.5) / 2)
    # official: tasks counting 0.6, rel_direction mean(1, 0, 1) = 2/3, route 1 -> mean of 3 tasks
    assert aggregate("vsi_bench", score_samples(samples, "official"), "official") == pytest.approx(
        (0.6 + 2 / 3 + 1.0) / 3)


def test_mvbench_official_is_the_mean_of_task_accuracies():
    rows = [{"benchmark": "mvbench", "category": c, "problem_type": "multiple choice", "prediction": p,
             "answer": "A", "video": f"v{i}"} for i, (c, p) in enumerate(
                 [("action_sequence", "A"), ("action_sequence", "A"), ("action_sequence", "A"),
                  ("scene_transition", "B")])]
    result = score_benchmark("mvbench", rows, iterations=50)
    assert result["videorft"]["overall"] == pytest.approx(0.75)  # per question
    assert result["official"]["overall"] == pytest.approx(0.5)   # mean of (1.0, 0.0)
    assert result["official"]["categories"] == {"action_sequence": 1.0, "scene_transition": 0.0}


def test_failed_samples_are_counted_never_scored_as_wrong():
    rows = [{"benchmark": "mmvu", "category": "c", "problem_type": "multiple choice",
             "prediction": "<answer>A</answer>", "answer": "A", "video": "v1"},
            {"benchmark": "mmvu", "category": "c", "problem_type": "multiple choice", "prediction": None,
             "answer": "A", "video": "v2", "failed": True, "error": "broken video"}]
    result = score_benchmark("mmvu", rows, iterations=0)
    assert result["failed"] == 1 and result["scored"] == 1
    assert result["videorft"]["overall"] == 1.0 and result["videorft"]["stderr"] is None


def test_bootstrap_clusters_by_video_and_paired_bootstrap_finds_a_real_difference():
    a, b = [], []
    for v in range(40):
        for q in range(3):
            base = {"benchmark": "mmvu", "category": "c", "problem_type": "multiple choice", "answer": "A",
                    "video": f"v{v}", "sample_id": f"{v}-{q}"}
            a.append({**base, "prediction": "<answer>A</answer>" if v % 2 else "<answer>B</answer>"})
            b.append({**base, "prediction": "<answer>A</answer>" if v % 10 else "<answer>B</answer>"})
    result = score_benchmark("mmvu", a, iterations=300)
    low, high = result["official"]["ci95_low"], result["official"]["ci95_high"]
    assert low < 0.5 < high and result["official"]["stderr"] > 0.05  # 40 clusters, not 120 independent draws
    diff = paired_bootstrap("mmvu", a, b, "official", iterations=300)
    assert diff["delta"] == pytest.approx(0.9 - 0.5) and diff["p_value"] < 0.01 and diff["paired"] == 120
    assert paired_bootstrap("mmvu", a, a, "official", iterations=50)["p_value"] == 1.0


def test_rescore_cli_prints_every_protocol_per_benchmark(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        _vsi("object_counting", "regression", "3", "4", "v1"),
        _vsi("route_planning", "multiple choice", "C", "C", "v2"),
        {"benchmark": "videomme", "category": "short", "problem_type": "multiple choice",
         "prediction": "<answer>b</answer>", "answer": "B", "video": "m1", "extra": {"domain": "Knowledge"}},
    ]))
    out = subprocess.run([sys.executable, "-m", "evaluation.rescore", str(log), "--bootstrap", "20"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) == {"vsi_bench", "videomme"}
    assert result["vsi_bench"]["videorft"]["overall"] == pytest.approx(0.75)  # (1 + 0.5) / 2
    assert result["vsi_bench"]["official"]["overall"] == pytest.approx(0.8)  # (0.6 + 1) / 2
    assert result["vsi_bench"]["official"]["categories"]["object_counting"] == pytest.approx(0.6)
    assert result["videomme"]["official"]["categories"] == {"short": 0.0}  # extract_mcq_answer reads capitals
    assert result["videomme"]["lenient"]["categories"] == {"short": 1.0}
    assert result["videomme"]["lenient"]["breakdowns"] == {"domain": {"Knowledge": 1.0}}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"benchmark": "mmvu"}\n')
    out = subprocess.run([sys.executable, "-m", "evaluation.rescore", str(bad)], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "bad.jsonl:1: missing category" in out.stderr


# MRA boundary tables, worked out by hand from each reference's definition:
# official (lmms-eval): e = |p - g| / g in float64, thresholds numpy.linspace(0.5, 0.95, 10), hit if e <= 1 - t;
# videorft (the paper's script): e = |p - g| / (|g| + 1e-8) in float32, thresholds float32(0.5 + 0.05 k), e < 1 - t.
MRA_TABLE = [
    # p, g, official, videorft, why
    (3, 4, 0.6, 0.5, "e = 0.25 exactly in both; t = 0.75 hits only with <="),
    (5, 4, 0.6, 0.5, "the same error from above"),
    (4.73, 4.3, 0.8, 0.9, "float64 e = 0.10000000000000014 > 1 - 0.9 = 0.09999999999999998; float32 e = 0.09999996 "
                          "< 1 - float32(0.9) = 0.10000002"),
    (5.25, 5, 1.0, 1.0, "e = 0.05: float64 0.05 <= 1 - 0.95 = 0.050000000000000044; float32 0.05 < 0.05000001"),
    (3.3, 3, 0.9, 0.9, "float64 e = 0.09999999999999994 <= 0.09999999999999998; float32 e = 0.09999998 < 0.10000002"),
    (2, 4, 0.1, 0.0, "e = 0.5: only t = 0.5 with <="),
    (4, 4, 1.0, 1.0, "exact"),
    (0, 0, 1.0, 1.0, "ground truth 0: exact zero only (the script's epsilon gives the same)"),
    (1, 0, 0.0, 0.0, "ground truth 0, wrong"),
]


@pytest.mark.parametrize("p, g, official, videorft, why", MRA_TABLE)
def test_mra_reproduces_each_reference_at_the_boundaries(p, g, official, videorft, why):
    assert mra_official(float(p), float(g)) == pytest.approx(official, abs=1e-12), why
    assert mra_videorft(float(p), float(g)) == pytest.approx(videorft, abs=1e-6), why  # a float32 mean
    answer = f"<answer>{p}</answer>"
    if g != 0:
        assert sample_score("regression", answer, str(g), None, "official", "vsi_bench") == pytest.approx(
            official, abs=1e-12)
        assert sample_score("regression", answer, str(g), None, "videorft") == pytest.approx(videorft, abs=1e-6)


@pytest.mark.parametrize("hedge", ["<answer>A or B</answer>", "<answer>A, B</answer>", "<answer>A/C</answer>",
                                   "<think>x</think>It is either A or B", "<answer>A B C D</answer>",
                                   "<answer>a b</answer>", "The answer is A, but B is also possible"])
def test_lenient_reading_does_not_credit_a_hedge(hedge):
    assert sample_score("multiple choice", hedge, "<answer>A</answer>", OPTIONS, "lenient") == 0.0


def test_numerical_follows_the_scripts_decimal_rule_only_under_videorft():
    assert sample_score("numerical", "<answer>3.0</answer>", "<answer>3</answer>", None, "videorft") == 0.0
    assert sample_score("numerical", "<answer>1,000</answer>", "<answer>1000</answer>", None, "videorft") == 0.0
    assert sample_score("numerical", "<answer>3.0</answer>", "<answer>3</answer>", None, "lenient") == 1.0
    assert sample_score("numerical", "<answer>three</answer>", "<answer>3</answer>", None, "lenient") == 0.0


def test_mvbench_official_leaves_empty_predictions_out_of_the_task_denominator():
    def row(task: str, prediction: str, answer: str, video: str) -> dict:
        return {"benchmark": "mvbench", "category": task, "problem_type": "multiple choice", "options": OPTIONS,
                "prediction": prediction, "answer": answer, "video": video}

    samples = [row("action_sequence", "<answer>A</answer>", "A", "v1"), row("action_sequence", "", "A", "v2"),
               row("object_shuffle", "", "B", "v3")]
    official = aggregate("mvbench", score_samples(samples, "official"), "official")
    paper = aggregate("mvbench", score_samples(samples, "videorft"), "videorft")
    assert official == pytest.approx((1.0 + 0.0) / 2)  # action_sequence 1/1 answered; object_shuffle none: 0
    assert paper == pytest.approx(1 / 3)  # the paper's script counts an empty prediction wrong


def test_every_benchmark_names_an_aggregate_and_a_fixture_format_that_exist():
    """Issue 33: the scoring and the fixtures follow a benchmark's registry entry, never its name."""
    import inspect

    from evaluation import fixtures, scoring
    from evaluation.benchmarks import BENCHMARKS
    from evaluation.fixtures import FIXTURE_FORMATS
    from evaluation.scoring import AGGREGATES

    for name, bench in BENCHMARKS.items():
        assert bench.aggregate in AGGREGATES, name
        assert bench.fixture_format in FIXTURE_FORMATS, name
        for module in (scoring, fixtures):
            assert f'"{name}"' not in inspect.getsource(module), f"{module.__name__} branches on {name!r}"
