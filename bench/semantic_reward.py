"""Cost of the semantic-consistency reward for one GRPO group: ours vs the official implementation's algorithm.

    .venv/bin/python bench/semantic_reward.py [--model bench-siglip-b16] [--group 8] [--frames 16] [--repeats 3]

Same run, same SigLIP (ViT-B-16 architecture, random weights: cost does not depend on the weights), same
video (a clip of the tiny world), same G completions. Measured per group:

* ``official``: the official algorithm, given its most favourable reading: for every completion, decode the
  video again, run SigLIP's image tower on its F frames (one batch), embed the text after the first '.',
  score = min(1, w * mean_f max(cos(text, frame_f), 0)).
* ``ours_first_visit``: ``SemanticConsistencyReward`` on a video it has never seen: one decode, one batch of
  F frames, the mean frame embedding, the G spans embedded in one batch, written to the embedding cache.
* ``ours_cached``: the same group again (every later completion, step and epoch of that video).
* ``ours_precomputed``: the first visit in training after the ``video_embeddings`` asset stored the video's
  embedding (``training.embedding_cache.precompute``): a new reward, as in a new process, reads the stored
  embedding and only embeds the G spans. This is every visit once the asset has run.
* ``precompute``: the asset's batched pass over all the videos of the run (8 per image-tower forward),
  reported as videos/s next to the official per-completion cost (one decode and F frames through SigLIP).
* ``ours_first_visit_compiled``: the first visit with ``compile: true`` (the paper recipes' setting): SigLIP's
  image tower through ``torch.compile``. Its one-off compilation, paid once per process, is warmed on a
  video outside the measurement and reported as ``compile_seconds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (CPU torchvision work-around)


def official_group(completions: list[str], video: str, model_name: str, frames: int, weight: float) -> list[float]:
    import torch
    from PIL import Image

    from videorft.clip_models import image_side, load_clip
    from videorft.media import load_frames

    model, tokenizer, preprocess = load_clip(model_name, None, 64)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # where ours runs too (VideoEmbeddingCache)
    model.to(device)
    size = image_side(model)
    out = []
    for text in completions:
        thought = text.split("<think>")[-1].split("</think>")[0]
        span = thought.split(".", 1)[1] if "." in thought else ""  # the official first-'.' split
        arrays = load_frames(video, frames=frames, max_pixels=max(size * size, 3136)).array  # re-decoded
        batch = torch.stack([preprocess(Image.fromarray(a)) for a in arrays])
        with torch.inference_mode():
            image = model.encode_image(batch.to(device), normalize=True)
            txt = model.encode_text(tokenizer([span]).to(device), normalize=True)
        per_frame = (image @ txt.T).squeeze(-1).clamp(min=0)
        out.append(min(1.0, weight * float(per_frame.mean())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bench-siglip-b16")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "semantic_reward.json"))
    args = parser.parse_args()

    import torch

    from synthetic.world import build_world
    from training.config import SemanticRewardConfig
    from training.rewards import SemanticConsistencyReward
    from videorft.clip_models import load_clip
    from videorft.profile import WorldConfig

    work = Path(tempfile.mkdtemp(prefix="semantic-bench-"))
    world = build_world(WorldConfig(seed=3, videos=args.repeats + 1, images=0, questions=4, min_side=224,
                                    max_side=224, min_seconds=4.0, max_seconds=4.0), str(work / "world"))
    videos = sorted(str(p) for p in (Path(world.root) / "videos").glob("*.mp4"))
    completions = [f"<think>Let me think about the question {i}. The video shows a red circle moving to the left "
                   f"while a blue square, about 3.5 m away, turns green.</think><answer>B</answer>"
                   for i in range(args.group)]
    load_clip(args.model, None, 64)  # model construction is paid once per process by both
    config = SemanticRewardConfig(model=args.model, pretrained=None, frames=args.frames, mode="ungated")
    from training.embedding_cache import VideoEmbeddingCache, precompute

    timings: dict[str, list[float]] = {"official": [], "ours_first_visit": [], "ours_cached": [],
                                       "ours_precomputed": [], "ours_first_visit_compiled": []}
    measured = videos[:args.repeats]
    store = str(work / "precomputed")
    pre = precompute([(v, None) for v in measured], VideoEmbeddingCache.from_config(config, store), batch_media=8)
    compiled = SemanticConsistencyReward(config.model_copy(update={"compile": True}), cache_root=str(work / "warm"))
    started = time.perf_counter()
    compiled(completions, path=[videos[-1]] * args.group)  # the one-off compilation, outside the measurement
    compile_seconds = time.perf_counter() - started
    for i in range(args.repeats):
        video = videos[i]
        columns = {"path": [video] * args.group}
        started = time.perf_counter()
        official_group(completions, video, args.model, args.frames, config.weight)
        timings["official"].append(time.perf_counter() - started)
        reward = SemanticConsistencyReward(config, cache_root=str(work / f"cache{i}"))
        started = time.perf_counter()
        reward(completions, **columns)
        timings["ours_first_visit"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reward(completions, **columns)
        timings["ours_cached"].append(time.perf_counter() - started)
        fresh = SemanticConsistencyReward(config, cache_root=store)  # a training process after the asset ran
        started = time.perf_counter()
        fresh(completions, **columns)
        timings["ours_precomputed"].append(time.perf_counter() - started)
        assert fresh.embeddings.stats["computed"] == 0
        compiled.embeddings.cache_root = str(work / f"compiled{i}")
        started = time.perf_counter()
        compiled(completions, **columns)
        timings["ours_first_visit_compiled"].append(time.perf_counter() - started)
    median = {k: statistics.median(v) for k, v in timings.items()}
    result = {
        "command": "python bench/semantic_reward.py " + " ".join(sys.argv[1:]),
        "model": args.model, "group": args.group, "frames": args.frames, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "seconds_median": median, "seconds_all": timings,
        "speedup_first_visit": median["official"] / median["ours_first_visit"],
        "speedup_cached": median["official"] / median["ours_cached"],
        "speedup_precomputed": median["official"] / median["ours_precomputed"],
        "precompute": {"videos": pre.computed, "seconds": pre.seconds, "videos_per_second": pre.media_per_second,
                       "decode_seconds": pre.decode_seconds, "encode_seconds": pre.encode_seconds},
        "official_completions_per_second": args.group / median["official"],
        "precompute_videos_per_official_completion": pre.media_per_second * median["official"] / args.group,
        "speedup_first_visit_compiled": median["official"] / median["ours_first_visit_compiled"],
        "compile_seconds": compile_seconds,
        "targets": {"first_visit": 8.0, "cached": 50.0, "precomputed": 50.0},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("seconds_median", "speedup_first_visit", "speedup_first_visit_compiled",
                                            "speedup_cached", "speedup_precomputed", "precompute",
                                            "precompute_videos_per_official_completion", "compile_seconds")},
                     indent=2))


if __name__ == "__main__":
    main()
