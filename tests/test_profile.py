from __future__ import annotations

import pytest

from videorft.profile import ProfileError, available_profiles, load_profile


def test_the_three_profiles_load_and_tiny_is_the_default():
    assert {"tiny", "paper-3b", "paper-7b"} <= set(available_profiles())
    tiny = load_profile(env={})
    assert tiny.name == "tiny"
    assert tiny.uses_synthetic_world
    assert tiny.world is not None and (tiny.world.videos, tiny.world.images, tiny.world.questions) == (120, 20, 600)
    assert tiny.resolved_storage_root().endswith(".videorft/storage")
    paper = load_profile("paper-7b", env={})
    assert paper.video.train.frames == 16 and paper.video.train.max_pixels == 128 * 28 * 28
    assert paper.video.eval.frames == 32 and paper.video.eval.max_pixels == 256 * 28 * 28


def test_profile_env_variable_selects_the_profile():
    assert load_profile(env={"VIDEORFT_PROFILE": "paper-3b"}).name == "paper-3b"


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nsources: [{name: a, uri: /tmp/a.json}]\ningest: {shards: 2, shardz: 3}\n")
    with pytest.raises(ProfileError, match=r"ingest\.shardz: unknown key"):
        load_profile(str(bad), env={})


def test_bad_value_is_an_error_naming_the_key_and_the_value(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nsources: [{name: a, uri: /tmp/a.json}]\ningest: {max_quarantine_rate: 3}\n")
    with pytest.raises(ProfileError) as err:
        load_profile(str(bad), env={})
    assert "ingest.max_quarantine_rate" in str(err.value) and "3" in str(err.value)


def test_frame_spec_needs_exactly_one_rule(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nsources: [{name: a, uri: /tmp/a.json}]\nvideo: {train: {frames: 16, fps: 2}}\n")
    with pytest.raises(ProfileError, match=r"video\.train"):
        load_profile(str(bad), env={})


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ProfileError, match=r"available: .*tiny"):
        load_profile("nope", env={})


def test_contract_environment_variables_override_the_profile():
    env = {
        "VIDEORFT_STORAGE_ROOT": "s3://bucket/prefix",
        "VIDEORFT_QA_SOURCES": "s3://bucket/a.json, /data/b.jsonl",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "VIDEORFT_DESCRIBER_BASE_URL": "http://127.0.0.1:8000/v1",
        "VIDEORFT_DESCRIBER_MODEL": "gpt-4o-mini",
        "VIDEORFT_REASONER_API_KEY": "sk-secret-123",
    }
    p = load_profile("tiny", env=env)
    assert p.resolved_storage_root() == "s3://bucket/prefix"
    assert [s.uri for s in p.sources] == ["s3://bucket/a.json", "/data/b.jsonl"]
    assert not p.uses_synthetic_world
    assert p.resolved_mlflow_uri() == "http://127.0.0.1:5000"
    assert p.experts["describer"].base_url == "http://127.0.0.1:8000/v1"
    assert p.experts["describer"].model == "gpt-4o-mini"
    assert p.experts["reasoner"].api_key is not None
    assert p.experts["reasoner"].api_key.get_secret_value() == "sk-secret-123"
    assert "sk-secret-123" not in repr(p) and "sk-secret-123" not in str(p.public_dump())


def test_api_keys_in_profile_files_are_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nsources: [{name: a, uri: /tmp/a.json}]\nexperts: {refiner: {model: m, api_key: k}}\n")
    with pytest.raises(ProfileError, match="VIDEORFT_REFINER_API_KEY"):
        load_profile(str(bad), env={})


def test_mlflow_links_point_at_the_ui_in_use():
    local = load_profile("tiny", env={})
    assert local.resolved_mlflow_ui_url(env={}) == "http://127.0.0.1:5000"  # `make mlflow-ui`'s address
    assert local.resolved_mlflow_ui_url(env={"MLFLOW_PORT": "5123"}) == "http://127.0.0.1:5123"
    served = load_profile("tiny", env={"MLFLOW_TRACKING_URI": "http://mlflow.internal:8080/"})
    assert served.resolved_mlflow_ui_url(env={}) == "http://mlflow.internal:8080"  # the server in use
    chosen = load_profile("tiny", env={"MLFLOW_TRACKING_URI": "http://mlflow:5000",
                                       "MLFLOW_UI_URL": "https://mlflow.example.org/"})
    assert chosen.resolved_mlflow_ui_url(env={}) == "https://mlflow.example.org"  # what the user configured


def test_a_probe_world_sharing_a_seed_with_the_training_world_or_the_fixtures_is_refused(tmp_path):
    for clash in ("world: {seed: 5}\n", "evaluation: {fixtures: {world: {seed: 5}}}\n"):
        bad = tmp_path / "p.yaml"
        bad.write_text("name: x\nsources: [{name: a, uri: /tmp/a.json}]\n" + clash
                       + "training: {probe_world: {seed: 5}}\n")
        with pytest.raises(ProfileError, match=r"training\.probe_world\.seed: 5 is also"):
            load_profile(str(bad), env={})
    assert load_profile("tiny", env={}).training.probe_world.seed == 3001
