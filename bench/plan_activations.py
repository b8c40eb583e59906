"""The plan's activation estimate (``training.plan.activation_bytes``) against what autograd keeps
(``training.plan.saved_activation_bytes``) for the shipped tiny model, one training forward per frame count.

    .venv/bin/python bench/plan_activations.py [--frames 2 4 8 16] [--out bench/results/plan_activations.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.model import load_model_and_processor  # noqa: E402
from training.plan import activation_bytes, saved_activation_bytes  # noqa: E402
from videorft.frames import media_part  # noqa: E402
from videorft.media import smart_resize  # noqa: E402


def measure(frames: int, model: object, processor: object) -> dict[str, float]:
    h, w = smart_resize(720, 1280, min_pixels=3136, max_pixels=12544)  # the tiny profile's video.train
    conversation = [
        {"role": "user", "content": [media_part("video", np.zeros((frames, h, w, 3), dtype=np.uint8)),
                                     {"type": "text", "text": "What colour is the background at the end?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>" + "it stays grey. " * 10
                                           + "</think><answer>A</answer>"}]}]
    inputs = processor.apply_chat_template([conversation], tokenize=True, return_dict=True, return_tensors="pt")
    inputs["labels"] = inputs["input_ids"].clone()
    tokens, patches = int(inputs["input_ids"].shape[1]), int(inputs["video_grid_thw"].prod())
    estimate = sum(activation_bytes(model.config, 1, tokens, patches, 4, checkpointing=False, flash=False,
                                    vision_trains=True).values())
    measured = saved_activation_bytes(model, inputs)
    return {"frames": frames, "tokens": tokens, "patches": patches, "estimate_bytes": estimate,
            "measured_bytes": measured, "ratio": round(estimate / measured, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "plan_activations.json"))
    args = parser.parse_args()
    model, processor = load_model_and_processor("tiny-pretrained")
    model.train()
    rows = [measure(f, model, processor) for f in args.frames]
    report = {"command": " ".join(["bench/plan_activations.py", *sys.argv[1:]]), "model": "tiny-pretrained",
              "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
