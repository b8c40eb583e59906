"""Pretraining of the shipped tiny models: its own world, its resumable loop, the shipped files against their
cards and the code that built them, and the errors a user gets when they do not match."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def _script_keys(scripts: list[dict]) -> set[str]:
    """A script's content without its id (two worlds name their videos alike)."""
    return {hashlib.sha256(json.dumps({k: v for k, v in s.items() if k != "id"}, sort_keys=True).encode()).hexdigest()
            for s in scripts}


def test_no_pretraining_video_or_script_is_in_the_training_world_or_any_fixture_world():
    from pretraining.config import load_pretrain_recipe
    from synthetic.world import build_scripts
    from videorft.profile import load_profile

    recipe = load_pretrain_recipe()
    pretraining = _script_keys(build_scripts(recipe.world)[0])
    assert len(pretraining) == recipe.world.videos  # no two pretraining videos alike either
    for profile_file in ("tiny", str(FIXTURES / "small-profile.yaml")):
        profile = load_profile(profile_file, env={})
        for key, world in (("world", profile.world), ("fixtures", profile.evaluation.fixtures.world)):
            assert world.seed != recipe.world.seed, (profile.name, key)
            shared = pretraining & _script_keys(build_scripts(world)[0])
            assert not shared, f"{profile.name} {key} shares {len(shared)} scripts with the pretraining world"


def test_the_base_learns_a_multiple_choice_answer_as_the_option_text_that_scoring_credits():
    from evaluation.scoring import sample_score
    from pretraining.config import load_pretrain_recipe
    from pretraining.data import Video, questions, rows_of
    from synthetic.world import build_scripts

    recipe = load_pretrain_recipe()
    script = build_scripts(recipe.world.model_copy(update={"videos": 1}))[0][0]
    video = Video(0, "v0000.mp4", script, held_out=False)
    taught = zip(questions(video, recipe.seed), rows_of(video, recipe.seed)["benchmark_prompt"], strict=True)
    multiple_choice = [(q, row["solution"]) for q, row in taught if q["options"]]
    assert multiple_choice
    for q, answer in multiple_choice:
        assert answer in [o.split(". ", 1)[1] for o in q["options"]] and answer != q["answer"]
        assert sample_score(q["problem_type"], answer, q["answer"], q["options"], "lenient") == 1.0


def test_the_base_sees_captions_only_until_its_alignment_steps_end_then_every_kind_by_the_mix():
    from pretraining.data import batch_plan

    sizes = {"caption": 40, "qa": 100, "benchmark_prompt": 100}
    plan = batch_plan(sizes, {"caption": 0.2, "qa": 0.4, "benchmark_prompt": 0.4}, 300, 4, 0, align_steps=100)
    assert {kind for kind, _ in plan[:100]} == {"caption"}
    after = [kind for kind, _ in plan[100:]]
    assert set(after) == {"caption", "qa", "benchmark_prompt"} and after.count("caption") < 80


def test_the_vision_tower_trains_at_its_own_learning_rate_and_only_matrices_decay():
    import torch

    from pretraining.loop import param_groups

    model = torch.nn.ModuleDict({"visual": torch.nn.Linear(2, 2), "lm": torch.nn.Linear(2, 2)})
    groups = param_groups(model, 1e-3, 0.1, {"visual": 0.1})
    by_group = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in groups}
    assert by_group == {(1e-4, 0.1): 1, (1e-4, 0.0): 1, (1e-3, 0.1): 1, (1e-3, 0.0): 1}


def test_the_shipped_models_were_built_by_the_code_and_recipe_in_this_checkout():
    from pretraining.card import SOURCES, source_hash
    from videorft.shipped import SHIPPED_MODELS, read_card

    for name in SHIPPED_MODELS:
        card = read_card(name)
        assert card["sources"][:len(SOURCES[name])] == list(SOURCES[name]), name
        assert card["source_hash"] == source_hash(name), (
            f"{name} was built from other code or another recipe (card {card['source_hash']}, this checkout "
            f"{source_hash(name)}): rebuild the shipped models with `make pretrain` and commit videorft/models/")


def test_the_source_hash_ignores_comments_and_docstrings_but_not_code(tmp_path):
    from pretraining.card import files_hash

    (tmp_path / "m.py").write_text('"""Doc."""\nX = 1  # a comment\n')
    (tmp_path / "r.yaml").write_text("a: 1  # note\n")
    first = files_hash(tmp_path, ("m.py", "r.yaml"))
    (tmp_path / "m.py").write_text('"""Another doc."""\n\nX = 1\n')
    (tmp_path / "r.yaml").write_text("# header\na: 1\n")
    assert files_hash(tmp_path, ("m.py", "r.yaml")) == first
    (tmp_path / "m.py").write_text("X = 2\n")
    assert files_hash(tmp_path, ("m.py", "r.yaml")) != first


