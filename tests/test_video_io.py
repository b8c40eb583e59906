from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videorft.media import MediaDecodeError, load_frames, load_image, probe, sample_indices, smart_resize


def test_probe_reports_the_scripted_geometry(small_world):
    root = Path(small_world.root)
    script = json.loads((root / "videos" / "v0002.json").read_text())
    info = probe(str(root / "videos" / "v0002.mp4"))
    assert (info.kind, info.width, info.height, info.codec) == ("video", script["width"], script["height"], "h264")
    assert info.num_frames == script["num_frames"]
    assert info.fps == pytest.approx(script["fps"])
    assert info.duration == pytest.approx(script["duration"], abs=0.1)
    image = probe(str(root / "images" / "i0001.png"))
    assert image.kind == "image" and image.width > 0


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_both_decoders_sample_uniform_frames_within_the_pixel_budget(small_world, backend):
    path = str(Path(small_world.root) / "videos" / "v0004.mp4")
    info = probe(path)
    frames = load_frames(path, frames=8, max_pixels=64 * 28 * 28, backend=backend)
    t, h, w, c = frames.array.shape
    assert (t, c) == (8, 3) and frames.array.dtype == np.uint8
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 64 * 28 * 28
    assert frames.indices == sample_indices(info.num_frames, info.fps, frames=8)
    assert frames.indices[0] == 0 and frames.indices[-1] == info.num_frames - 1


def test_decord_and_pyav_decode_the_same_pictures(small_world):
    path = str(Path(small_world.root) / "videos" / "v0006.mp4")
    a = load_frames(path, frames=6, backend="decord").array.astype(int)
    b = load_frames(path, frames=6, backend="pyav").array.astype(int)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 6  # same frames; only the scalers' rounding differs


def test_sampling_at_a_rate_gives_one_frame_per_interval(small_world):
    path = str(Path(small_world.root) / "videos" / "v0001.mp4")
    info = probe(path)
    frames = load_frames(path, fps=1.0)
    assert len(frames.indices) == int(info.num_frames / info.fps)
    assert frames.timestamps[:2] == [0.0, 1.0]


def test_smart_resize_keeps_aspect_and_budget():
    h, w = smart_resize(480, 854, min_pixels=4 * 28 * 28, max_pixels=128 * 28 * 28)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 128 * 28 * 28
    assert abs(w / h - 854 / 480) < 0.25
    assert smart_resize(10, 10, min_pixels=4 * 28 * 28, max_pixels=128 * 28 * 28) == (56, 56)


def test_sample_indices_rules():
    assert sample_indices(100, 10.0, frames=5) == [0, 25, 50, 74, 99]
    assert sample_indices(100, 10.0, fps=2.0)[:3] == [0, 5, 10]
    assert len(sample_indices(10_000, 30.0, fps=30.0, max_frames=64)) == 64
    with pytest.raises(ValueError):
        sample_indices(100, 10.0)


def test_missing_and_broken_media_raise_one_clear_error(tmp_path, small_world):
    with pytest.raises(MediaDecodeError, match="missing file"):
        probe(str(tmp_path / "nope.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(MediaDecodeError, match="undecodable video"):
        probe(str(broken))
    with pytest.raises(MediaDecodeError, match="undecodable video"):
        load_frames(str(broken), frames=4)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((Path(small_world.root) / "videos" / "v0000.mp4").read_bytes()[:300])
    with pytest.raises(MediaDecodeError):
        probe(str(truncated))
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"not a png")
    with pytest.raises(MediaDecodeError, match="undecodable image"):
        load_image(str(bad_png))
    with pytest.raises(MediaDecodeError, match="unsupported media extension"):
        probe(str(tmp_path / "notes.txt"))


def test_parallel_readers_return_the_same_frames_in_order(small_world, monkeypatch):
    import videorft.media as vio

    path = str(Path(small_world.root) / "videos" / "v0003.mp4")
    single = load_frames(path, frames=12, backend="decord", workers=1)
    monkeypatch.setattr(vio, "PARALLEL_MIN_FRAMES", 0)
    parallel = load_frames(path, frames=12, backend="decord", workers=3)
    assert parallel.indices == single.indices
    np.testing.assert_array_equal(parallel.array, single.array)
