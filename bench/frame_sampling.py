"""Frame sampling: 16 and 32 uniform frames from a long video, ours vs qwen-vl-utils' process_vision_info.

The long video (5 min, 30 fps, 854x480 h264) is generated once with PyAV under bench/_work/. Both loaders are
asked for the same frame count and the same output size (Qwen2.5-VL's smart_resize of the budget), in the same
process, alternating, best of N. Ours resizes inside the decoder; the peers decode full frames and resize
with torch afterwards.

    .venv/bin/python bench/frame_sampling.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from videorft.compat import make_torchvision_importable
from videorft.media import load_frames, probe, smart_resize

WORK = Path(__file__).resolve().parent / "_work"
RESULTS = Path(__file__).resolve().parent / "results"


def make_long_video(path: Path, seconds: int = 300, fps: int = 30, width: int = 854, height: int = 480) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast", "crf": "23", "g": "250"}
        for i in range(seconds * fps):
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (xx + 3 * i) % 256
            frame[..., 1] = (yy + 2 * i) % 256
            frame[..., 2] = (xx // 4 + yy // 4 + i) % 256
            cx = int((i * 5) % width)
            frame[200:280, max(0, cx - 40):cx + 40] = 255
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    video = WORK / "long_5min_30fps_480p.mp4"
    t0 = time.perf_counter()
    make_long_video(video)
    info = probe(str(video))
    print(f"video: {info.num_frames} frames, {info.duration:.0f} s, {info.width}x{info.height} "
          f"(ready in {time.perf_counter() - t0:.1f} s)")

    os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
    make_torchvision_importable()
    from qwen_vl_utils import process_vision_info

    rows = []
    for nframes, max_pixels in ((16, 128 * 28 * 28), (32, 256 * 28 * 28)):
        h, w = smart_resize(info.height, info.width, 4 * 28 * 28, max_pixels)

        def ours(nframes: int = nframes, max_pixels: int = max_pixels) -> tuple[int, ...]:
            return load_frames(str(video), frames=nframes, max_pixels=max_pixels).array.shape

        def peers(nframes: int = nframes, h: int = h, w: int = w) -> tuple[int, ...]:
            msg = [{"role": "user", "content": [{"type": "video", "video": str(video), "nframes": nframes,
                                                 "resized_height": h, "resized_width": w}]}]
            return tuple(process_vision_info(msg)[1][0].shape)

        shapes = (ours(), peers())  # warm-up, and proof both return the same geometry
        times: dict[str, list[float]] = {"ours": [], "qwen_vl_utils": []}
        for _ in range(args.repeats):
            for name, fn in (("ours", ours), ("qwen_vl_utils", peers)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        row = {
            "frames": nframes, "max_pixels": max_pixels, "output": f"{w}x{h}",
            "ours_shape": list(shapes[0]), "qwen_shape": list(shapes[1]),
            "ours_best_s": min(times["ours"]), "ours_median_s": statistics.median(times["ours"]),
            "qwen_best_s": min(times["qwen_vl_utils"]), "qwen_median_s": statistics.median(times["qwen_vl_utils"]),
        }
        row["speedup_median"] = row["qwen_median_s"] / row["ours_median_s"]
        rows.append(row)
        print(f"{nframes} frames -> {w}x{h}: ours {row['ours_median_s'] * 1000:.0f} ms, qwen-vl-utils "
              f"{row['qwen_median_s'] * 1000:.0f} ms (median of {args.repeats}); ours is "
              f"{row['speedup_median']:.2f}x the peers' speed")
    RESULTS.mkdir(exist_ok=True)
    out = {"command": f"python bench/frame_sampling.py --repeats {args.repeats}", "machine": platform.machine(),
           "cpus": os.cpu_count(), "video": info.to_dict(), "rows": rows}
    (RESULTS / "frame_sampling.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
