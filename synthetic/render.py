"""Render scene scripts to pixels: h264 ``.mp4`` videos through PyAV and PNG stills through Pillow."""

from __future__ import annotations

import io
import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synthetic.scene import TEXT_COLOR, color_at, position, visible


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow ships a scalable font in its wheel: nothing to download, same glyphs everywhere.
    return ImageFont.load_default(size=size)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: int, rgb: tuple[int, ...]) -> None:
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=rgb)
    elif shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=rgb)
    else:
        h = r * math.sqrt(3) / 2
        draw.polygon([(x, y - r), (x - r, y + h), (x + r, y + h)], fill=rgb)


def render_video_frame(script: dict[str, Any], frame: int) -> np.ndarray:
    palette = script["palette"]
    img = Image.new("RGB", (script["width"], script["height"]), tuple(script["background"]))
    draw = ImageDraw.Draw(img)
    for obj in script["objects"]:
        if visible(obj, frame):
            x, y = position(obj, frame)
            _draw_shape(draw, obj["shape"], x, y, obj["size"], tuple(palette[color_at(obj, frame)]))
    for text in script["texts"]:
        if text["start_frame"] <= frame < text["end_frame"]:
            draw.text((text["x"], text["y"]), text["text"], fill=TEXT_COLOR, font=_font(text["size"]))
    return np.asarray(img)


def encode_video(script: dict[str, Any], crf: int = 18) -> bytes:
    """The script as an h264 mp4 (yuv420p), byte-identical run to run and machine to machine."""
    buf = io.BytesIO()
    # bitexact: no encoder version string or wall-clock creation time in the file, so bytes depend on the
    # script alone (same seed, same files, same content hash).
    with av.open(buf, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=script["fps"])
        stream.width = script["width"]
        stream.height = script["height"]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, script["fps"])
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        # cpu-independent: without it x264's optimised paths made ~1 in 6 encodes of the same frames differ.
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "animation",
                          "x264-params": "cpu-independent=1"}
        for f in range(script["num_frames"]):
            frame = av.VideoFrame.from_ndarray(render_video_frame(script, f), format="rgb24")
            frame.pts = f
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def render_image(script: dict[str, Any]) -> bytes:
    """The still as PNG: a title and numbered lines on top, shapes below."""
    palette = script["palette"]
    img = Image.new("RGB", (script["width"], script["height"]), tuple(script["background"]))
    draw = ImageDraw.Draw(img)
    draw.text((6, 4), script["title"], fill=TEXT_COLOR, font=_font(16))
    for i, number in enumerate(script["numbers"]):
        draw.text((6, 24 + 15 * i), f"item {i + 1}: {number}", fill=TEXT_COLOR, font=_font(12))
    for s in script["shapes"]:
        _draw_shape(draw, s["shape"], s["x"], s["y"], s["size"], tuple(palette[s["color"]]))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()
