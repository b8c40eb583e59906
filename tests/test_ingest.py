"""Ingest accounting: rows in = kept + quarantined + duplicates, one reason per quarantined row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from curation.ingest import IngestError, QASource, ingest, read_pool, write_pool


def _good_rows(world: Path, n: int = 4) -> list[dict]:
    return json.loads((world / "qa_videos.json").read_text())[:n]


def _write_jsonl(path: Path, rows: list) -> None:
    with path.open("wb") as fh:
        for row in rows:
            fh.write(row if isinstance(row, bytes) else json.dumps(row).encode())
            fh.write(b"\n")


def test_good_and_bad_rows_are_accounted_exactly(world_copy, tmp_path):
    good = _good_rows(world_copy, 3)
    (world_copy / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 200)
    shutil.copy(world_copy / "videos" / "v0000.mp4", tmp_path / "outside.mp4")  # exists, but outside the root
    mc = next(r for r in json.loads((world_copy / "qa_videos.json").read_text())
              if r["problem_type"] == "multiple choice")
    invalid_utf8 = json.dumps({**good[0], "problem": "PLACEHOLDER"}).encode().replace(b"PLACEHOLDER", b"caf\xff")
    rows = [
        *good,                                                        # 3 kept
        dict(good[0]),                                                # duplicate
        {**good[1], "path": "./videos/broken.mp4"},                   # broken video
        {**good[1], "path": "./videos/missing.mp4"},                  # missing file
        {k: v for k, v in good[2].items() if k != "problem"},         # missing field
        {**good[2], "problem_type": "essay"},                         # unknown problem type
        {**mc, "options": []},                                        # multiple choice without options
        invalid_utf8,                                                 # invalid UTF-8
        {**good[1], "path": "../outside.mp4"},                        # escapes the media root
        b'{"problem": "unterminated',                                 # malformed JSON
        {**good[1], "problem_type": "numerical", "solution": "<answer>many</answer>", "problem": "How many?"},
    ]
    qa = world_copy / "bad.jsonl"
    _write_jsonl(qa, rows)
    result = ingest([QASource("bad", str(qa))], shards=2, probe_workers=2)

    assert result.rows_in == len(rows) == 13
    assert (len(result.pool), len(result.quarantine), len(result.duplicates)) == (3, 9, 1)
    assert result.accounted
    reasons = dict(zip(result.quarantine["source_row"], result.quarantine["reason"], strict=True))
    assert reasons == {
        4: "undecodable video",
        5: "missing media file",
        6: "missing field: problem",
        7: "unknown problem_type",
        8: "multiple choice without options",
        9: "invalid UTF-8 in problem",
        10: "media path escapes the media root",
        11: "malformed JSON",
        12: "numerical answer does not parse as a number",
    }
    assert result.duplicates["source_row"].tolist() == [3]
    assert result.duplicates["duplicate_of"].iloc[0] in set(result.pool["sample_id"])
    assert result.by_source["bad"] == {"rows_in": 13, "kept": 3, "quarantined": 9, "duplicates": 1}
    # the raw row is kept for inspection, readable even where the bytes were not UTF-8
    assert "caf" in result.quarantine.set_index("source_row").loc[9, "raw"]


def test_rows_without_category_get_one_inferred_and_marked(world_copy):
    rows = [{k: v for k, v in r.items() if k != "category"} | {"data_source": "MathVista"}
            for r in _good_rows(world_copy, 2)]
    qa = world_copy / "nocat.json"
    qa.write_text(json.dumps(rows))
    pool = ingest([QASource("nocat", str(qa))], shards=1).pool
    assert set(pool["category"]) == {"mathematics"} and pool["category_inferred"].all()


def test_media_root_option_and_json_array_sources(world_copy, tmp_path):
    qa_dir = tmp_path / "elsewhere"
    qa_dir.mkdir()
    qa = qa_dir / "qa.json"
    qa.write_text(json.dumps(_good_rows(world_copy, 3)))
    without_root = ingest([QASource("a", str(qa))], shards=1)
    assert set(without_root.quarantine["reason"]) == {"missing media file"}
    with_root = ingest([QASource("a", str(qa), media_root=str(world_copy))], shards=1)
    assert len(with_root.pool) == 3 and with_root.pool["media_uri"].str.startswith(str(world_copy)).all()


def test_sample_ids_and_shards_are_stable_and_content_based(world_copy, tmp_path):
    rows = _good_rows(world_copy, 6)
    a, b = tmp_path / "a.json", tmp_path / "b.jsonl"
    a.write_text(json.dumps(rows))
    _write_jsonl(b, list(reversed(rows)))
    first = ingest([QASource("a", str(a), media_root=str(world_copy))], shards=4).pool
    second = ingest([QASource("b", str(b), media_root=str(world_copy))], shards=4).pool
    assert first["sample_id"].tolist() == second["sample_id"].tolist()
    assert first["shard"].tolist() == second["shard"].tolist()
    assert first["sample_id"].str.match(r"^s[0-9a-f]{16}$").all()


def test_a_second_ingest_probes_no_media_again(world_copy):
    sources = [QASource("w", str(world_copy / "qa_videos.json")), QASource("i", str(world_copy / "qa_images.jsonl"))]
    first = ingest(sources, shards=2)
    assert first.media.attrs["probed"] == 18 and first.media.attrs["reused"] == 0
    second = ingest(sources, shards=2, probe_cache=first.media)
    assert second.media.attrs["probed"] == 0 and second.media.attrs["reused"] == 18
    pd.testing.assert_frame_equal(first.pool, second.pool)
    (world_copy / "videos" / "v0000.mp4").write_bytes(b"changed")  # a changed file is probed again
    third = ingest(sources, shards=2, probe_cache=first.media)
    assert third.media.attrs["probed"] == 1
    assert "undecodable video" in set(third.quarantine["reason"])


def test_written_pool_reads_back_by_shard(world_copy, tmp_path):
    result = ingest([QASource("w", str(world_copy / "qa_videos.json"))], shards=3)
    manifest = write_pool(result, str(tmp_path / "pool"), 3)
    assert manifest["row_count"] == len(result.pool)
    back = read_pool(manifest)
    assert sorted(back["sample_id"]) == sorted(result.pool["sample_id"])
    for shard in range(3):
        assert set(read_pool(manifest, shard)["shard"]) <= {shard}


def test_an_unreadable_source_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError, match="not found"):
        ingest([QASource("x", str(tmp_path / "missing.json"))], shards=1)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"problem": 1},')
    with pytest.raises(IngestError, match="not valid JSON"):
        ingest([QASource("x", str(bad))], shards=1)
