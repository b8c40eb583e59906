"""Production back ends on this machine: S3 through moto's server on 127.0.0.1, Dagster on PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import s3fs
from graph_helpers import run_pool

from curation.ingest import QASource, ingest, read_pool
from dagster_project.definitions import build_definitions
from videorft.media import load_frames, probe
from videorft.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent


def _upload(local: Path, bucket: str, prefix: str, endpoint: str) -> None:
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.put(str(local) + "/", f"{bucket}/{prefix}/", recursive=True)


def test_s3_round_trip_probe_decode_ingest_and_materialize(s3_env, moto_endpoint, small_world, isolated_env,
                                                            monkeypatch, tmp_path):
    bucket = s3_env
    _upload(Path(small_world.root), bucket, "world", moto_endpoint)
    video = f"s3://{bucket}/world/videos/v0001.mp4"
    info = probe(video, cache_dir=tmp_path / "cache")
    assert info.kind == "video" and info.num_frames > 0
    assert load_frames(video, frames=4, cache_dir=tmp_path / "cache").array.shape[0] == 4
    # the second read is served from the local media cache, not downloaded again
    assert len(list((tmp_path / "cache").rglob("*.mp4"))) == 1

    sources = [QASource("v", f"s3://{bucket}/world/qa_videos.json"),
               QASource("i", f"s3://{bucket}/world/qa_images.jsonl")]
    result = ingest(sources, shards=2, media_cache_dir=str(tmp_path / "cache"))
    assert len(result.pool) == 80 and result.pool["media_uri"].str.startswith(f"s3://{bucket}/world/").all()

    monkeypatch.setenv("VIDEORFT_STORAGE_ROOT", f"s3://{bucket}/storage")
    monkeypatch.setenv("VIDEORFT_QA_SOURCES", ",".join(s.uri for s in sources))
    ref = isolated_env["VIDEORFT_PROFILE"]
    defs = build_definitions(load_profile(ref), ref)
    with dg.instance_for_test() as instance:
        run = run_pool(defs, instance)
        assert run.success
        manifest = run.output_for_node("raw_qa_pool")
    assert manifest["uri"].startswith(f"s3://{bucket}/storage/raw_qa_pool/v-")
    assert len(read_pool(manifest)) == 80
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto_endpoint})
    assert fs.exists(f"{bucket}/storage/manifests/raw_qa_pool.json")
    assert fs.exists(f"{bucket}/storage/raw_qa_pool/media_probe.parquet")


@pytest.mark.services
def test_raw_qa_pool_materializes_on_a_postgres_backed_instance(postgres_url, isolated_env, s3_env, moto_endpoint,
                                                                monkeypatch, tmp_path):
    home = tmp_path / "pg_home"
    home.mkdir()
    shutil.copy(ROOT / "docker" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", s3_env)  # step logs go to S3 (moto)
    ref = isolated_env["VIDEORFT_PROFILE"]
    defs = build_definitions(load_profile(ref), ref)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = run_pool(defs, instance)
        assert result.success
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_qa_pool"))
        assert event.asset_materialization.metadata["dagster/row_count"].value == 80
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("raw_qa_pool"), "quarantine_rate")])
        assert checks


def test_postgres_instance_yaml_names_only_environment_settings():
    text = (ROOT / "docker" / "dagster.yaml").read_text()
    assert "env: DAGSTER_POSTGRES_URL" in text and "password" not in text.lower()


def test_a_checkpoint_published_to_s3_is_evaluated_from_a_local_copy_fetched_once(s3_env, moto_endpoint,
                                                                                  isolated_env, tmp_path):
    import training  # noqa: F401
    from training.model import build_tiny_model, build_tiny_processor, load_model_and_processor, local_checkpoint
    from training.runtime import publish

    folder = tmp_path / "final"
    processor = build_tiny_processor()
    build_tiny_model(processor).save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    uri = publish(folder, f"s3://{s3_env}/training/rl_checkpoint")
    assert uri.startswith("s3://") and "/v-" in uri
    model, _ = load_model_and_processor(uri)
    local = Path(local_checkpoint(uri))
    assert local.is_relative_to(Path(isolated_env["VIDEORFT_MEDIA_CACHE"])) and (local / "COMPLETE").exists()
    stamp = (local / "config.json").stat().st_mtime_ns
    load_model_and_processor(uri)  # the second load reads the local copy, nothing is fetched again
    assert (local / "config.json").stat().st_mtime_ns == stamp and model.config.model_type == "qwen2_5_vl"


def test_benchmark_fixtures_are_generated_on_an_s3_storage_root(s3_env, moto_endpoint, tmp_path, monkeypatch):
    from evaluation.fixtures import build_fixtures
    from videorft.profile import WorldConfig

    monkeypatch.setenv("VIDEORFT_MEDIA_CACHE", str(tmp_path / "media"))
    sources = build_fixtures(f"s3://{s3_env}/storage/evaluation/fixtures",
                             WorldConfig(seed=1007, videos=6, images=0, questions=0), per_benchmark=4)
    assert set(sources) == {"vsi_bench", "videommmu", "mmvu", "mvbench", "tempcompass", "videomme"}
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto_endpoint})
    for source in sources.values():
        assert source["questions"].startswith("s3://") and fs.exists(source["questions"])
