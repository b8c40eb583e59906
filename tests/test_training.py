"""Training library: the semantic-consistency reward, the SFT collator's label mask, recipes, and the two
entry points (run, resume, DeepSpeed ZeRO-2), and proof that GRPO's loss sees the video."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

import training  # noqa: F401  (the CPU torchvision work-around)
from training.config import RecipeError, RewardConfig, SemanticRewardConfig, load_recipe
from training.rewards import SemanticConsistencyReward, semantic_scores

ROOT = Path(__file__).resolve().parent.parent
TINY_SEMANTIC = SemanticRewardConfig(model="tiny-siglip", pretrained=None, frames=4, span_tokens=32)


@pytest.fixture(scope="module")
def sft_file(small_world, tmp_path_factory) -> Path:
    """The small world's questions in the CoT-set schema, with a short reasoning per row."""
    root = Path(small_world.root)
    rows = json.loads((root / "qa_videos.json").read_text())
    rows += [json.loads(line) for line in (root / "qa_images.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["process"] = f"<think>The question asks about the {row['data_type']}. I look at it closely.</think>"
        row["path"] = str((root / row["path"]).resolve())
        row.pop("meta", None)
    out = tmp_path_factory.mktemp("sftdata") / "cot.jsonl"
    out.write_text("\n".join(json.dumps(r) for r in rows))
    return out


def _completion(think: str, answer: str) -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


# -- the semantic-consistency reward ------------------------------------------------------------------------

def test_semantic_scores_follow_eq5_clip_and_scale():
    # unit vectors at known angles to the video embedding e_x: cos = 0.3, 0.7, -0.2
    video = torch.tensor([[1.0, 0.0]] * 4)
    texts = {"a": [0.3, (1 - 0.09) ** 0.5], "b": [0.7, (1 - 0.49) ** 0.5], "c": [-0.2, (1 - 0.04) ** 0.5]}
    spans = ["a", "b", "c", ""]
    scores = semantic_scores(spans, video, lambda s: torch.tensor([texts[x] for x in s]), weight=2.0)
    assert scores == pytest.approx([0.6, 1.0, 0.0, 0.0])  # min(1, 2*0.3); min(1, 1.4); max(cos, 0); empty span


def test_semantic_reward_is_gated_by_the_accuracy_reward_by_name(small_world, tmp_path):
    from synthetic.captions import caption

    video = str(Path(small_world.root) / "videos" / "v0000.mp4")
    # what the video shows, so the pretrained SigLIP's Eq. 5 score is above 0 and the gate has something to cut
    seen = caption(json.loads((Path(small_world.root) / "videos" / "v0000.json").read_text()))
    completions = [_completion(f"Let me see. {seen}", "B"), _completion(f"Let me see. {seen}", "C")]
    columns = {"path": [video, video], "solution": ["<answer>B</answer>"] * 2,
               "problem_type": ["multiple choice"] * 2, "options": [["A. x", "B. y", "C. z"]] * 2}
    ungated = SemanticConsistencyReward(TINY_SEMANTIC.model_copy(update={"mode": "ungated"}), str(tmp_path))
    gated = SemanticConsistencyReward(TINY_SEMANTIC, str(tmp_path))
    off = SemanticConsistencyReward(TINY_SEMANTIC.model_copy(update={"mode": "off"}), str(tmp_path))
    raw = ungated(completions, **columns)
    assert raw[0] == raw[1] and raw[0] != 0.0  # same span, same video
    assert gated(completions, **columns) == [raw[0], 0.0]  # the wrong answer's consistency is not rewarded
    assert off(completions, **columns) == [0.0, 0.0]


def test_video_embeddings_are_computed_once_and_then_read_from_memory_or_storage(small_world, tmp_path):
    video = str(Path(small_world.root) / "videos" / "v0001.mp4")
    first = SemanticConsistencyReward(TINY_SEMANTIC.model_copy(update={"mode": "ungated"}), str(tmp_path))
    completions = [_completion("Hmm. The square turns blue.", "1")] * 8
    columns = {"path": [video] * 8, "solution": ["<answer>1</answer>"] * 8, "problem_type": ["numerical"] * 8}
    a = first(completions, **columns)
    first(completions, **columns)  # a second step over the same video
    assert first.embeddings.stats == {"computed": 1, "from_storage": 0, "from_memory": 1}
    second = SemanticConsistencyReward(TINY_SEMANTIC.model_copy(update={"mode": "ungated"}), str(tmp_path))
    assert second(completions, **columns) == a  # a new process: from the storage root, not recomputed
    assert second.embeddings.stats["computed"] == 0 and second.embeddings.stats["from_storage"] == 1
    assert list((tmp_path / "reward_cache").rglob("*.npy"))


def test_compiled_image_tower_gives_the_eager_embeddings(small_world, tmp_path):
    video = str(Path(small_world.root) / "videos" / "v0002.mp4")
    eager = SemanticConsistencyReward(TINY_SEMANTIC, str(tmp_path / "eager")).embeddings
    compiled = SemanticConsistencyReward(TINY_SEMANTIC.model_copy(update={"compile": True}),
                                         str(tmp_path / "compiled")).embeddings
    assert compiled.media_embedding(video) == pytest.approx(eager.media_embedding(video), abs=1e-5)
    assert compiled._image_tower is not eager._image_tower  # the shared eager model is left untouched


def test_videorft_reward_sums_format_accuracy_and_gated_semantic(small_world, tmp_path):
    from training import rewards

    video = str(Path(small_world.root) / "videos" / "v0000.mp4")
    config = RewardConfig(functions=["videorft_reward", "semantic_consistency_reward"], semantic=TINY_SEMANTIC)
    videorft_reward, semantic_consistency_reward = rewards.build_reward_funcs(config, str(tmp_path))
    completions = [_completion("First. The circle moves.", "3.5"), "3.5", _completion("First. The circle.", "2")]
    columns = {"path": [video] * 3, "solution": ["<answer>3.5</answer>"] * 3, "problem_type": ["numerical"] * 3}
    total = videorft_reward(completions, **columns)
    semantic = semantic_consistency_reward(completions, **columns)
    assert total[0] == pytest.approx(1.0 + 1.0 + semantic[0])
    assert total[1] == 0.0  # no tags: no format, no extractable answer
    assert total[2] == pytest.approx(1.0) and semantic[2] == 0.0  # right format, wrong answer, gate closed


# -- recipes ------------------------------------------------------------------------------------------------

def test_recipe_rejects_unknown_trainer_keys_naming_them(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text(yaml.safe_dump({"method": "grpo", "trainer": {"num_generation": 8}}))
    with pytest.raises(RecipeError, match="num_generation"):
        load_recipe(bad, "grpo")


def test_paper_recipes_carry_the_papers_grpo_settings():
    for profile in ("paper-3b", "paper-7b"):
        recipe = load_recipe(ROOT / "configs" / profile / "grpo.yaml", "grpo")
        t = recipe.trainer
        assert (t["num_generations"], t["beta"], t["learning_rate"], t["max_completion_length"],
                t["temperature"]) == (8, 0.04, 1e-6, 1024, 1.0)
        assert recipe.reward.semantic.weight == 2.0 and recipe.reward.semantic.mode == "gated"
        sft = load_recipe(ROOT / "configs" / profile / "sft.yaml", "sft")
        assert sft.trainer["learning_rate"] == 1e-6 and sft.trainer["num_train_epochs"] == 1


# -- SFT label masking --------------------------------------------------------------------------------------

def test_sft_collator_trains_on_the_assistant_turn_only(sft_file, tmp_path):
    from training.data import load_training_data
    from training.model import load_processor
    from training.sft import VideoSFTCollator, configure_processor
    from videorft.frames import FrameCache, FrameSpec

    data = load_training_data(str(sft_file), require_process=True)
    processor = load_processor("tiny-random")
    configure_processor(processor, 4 * 28 * 28, 16 * 28 * 28)
    frames = FrameCache(FrameSpec(frames=4, max_pixels=16 * 28 * 28), disk_dir=tmp_path / "frames")
    video_row = next(r for r in data.rows if r["data_type"] == "video")
    image_row = next(r for r in data.rows if r["data_type"] == "image")
    batch = VideoSFTCollator(processor, frames)([video_row, image_row])
    assert "pixel_values_videos" in batch and "pixel_values" in batch  # both rows keep their media
    tok = processor.tokenizer
    for i, row in enumerate((video_row, image_row)):
        labels = batch["labels"][i]
        kept = labels[labels != -100]
        assert tok.decode(kept) == row["process"] + row["solution"] + "<|im_end|>\n"
        # nothing of the prompt, the padding or the vision placeholders is trained on
        ids = batch["input_ids"][i]
        vision = (ids == tok.convert_tokens_to_ids("<|video_pad|>")) | (ids == tok.convert_tokens_to_ids(
            "<|image_pad|>"))
        assert vision.any() and (labels[vision] == -100).all()
        assert (labels[batch["attention_mask"][i] == 0] == -100).all()
    assert frames.decoded == 2
    VideoSFTCollator(processor, frames)([video_row, image_row])
    assert frames.decoded == 2  # decoded frames are reused


# -- entry points -------------------------------------------------------------------------------------------

def _recipe(tmp_path: Path, method: str, **trainer: object) -> Path:
    base = yaml.safe_load((ROOT / "configs" / "tiny" / f"{method}.yaml").read_text())
    base["trainer"].update({"save_steps": 1, "logging_steps": 1, **trainer})
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _run(module: str, args: list[str], tmp_path: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEORFT_STORAGE_ROOT": str(tmp_path / "storage"),
                "VIDEORFT_PROJECT_ROOT": str(ROOT), **(env or {})}
    full_env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env=full_env)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


@pytest.mark.slow
def test_sft_entry_point_runs_two_steps_and_resumes_without_repeating_them(sft_file, tmp_path):
    run_dir = tmp_path / "sft"
    args = ["--config", str(_recipe(tmp_path, "sft")), "--model", "tiny-random", "--data", str(sft_file),
            "--output-dir", str(run_dir)]
    first = _run("training.sft", [*args, "--max-steps", "2"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _steps(run_dir) == [1, 2]
    # a step logged after the last checkpoint, then killed: the resumed run logs it again, once
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 3, "time": 0.0, "loss": 9.9}) + "\n")
    second = _run("training.sft", [*args, "--max-steps", "3"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["resumed_from"].endswith("checkpoint-2") and result["global_step"] == 3
    assert _steps(run_dir) == [1, 2, 3]  # step 3 only: steps 1 and 2 were not trained again
    assert 9.9 not in [json.loads(line).get("loss") for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert result["checks"]["checkpoint_loads_and_generates"]["passed"]
    assert (run_dir / "final" / "model.safetensors").exists()
    # resumed at its last step (a run killed after its last checkpoint): the published model is that
    # checkpoint's, not the start model (transformers 5's Trainer alone loads none of the weights)
    shutil.rmtree(run_dir / "final")
    third = _run("training.sft", [*args, "--max-steps", "3"], tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    from safetensors.torch import load_file

    final, last = (load_file(run_dir / name / "model.safetensors") for name in ("final", "checkpoint-3"))
    assert final.keys() == last.keys() and all(bool((final[k] == last[k]).all()) for k in final)
    assert _steps(run_dir) == [1, 2, 3] and json.loads((run_dir / "result.json").read_text())["global_step"] == 3


@pytest.mark.slow
def test_a_killed_two_process_sft_run_resumes_from_its_checkpoint_and_counts_each_step_once(sft_file, tmp_path):
    """torchrun, 2 CPU ranks over gloo: SIGKILL the whole process group once checkpoint-2 is written; the rerun
    resumes from the last checkpoint, trains only the steps after it, and logs each step once."""
    import signal

    run_dir = tmp_path / "sft2"
    args = ["--config", str(_recipe(tmp_path, "sft", save_steps=2, save_total_limit=None,
                                     per_device_train_batch_size=2)), "--model",
            "tiny-random", "--data", str(sft_file), "--output-dir", str(run_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEORFT_STORAGE_ROOT": str(tmp_path / "storage"),
           "VIDEORFT_PROJECT_ROOT": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_RUN_ID", None)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                "training.sft"]
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        killed = subprocess.Popen([*torchrun, *args, "--max-steps", "400"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").exists():
        assert killed.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint-2 in 300 s"
        time.sleep(0.05)
    import psutil

    # torchrun starts each rank in a session of its own: kill the agent and every rank, as a node loss would
    tree = [psutil.Process(killed.pid), *psutil.Process(killed.pid).children(recursive=True)]
    for proc in tree:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=60)
    last = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")
               if (p / "trainer_state.json").exists())
    assert not (run_dir / "result.json").exists() and last < 400, sorted(p.name for p in run_dir.iterdir())
    total = last + 2
    resumed = subprocess.run([*torchrun, *args, "--max-steps", str(total)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["resumed_from"].endswith(f"checkpoint-{last}") and result["global_step"] == total, (
        result["resumed_from"], last, sorted(p.name for p in run_dir.iterdir()))
    assert _steps(run_dir) == list(range(1, total + 1))  # a step logged after the last checkpoint: once
    for rank in (0, 1):  # both ranks trained after the resume, each on its own share
        batches = (run_dir / "loss_media" / f"rank-{rank}.jsonl").read_text().splitlines()
        assert len(batches) >= total, rank
    assert (run_dir / "final" / "model.safetensors").exists()


# a stand-in for the Dagster step (the parent to kill): starts its arguments, wrapped as the launcher wraps them
# when the first is "wrap"; it holds SIGTERM ignored and blocked (seen in this suite) and SIGINT ignored (as a
# process started from a non-interactive shell's background job does), which its children inherit
_STEP = ("import signal, subprocess, sys; from videorft.lifetime import wrap; "
         "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); "
         "signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "subprocess.Popen(wrap(sys.argv[2:]) if sys.argv[1] == 'wrap' else sys.argv[2:]); sys.stdin.read()")


def _sigkill_and_wait(parent: subprocess.Popen, victim: str, timeout: float) -> list[object]:
    """SIGKILL one process of ``parent``'s tree (``step``: ``parent`` itself, as the OOM killer would a Dagster
    step; ``agent``: its child), and no other; what is still alive of the tree after ``timeout`` s (then killed,
    so that a failing test leaves nothing running)."""
    import psutil

    tree = psutil.Process(parent.pid).children(recursive=True)
    if victim == "step":
        parent.kill()
    else:
        psutil.Process(parent.pid).children()[0].kill()

    def running() -> list[psutil.Process]:  # a zombie has exited: its new parent (maybe no init here) never reaps it
        out = []
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
        return out

    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = running()
    for proc in left:
        proc.kill()
    parent.kill()
    parent.wait()
    return left


def test_a_wrapped_command_dies_with_its_parent_and_a_plain_one_does_not():

    import psutil

    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    survivors = {}
    for name in ("plain", "wrap"):
        parent = subprocess.Popen([sys.executable, "-c", _STEP, name, *sleeper], cwd=ROOT, stdin=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        # killed at once: the wrapper may not have asked the kernel yet, and must notice that its parent is gone
        survivors[name] = len(_sigkill_and_wait(parent, "step", timeout=3 if name == "plain" else 20))
    assert survivors == {"plain": 1, "wrap": 0}


def test_a_wrapped_command_stops_on_the_interrupt_a_cancelled_run_forwards():
    """A Dagster run's cancel reaches the launch as SIGINT (PipesSubprocessClient forwards it). A step that holds
    SIGINT ignored passes that on to a plain child, which goes on running; the wrapped one stops."""
    import psutil

    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    stopped = {}
    for name in ("plain", "wrap"):
        parent = subprocess.Popen([sys.executable, "-c", _STEP, name, *sleeper], cwd=ROOT, stdin=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            child = None
            while time.monotonic() < deadline:  # the wrapper has become the command (exec) and Python is up
                kids = psutil.Process(parent.pid).children()
                if kids and kids[0].cmdline()[1:2] == ["-c"]:
                    child = kids[0]
                    break
                time.sleep(0.05)
            assert child is not None
            time.sleep(1.0)  # the interpreter has installed (or, inheriting SIG_IGN, not installed) its handler
            child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + (3 if name == "plain" else 20)
            while time.monotonic() < deadline and not stopped.get(name):
                try:  # the stand-in never reaps its child: exited is a zombie
                    stopped[name] = child.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    stopped[name] = True
                time.sleep(0.1)
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        finally:
            parent.kill()
            parent.wait()
    assert stopped == {"plain": False, "wrap": True}


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["step", "agent"])
def test_a_killed_step_or_elastic_agent_takes_the_ranks_with_it(sft_file, tmp_path, victim):
    """The launcher's command for a 2-process run, started by a stand-in for the Dagster step; once training is
    under way SIGKILL the step (the agent then stops its ranks) or the torchrun agent itself (nothing can forward
    that: each rank, in a session of its own, must notice): every process of the launch exits."""

    from resources.launchers import entry_command
    from videorft.profile import LauncherConfig

    run_dir = tmp_path / "sft"
    args = ["--config", str(_recipe(tmp_path, "sft", save_steps=2, per_device_train_batch_size=2)), "--model",
            "tiny-random", "--data", str(sft_file), "--output-dir", str(run_dir), "--max-steps", "400"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDEORFT_STORAGE_ROOT": str(tmp_path / "storage"),
           "VIDEORFT_PROJECT_ROOT": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_RUN_ID", None)
    command = entry_command(LauncherConfig(num_processes=2), "training.sft", args)
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        step = subprocess.Popen([sys.executable, "-c", _STEP, "wrap", *command], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").exists():
        assert step.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint-2 in 300 s"
        time.sleep(0.05)
    alive = _sigkill_and_wait(step, victim, timeout=60)
    assert alive == [], f"still running 60 s after the {victim} was killed: {alive}"
    assert not (run_dir / "result.json").exists()


@pytest.mark.slow
def test_grpo_entry_point_runs_two_steps_and_resumes_without_repeating_them_or_their_probes(small_world, tmp_path):
    run_dir = tmp_path / "grpo"
    recipe = _recipe(tmp_path, "grpo", max_completion_length=12)
    probe = tmp_path / "probe.json"
    rows = json.loads((Path(small_world.root) / "qa_videos.json").read_text())[:5]
    probe.write_text(json.dumps([{**r, "path": str(Path(small_world.root) / r["path"])} for r in rows]))
    args = ["--config", str(recipe), "--model", "tiny-random", "--data",
            str(Path(small_world.root) / "qa_videos.json"), "--output-dir", str(run_dir), "--probe", str(probe),
            "--set", "probe.every=2", "--set", "probe.max_new_tokens=6"]
    first = _run("training.grpo", [*args, "--max-steps", "2"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    logged = next(r for r in _records(run_dir) if "loss" in r)
    for key in ("rewards/format_reward/mean", "rewards/accuracy_reward/mean",
                "rewards/semantic_consistency_reward/mean", "kl", "completions/mean_length", "learning_rate"):
        assert key in logged, key
    second = _run("training.grpo", [*args, "--max-steps", "3"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _steps(run_dir) == [1, 2, 3]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["resumed_from"].endswith("checkpoint-2")
    # the probe: before step 1, every 2 steps and at the last; a resumed run does not ask step 2 again
    asked = [json.loads(line) for line in (run_dir / "probe.jsonl").read_text().splitlines()]
    assert Counter(r["step"] for r in asked) == {0: 5, 2: 5, 3: 5}
    assert [r["step"] for r in _records(run_dir) if "probe/accuracy_reward" in r] == [0, 2, 3]
    assert result["checks"]["probe_accuracy_rose"]["questions"] == 5


@pytest.mark.slow
def test_tiny_pretrained_is_a_model_name_of_sft_grpo_and_evaluation(sft_file, small_world, tmp_path):
    """The shipped base loads from the package wherever a model is named, and its outputs are cached under
    its weights' identity."""
    for method, data in (("sft", sft_file), ("grpo", Path(small_world.root) / "qa_videos.json")):
        run_dir = tmp_path / method
        out = _run(f"training.{method}", ["--config", str(_recipe(tmp_path, method, max_completion_length=12)
                                                         if method == "grpo" else _recipe(tmp_path, method)),
                                          "--model", "tiny-pretrained", "--data", str(data), "--output-dir",
                                          str(run_dir), "--max-steps", "1"], tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads((run_dir / "result.json").read_text())
        assert result["model"] == "tiny-pretrained" and result["global_step"] == 1
        config = json.loads((run_dir / "final" / "config.json").read_text())
        assert config["text_config"]["hidden_size"] == 128  # the shipped base's sizes, not tiny-random's
    out = _run("evaluation.run", ["--model", "tiny-pretrained", "--benchmarks", "mmvu", "--limit", "2",
                                  "--profile", str(ROOT / "tests" / "fixtures" / "small-profile.yaml"),
                                  "--output", str(tmp_path / "eval")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert scores["model"] == "tiny-pretrained" and scores["model_key"]


@pytest.mark.slow
def test_entry_points_explain_bad_input_without_a_traceback(tmp_path):
    out = _run("training.sft", ["--config", str(ROOT / "configs/tiny/sft.yaml"), "--data",
                                str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path / "o")], tmp_path)
    assert out.returncode == 2 and "missing.jsonl" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_sft_runs_under_deepspeed_zero2_in_one_process(sft_file, tmp_path):
    run_dir = tmp_path / "ds"
    out = _run("training.sft", ["--config", str(_recipe(tmp_path, "sft")), "--model", "tiny-random", "--data",
                                str(sft_file), "--output-dir", str(run_dir), "--max-steps", "2",
                                "--deepspeed", "configs/deepspeed/zero2.json"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["deepspeed"].endswith("zero2.json") and result["global_step"] == 2
    assert any((run_dir / "checkpoint-2").glob("global_step2/*optim_states.pt"))  # DeepSpeed's own state


# -- GRPO sees the video ------------------------------------------------------------------------------------

def _grpo_vision_delta(small_world, tmp_path: Path, ours: bool) -> float:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from training.data import load_training_data
    from training.grpo_trainer import VideoGRPOTrainer
    from training.model import ensure_on_disk, load_model_and_processor, vision_tower
    from training.sft import configure_processor
    from videorft.frames import FrameCache, FrameSpec

    data = load_training_data(str(Path(small_world.root) / "qa_videos.json"), require_process=False,
                              max_samples=2)
    model, processor = load_model_and_processor("tiny-random")
    ensure_on_disk(model, processor, tmp_path / "initial")  # the reference model is rebuilt from here
    configure_processor(processor, 4 * 28 * 28, 16 * 28 * 28)
    frames = FrameCache(FrameSpec(frames=4, max_pixels=16 * 28 * 28))
    rows = [{**r, "prompt": [{"role": "user", "content": r["question"]}]} for r in data.rows]
    generator = torch.Generator().manual_seed(0)

    def random_reward(completions, **kwargs):
        return torch.rand(len(completions), generator=generator).tolist()

    args = GRPOConfig(output_dir=str(tmp_path / ("ours" if ours else "stock")), per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=8, max_steps=1, learning_rate=1e-2, beta=0.04,
                      use_cpu=True, report_to=[], save_strategy="no", remove_unused_columns=False,
                      logging_steps=1)
    cls = VideoGRPOTrainer
    if not ours:
        class StockLossPath(cls):  # the video reaches generate(), the log-prob forwards are stock TRL's
            def _get_per_token_logps_and_entropies(self, *args, **kwargs):
                return GRPOTrainer._get_per_token_logps_and_entropies(self, *args, **kwargs)

        cls = StockLossPath
    trainer = cls(model=model, args=args, reward_funcs=[random_reward], train_dataset=Dataset.from_list(rows),
                  processing_class=processor)
    trainer.frames = frames
    before = {n: p.detach().clone() for n, p in vision_tower(model).named_parameters()}
    trainer.train()
    return max((p.detach() - before[n]).abs().max().item() for n, p in vision_tower(model).named_parameters())


def test_freeze_vision_stops_training_the_vision_tower_and_its_merger_and_nothing_else():
    from training.model import freeze_vision_tower, load_model_and_processor, vision_tower

    model, _ = load_model_and_processor("tiny-random")
    visual = dict(vision_tower(model).named_parameters())
    assert any("merger" in name for name in visual)
    assert freeze_vision_tower(model) == sum(p.numel() for p in visual.values()) > 0
    assert not any(p.requires_grad for p in visual.values())
    ids = {id(p) for p in visual.values()}
    assert all(p.requires_grad for p in model.parameters() if id(p) not in ids)


@pytest.mark.slow
def test_a_grpo_step_updates_the_vision_tower_which_stock_trl_leaves_untouched(small_world, tmp_path):
    assert _grpo_vision_delta(small_world, tmp_path, ours=True) > 0.0
    assert _grpo_vision_delta(small_world, tmp_path, ours=False) == 0.0  # the stock TRL bug, still there


def test_generation_batches_never_mix_images_with_videos():
    from training.grpo_trainer import media_grouped_chunks

    kinds = ["video", "image", "video", "image", "video", "video", "image"]
    chunks = media_grouped_chunks(kinds, 2, [6, 5, 4, 3, 2, 1, 0], lambda n: list(reversed(range(n))))
    assert all(len({kinds[i] for i in chunk}) == 1 and len(chunk) == 2 for chunk in chunks)
    assert sorted(i for chunk in chunks for i in chunk) == [0, 2, 3, 4, 5, 6]  # the odd third image, row 1, waits


@pytest.mark.slow
def test_grpo_runs_several_prompts_per_step_over_images_and_videos(sft_file, tmp_path):
    # 2 prompts x 2 completions per step over a data set of videos and images: TRL's stock sampler mixed the
    # kinds in one batch and its processor call failed on the first step
    run_dir = tmp_path / "grpo"
    recipe = _recipe(tmp_path, "grpo", max_completion_length=8, num_generations=2, per_device_train_batch_size=4)
    out = _run("training.grpo", ["--config", str(recipe), "--model", "tiny-random", "--data", str(sft_file),
                                 "--output-dir", str(run_dir), "--max-steps", "3"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert _steps(run_dir) == [1, 2, 3]


def test_a_set_override_in_exponent_notation_is_a_number():
    from training.config import apply_overrides

    raw = apply_overrides({"trainer": {}}, ["trainer.learning_rate=1e-3", "trainer.optim=adamw_torch",
                                           "reward.semantic.mode=ungated"])
    assert raw["trainer"] == {"learning_rate": 0.001, "optim": "adamw_torch"}
    assert raw["reward"]["semantic"]["mode"] == "ungated"


def test_a_fresh_interpreter_imports_torchvision_before_any_of_our_modules():
    # the install's hook (scripts/setup.sh): PyPI's CUDA torchvision next to the CPU torch, in any process
    out = subprocess.run([sys.executable, "-c", "import torchvision.transforms; import sys; "
                          "print(any(m.split('.')[0] in ('videorft', 'training') for m in sys.modules))"],
                         cwd="/", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_our_packages_make_torchvision_importable_without_the_install_hook_and_without_importing_torch():
    # an install made without scripts/setup.sh has no venv-wide hook: importing `training` must cover it, and
    # loading the Dagster definitions (every run worker does) must not pay torch's import for it
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_BeforeTorchvision']; "
            "import dagster_project.definitions; print('torch' in sys.modules); "
            "import torchvision.transforms; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "ok"]


@pytest.mark.slow
def test_accelerate_launch_of_the_sft_entry_point_gets_past_torchvision(sft_file, tmp_path):
    """The reproduction from the scale issue (accelerate imports torchvision before our code runs). With
    ``--cpu`` accelerate starts ONE process whatever ``--num_processes`` says: this proves the install, not
    multi-process training."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "training.sft", "--config", str(_recipe(tmp_path, "sft")), "--model", "tiny-random",
              "--data", str(sft_file), "--output-dir", str(tmp_path / "run"), "--max-steps", "2"]
    out = subprocess.run(launch, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "VIDEORFT_STORAGE_ROOT": str(tmp_path / "s")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torchvision::nms" not in out.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["global_step"] == 2
