"""Re-measure the shipped models' card metrics, from the shipped files, as a user would load them.

    .venv/bin/python bench/pretrained_models.py [--work DIR] [--bootstrap 1000]

* ``tiny-siglip`` on the pretraining world's held-out videos (never trained on): caption-to-video top-1
  retrieval against chance, and Eq. 5's score (``training.rewards``) of a video's own description against every
  mismatched video's, as an AUC (``pretraining.siglip.measure``), loaded through ``videorft.clip_models``.
* ``tiny-pretrained`` on the tiny profile's benchmark fixtures (a world no training set contains, at its natural
  template mix), through ``evaluation.run`` like ``benchmark_scores``, once with its video and once on blank
  frames, in both answer modes (the generated reply; the likeliest option): per template and pooled over the
  multiple-choice questions, accuracy with its 95% interval (bootstrap over videos), uniform chance, the
  text-only baseline (best fixed answer per template, chosen on the other videos; and in-sample) and the paired
  difference from it (``evaluation.controls``).

Writes ``bench/results/pretrained_models.json`` and prints the tables; about 5 minutes on 2 cores (the
pretraining world is rendered first if ``--work`` does not hold it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (CPU torchvision work-around)


def main(argv: list[str] | None = None) -> int:
    from pretraining.build import world
    from pretraining.config import load_pretrain_recipe
    from pretraining.measure import fixture_controls, summary
    from pretraining.siglip import measure
    from videorft.clip_models import load_clip
    from videorft.profile import load_profile, local_state_dir
    from videorft.shipped import TINY_PRETRAINED, TINY_SIGLIP, read_card

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(local_state_dir() / "pretraining"),
                        help="pretraining work folder (its world is reused; default .videorft/pretraining)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "pretrained_models.json"))
    args = parser.parse_args(argv)
    recipe = load_pretrain_recipe()
    started = time.perf_counter()
    videos = world(recipe, Path(args.work), log=lambda m: None)
    model, tokenizer, preprocess = load_clip(TINY_SIGLIP, None, recipe.siglip.context_length)
    siglip = measure(model, tokenizer, preprocess, [v for v in videos if v.held_out], recipe.siglip.frames,
                     recipe.seed, recipe.siglip.context_length)
    print(f"tiny-siglip, {siglip['videos']} held-out videos: {json.dumps(siglip)}")
    base: dict[str, Any] = {"card_source_hash": read_card(TINY_PRETRAINED)["source_hash"]}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, key in (("generate", "fixtures"), ("choice", "fixtures_choice")):
            table = fixture_controls(TINY_PRETRAINED, load_profile("tiny"), Path(tmp), args.bootstrap, mode)
            print(f"tiny-pretrained on the tiny profile's fixtures, answer mode {mode} (lenient protocol, percent):")
            print(table.to_string(index=False))
            base.update({key: summary(table), f"table_{mode}": table.to_dict("records")})
    result = {"command": "python bench/pretrained_models.py", "seconds": round(time.perf_counter() - started),
              "tiny_siglip": {"held_out": siglip, "card": read_card(TINY_SIGLIP)["metrics"]["held_out"]},
              "tiny_pretrained": base}
    Path(args.output).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
