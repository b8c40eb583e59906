"""``python -m pretraining``: rebuild the embedded profile's shipped models (``make pretrain``).

Stages, each resumable from its work folder: render the pretraining world; pretrain the SigLIP, measure it on
the held-out videos and install it as ``videorft/models/tiny-siglip``; pretrain the Qwen2.5-VL base, score it
on held-out questions and install it as ``videorft/models/tiny-pretrained``; then measure the installed base on
the benchmarks' fixtures (with and without its video) for its card. ``--models-dir`` installs elsewhere (the
tests), ``--set section.key=value`` changes the recipe for one run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pretraining.build import STAGES, build
from pretraining.config import DEFAULT_RECIPE, PretrainRecipeError, load_pretrain_recipe
from videorft.profile import local_state_dir
from videorft.shipped import MODELS_DIR


def _overrides(items: list[str]) -> dict[str, Any]:
    from training.config import apply_overrides

    return apply_overrides({}, items)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pretraining", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help="pretraining recipe YAML")
    parser.add_argument("--work", help="work folder: world, decoded frames, resumable states (default: "
                                       ".videorft/pretraining)")
    parser.add_argument("--models-dir", help=f"install the models here instead of {MODELS_DIR}")
    parser.add_argument("--only", choices=STAGES, action="append", help="run these stages only (repeatable)")
    parser.add_argument("--profile", default="tiny", help="the profile whose fixtures the base is measured on")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change the recipe, e.g. --set base.steps=100 (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one progress line per stage is ours; no bar per saved or loaded file
    try:
        recipe = load_pretrain_recipe(args.recipe, _overrides(args.set))
    except PretrainRecipeError as exc:
        print(f"pretraining: error: {exc}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else local_state_dir() / "pretraining"
    models_dir = Path(args.models_dir) if args.models_dir else MODELS_DIR
    build(recipe, work, models_dir, tuple(args.only or STAGES), args.profile, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
