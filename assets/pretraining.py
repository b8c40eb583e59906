"""The pretraining group (profiles with the synthetic world only): the shipped tiny models as assets,
``pretraining_world -> tiny_siglip, tiny_base_model``, and checks that the shipped files match the code.

Only a profile that starts from the shipped base on the synthetic world has the group. The assets write into
``videorft/models/`` (what the package ships) through the ``pretraining`` library's stages, the same ones
``make pretrain`` runs, resumable from ``.videorft/pretraining``. Nothing downstream depends on them: the graph
loads the shipped files, and ``materialize`` leaves this group out unless it is selected
(``--select 'group:pretraining'``), so ``make run`` never pretrains. Production starts from Qwen2.5-VL and
SigLIP weights instead and has no such group.
"""
# No `from __future__ import annotations` here: Dagster reads the context and resource annotations at runtime.

from pathlib import Path
from typing import Any

import dagster as dg

from assets.metadata import ownership
from videorft.profile import Profile, local_state_dir
from videorft.shipped import REBUILD_COMMAND, TINY_PRETRAINED, TINY_SIGLIP, read_card, shipped_dir

PRETRAINING_GROUP = "pretraining"


def _work() -> Path:
    return local_state_dir() / "pretraining"


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a card's metrics as flat metadata entries (``held_out/retrieval_top1``)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _model_result(name: str) -> dg.MaterializeResult:
    card = read_card(name)
    metrics = {k: v for k, v in _flat(card.get("metrics", {})).items() if "per_template" not in k}
    return dg.MaterializeResult(
        value={"name": name, "folder": str(shipped_dir(name)), "source_hash": card["source_hash"]},
        data_version=dg.DataVersion(card["source_hash"] + "-" + "".join(sorted(card["files"].values()))[:16]),
        metadata={"folder": dg.MetadataValue.path(str(shipped_dir(name))), "source_hash": card["source_hash"],
                  "card": dg.MetadataValue.md((shipped_dir(name) / "README.md").read_text(encoding="utf-8")),
                  **metrics})


def _matches_code(name: str) -> dg.AssetCheckResult:
    from pretraining.card import source_hash

    card, now = read_card(name), source_hash(name)
    return dg.AssetCheckResult(passed=card["source_hash"] == now, metadata={
        "card_source_hash": card["source_hash"], "checkout_source_hash": now,
        "to_fix": f"`{REBUILD_COMMAND}`, then commit videorft/models/"})


def build_pretraining_assets(profile: Profile) -> list[Any]:
    """The group, for profiles that start from the shipped base on the synthetic world (the tiny profile)."""
    if not (profile.uses_synthetic_world and profile.training.base_model == TINY_PRETRAINED):
        return []
    from pretraining.build import base_stage, measure_stage, siglip_stage, world
    from pretraining.config import load_pretrain_recipe

    recipe = load_pretrain_recipe()
    tags = ownership(PRETRAINING_GROUP)

    @dg.asset(name="pretraining_world", group_name=PRETRAINING_GROUP, kinds={"python", "video"}, **tags,
              description=f"The pretraining world: {recipe.world.videos} videos of their own seed "
              f"({recipe.world.seed}), the last {recipe.held_out_videos} held out, with captions and direct-answer "
              "questions from their scene scripts. No training or benchmark world shares a video.")
    def pretraining_world(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        videos = world(recipe, _work(), context.log.info)
        return dg.MaterializeResult(value={"videos": len(videos), "root": str(_work() / "world")}, metadata={
            "videos": len(videos), "held_out_videos": recipe.held_out_videos, "seed": recipe.world.seed,
            "root": dg.MetadataValue.path(str(_work() / "world"))})

    @dg.asset(name="tiny_siglip", group_name=PRETRAINING_GROUP, kinds={"python", "pytorch"}, **tags,
              deps=[pretraining_world], description="The tiny SigLIP (sigmoid loss on frames and captions) the "
              "semantic reward, video_embeddings and the CoT filter use; installed in videorft/models/tiny-siglip.")
    def tiny_siglip(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from pretraining.card import source_hash

        source = source_hash(TINY_SIGLIP)
        siglip_stage(recipe, world(recipe, _work(), context.log.info), _work(), shipped_dir(TINY_SIGLIP), source,
                     context.log.info)
        return _model_result(TINY_SIGLIP)

    @dg.asset(name="tiny_base_model", group_name=PRETRAINING_GROUP, kinds={"python", "pytorch"}, **tags,
              deps=[pretraining_world], description="The tiny Qwen2.5-VL base (captions and direct-answer questions) "
              "every Table 2 variant starts from; installed in videorft/models/tiny-pretrained, measured on the "
              "benchmark fixtures with and without its video.")
    def tiny_base_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from pretraining.card import source_hash

        source = source_hash(TINY_PRETRAINED)
        base_stage(recipe, world(recipe, _work(), context.log.info), _work(), shipped_dir(TINY_PRETRAINED), source,
                   context.log.info)
        measure_stage(shipped_dir(TINY_PRETRAINED), profile.name, _work(), context.log.info)
        return _model_result(TINY_PRETRAINED)

    checks = [_code_check("tiny_siglip", TINY_SIGLIP), _code_check("tiny_base_model", TINY_PRETRAINED)]
    return [pretraining_world, tiny_siglip, tiny_base_model, *checks]


def _code_check(asset_name: str, model: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset_name, name="built_from_this_code",
                    description=f"the shipped {model} was built by this checkout's pretraining code, recipe and world "
                    f"code (the hash in its card); else `{REBUILD_COMMAND}`")
    def built_from_this_code() -> dg.AssetCheckResult:
        return _matches_code(model)

    return built_from_this_code