def test_the_shipped_files_match_their_cards_and_stay_under_25_mb():
    from videorft.shipped import SHIPPED_MODELS, read_card, verified_dir

    total = 0
    for name in SHIPPED_MODELS:
        folder = verified_dir(name)
        card = read_card(name)
        assert {"recipe", "seeds", "pretraining_world", "metrics", "command", "source_hash"} <= set(card)
        total += sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 25 * 2**20, total


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped models copied to a folder a test may damage, and the package pointed at it."""
    import videorft.shipped as shipped

    models = tmp_path / "models"
    for name in shipped.SHIPPED_MODELS:
        shutil.copytree(shipped.shipped_dir(name), models / name)
    monkeypatch.setattr(shipped, "MODELS_DIR", models)
    return models


def test_a_rebuilt_shipped_model_changes_the_key_of_every_training_run(shipped_copy):
    """Training runs are reused by key; the recipe names `tiny-pretrained` before and after `make pretrain`, so the
    key must carry the shipped weights themselves (else SFT would hand back the old base's run)."""
    from assets.training import shipped_weights

    before = shipped_weights()
    card_file = shipped_copy / "tiny-pretrained" / "card.json"
    card = json.loads(card_file.read_text())
    card["files"]["model.safetensors"] = "0" * 64  # what a rebuild changes: the weights' hash in the card
    card_file.write_text(json.dumps(card))
    after = shipped_weights()
    assert after["tiny-pretrained"] != before["tiny-pretrained"] and after["tiny-siglip"] == before["tiny-siglip"]


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_corrupt_or_missing_shipped_weight_file_is_an_error_naming_it_and_the_rebuild_command(shipped_copy,
                                                                                                damage):
    from training.model import ModelLoadError, load_model_and_processor
    from videorft.clip_models import clip_source
    from videorft.shipped import ShippedModelError

    weights = shipped_copy / "tiny-pretrained" / "model.safetensors"
    if damage == "corrupt":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        weights.unlink()
    with pytest.raises(ModelLoadError, match=r"model\.safetensors.*make pretrain"):
        load_model_and_processor("tiny-pretrained")
    (shipped_copy / "tiny-siglip" / "open_clip_model.safetensors").unlink()
    with pytest.raises(ShippedModelError, match=r"open_clip_model\.safetensors.*make pretrain"):
        clip_source("tiny-siglip")


def test_a_profile_naming_tiny_pretrained_with_its_pretraining_world_or_another_tokenizer_is_refused(
        shipped_copy, tmp_path):
    from pretraining.config import load_pretrain_recipe
    from videorft.profile import ProfileError, load_profile

    tiny = (ROOT / "configs" / "tiny" / "profile.yaml").read_text()
    assert load_profile("tiny", env={}).training.base_model == "tiny-pretrained"
    seed = load_pretrain_recipe().world.seed
    leaking = tmp_path / "leak.yaml"
    leaking.write_text(tiny.replace("  seed: 0\n  videos: 120", f"  seed: {seed}\n  videos: 120", 1))
    with pytest.raises(ProfileError, match=rf"world\.seed: {seed} is the seed of tiny-pretrained's pretraining"):
        load_profile(str(leaking), env={})
    tokenizer = shipped_copy / "tiny-pretrained" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"<think>"', '"<thinking>"'))
    with pytest.raises(ProfileError, match=r"training\.base_model: .*tokenizer\.json does not match its card"):
        load_profile("tiny", env={})


def test_a_killed_pretraining_stage_resumes_from_its_last_saved_step(tmp_path):
    import torch

    from pretraining.loop import train

    model = torch.nn.Linear(2, 1)
    seen: list[int] = []

    def loss(step: int) -> torch.Tensor:
        if step == 3 and len(seen) == 3:
            raise KeyboardInterrupt  # killed during step 3, after step 2's state was saved
        seen.append(step)
        return model(torch.ones(1, 2)).sum() ** 2

    with pytest.raises(KeyboardInterrupt):
        train(model, loss, steps=6, learning_rate=0.1, weight_decay=0.0, warmup=0, folder=tmp_path, name="t",
              log=lambda m: None, log_every=1, save_every=2)
    seen.clear()
    records = train(model, loss, steps=6, learning_rate=0.1, weight_decay=0.0, warmup=0, folder=tmp_path, name="t",
                    log=lambda m: None, log_every=1, save_every=2)
    assert seen == [2, 3, 4, 5]  # steps 0 and 1 were paid for once
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]


def test_pretraining_runs_every_stage_in_a_few_steps_and_installs_loadable_models_with_cards(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pretraining", "--work", str(tmp_path / "work"), "--models-dir",
         str(tmp_path / "models"), "--only", "siglip", "--only", "base", "--set", "world.videos=12", "--set",
         "held_out_videos=4", "--set", "siglip.steps=3", "--set", "siglip.batch_videos=4", "--set", "base.steps=3",
         "--set", "base.align_steps=1", "--set", "base.batch_size=2", "--set", "base.eval_questions=6"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "siglip: step 3/3" in out.stdout and "base: step 3/3" in out.stdout
    for name, weights in (("tiny-siglip", "open_clip_model.safetensors"), ("tiny-pretrained", "model.safetensors")):
        card = json.loads((tmp_path / "models" / name / "card.json").read_text())
        assert weights in card["files"] and card["pretraining_world"]["held_out_videos"] == 4
        assert (tmp_path / "models" / name / "README.md").read_text().startswith(f"# {name}")
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tmp_path / "models" / "tiny-pretrained"))
    assert model.config.text_config.hidden_size == 128
    card = json.loads((tmp_path / "models" / "tiny-pretrained" / "card.json").read_text())
    assert card["metrics"]["held_out_pretraining_questions"]["questions"] == 6
