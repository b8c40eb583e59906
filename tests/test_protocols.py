"""The reference protocols reproduce their references per sample (the references' own code, vendored under
tests/references/), the official protocol's feed is documented, and no profile scores stand-in data silently."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from evaluation.benchmarks import BENCHMARKS, check_sources
from evaluation.scoring import sample_score
from videorft.answers import extract_prediction
from videorft.profile import ProfileError, load_profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "references"))

import agreement  # noqa: E402

OPTIONS = ["A. red", "B. green", "C. blue", "D. yellow"]


@pytest.fixture(scope="module")
def compared() -> list[dict]:
    return list(agreement.compare(agreement.generate(per_case=4, seed=0)))


def test_every_protocol_reproduces_its_reference_on_every_generated_reply(compared):
    table = agreement.table(compared)
    assert {(t["benchmark"], t["protocol"]) for t in table} >= {(b, p) for b in BENCHMARKS
                                                               for p in ("videorft", "official")}
    wrong = [(r["benchmark"], r["protocol"], r["case"], r["reply"], r["answer"], r["ours"], r["reference"])
             for r in compared if not r["agree"] and not r["deviation"]]
    assert not wrong, wrong[:10]


def test_the_generated_log_covers_the_malformed_cases_the_references_disagree_on(compared):
    cases = {r["case"] for r in compared}
    assert {"lower case", "the answer is", "parenthesised", "option text", "unclosed tag", "missing tags",
            "two answer blocks", "with unit", "thousands separator", "empty", "well-formed"} <= cases
    # the log is not trivially scored: each protocol credits some replies and refuses others per benchmark
    for benchmark in BENCHMARKS:
        for protocol in ("videorft", "official"):
            scores = {r["ours"] > 0 for r in compared if r["benchmark"] == benchmark and r["protocol"] == protocol}
            assert scores == {True, False}, (benchmark, protocol)


def test_the_only_disagreement_is_the_documented_mra_of_a_zero_truth(compared):
    documented = {r["deviation"] for r in compared if not r["agree"]}
    assert documented <= {agreement.deviation({"benchmark": "vsi_bench"}, "official", ZeroDivisionError())}
    reply = "<answer>0</answer>"
    assert sample_score("regression", reply, "0", None, "official", "vsi_bench") == 1.0
    with pytest.raises(ZeroDivisionError):
        agreement.official_reference({"benchmark": "vsi_bench", "problem_type": "regression", "options": [],
                                      "answer": "0", "reply": reply})


@pytest.mark.parametrize("reply, fed", [
    ("<think>x</think><answer>A</answer> more <answer>C</answer>", "C"),  # the last closed block
    ("<think>x</think><ANSWER> b </ANSWER>", "b"),                          # any case of tag, stripped
    ("<think>x</think><answer>D because", "D because"),                    # an unclosed block
    ("<think>it is A</think> The answer is B", "The answer is B"),         # the text after </think>
    ("B. green", "B. green"),                                               # else the whole reply
    ("", ""),
])
def test_the_official_protocol_is_fed_the_extracted_answer_text(reply, fed):
    assert extract_prediction(reply) == fed
    # VideoMME's task sees the fed text: "The answer is B" is B, the reasoning's "A" is never read
    expected = agreement.lmms_eval.videomme_process_results(
        {"answer": "B", "domain": "d", "sub_category": "s", "task_type": "t", "question_id": "q",
         "duration": "short", "videoID": "v"}, [fed])["videomme_perception_score"]["score"]
    assert sample_score("multiple choice", reply, "B", OPTIONS, "official", "videomme") == expected


def test_a_profile_without_a_synthetic_world_is_refused_when_a_benchmark_has_no_source(tmp_path):
    folder = tmp_path / "paper-3b-partial"
    shutil.copytree(ROOT / "configs" / "paper-3b", folder)
    data = yaml.safe_load((folder / "profile.yaml").read_text())
    del data["evaluation"]["benchmarks"]["mvbench"]
    (folder / "profile.yaml").write_text(yaml.safe_dump(data))
    profile = load_profile(str(folder / "profile.yaml"), env={})
    with pytest.raises(ProfileError) as refused:
        check_sources(profile)
    message = str(refused.value)
    assert "evaluation.benchmarks.mvbench missing" in message and "synthetic world" in message
    assert "vsi_bench" not in message  # only the benchmark without data is named
    print(message)  # the message a user sees (pytest -s)

    from assets.evaluation import build_evaluation_assets

    with pytest.raises(ProfileError, match=r"evaluation\.benchmarks\.mvbench"):  # at code-location load
        build_evaluation_assets(profile)


def test_only_a_profile_with_a_synthetic_world_evaluates_on_fixtures_and_says_so(tmp_path, monkeypatch):
    from evaluation.run import benchmark_sources

    assert check_sources(load_profile("paper-3b", env={})) == []  # every benchmark has its data
    monkeypatch.setenv("VIDEORFT_STORAGE_ROOT", str(tmp_path))
    tiny = load_profile("tiny", env={"VIDEORFT_STORAGE_ROOT": str(tmp_path)})
    assert tiny.world is not None and check_sources(tiny) == list(BENCHMARKS)
    sources = benchmark_sources(tiny, ["mvbench"])
    assert sources["mvbench"]["data"] == "fixtures"
