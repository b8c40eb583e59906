"""Prompt files: loaded and checked, hashed by content, rendered into messages with media references."""

from __future__ import annotations

import shutil

import pytest

from curation.prompts import (
    PROMPT_NAMES,
    SUB_PROMPTS,
    PromptError,
    PromptSet,
    answer_format,
    cot_generation_messages,
    default_prompts_dir,
    load_prompt,
    media_ref,
    refinement_messages,
    representation_messages,
)


def test_every_shipped_prompt_loads_with_a_stable_content_hash():
    for name in PROMPT_NAMES:
        first, again = load_prompt(name), load_prompt(name)
        assert first.content_hash == again.content_hash and len(first.content_hash) == 16
        assert PromptSet.from_manifest(first.to_manifest()).content_hash == first.content_hash
    assert load_prompt("structured_representation").schema["required"] == ["caption", "frames"]


def test_editing_a_prompt_file_changes_its_hash_only(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    before = {n: load_prompt(n, folder).content_hash for n in PROMPT_NAMES}
    path = folder / "cot_refinement.yaml"
    path.write_text(path.read_text().replace("careful reviewer", "meticulous reviewer"))
    after = {n: load_prompt(n, folder).content_hash for n in PROMPT_NAMES}
    assert after["cot_refinement"] != before["cot_refinement"]
    assert after["cot_generation"] == before["cot_generation"]


def test_an_unknown_placeholder_or_missing_section_is_a_clear_error(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "cot_generation.yaml"
    path.write_text(path.read_text().replace("Question: $question", "Question: $questoin"))
    with pytest.raises(PromptError, match=r"unknown placeholder.*\$questoin"):
        load_prompt("cot_generation", folder)
    (folder / "cot_refinement.yaml").write_text("system: hi\n")
    with pytest.raises(PromptError, match="lacks the section"):
        load_prompt("cot_refinement", folder)
    with pytest.raises(PromptError, match="needs"):
        load_prompt("structured_representation", tmp_path / "nowhere")


def test_cot_prompt_composes_the_five_sub_prompts_and_the_type_specific_answer_format():
    prompt = load_prompt("cot_generation")
    messages = cot_generation_messages(prompt, '{"caption": "x"}', "How many?", [], "numerical", "video")
    text = messages[1]["content"]
    positions = [text.index(prompt.spec["sub_prompts"][k].strip().split("\n")[0][:40]) for k in SUB_PROMPTS]
    assert positions == sorted(positions)  # in the paper's order
    assert "Please provide the numerical value within the <answer> </answer> tags." in text
    assert answer_format(prompt, "multiple choice", "video").startswith("Please provide only the single option letter")
    assert "transcribe text from the image" in answer_format(prompt, "OCR", "image")
    mc = cot_generation_messages(prompt, "{}", "Which?", ["A. red", "B. blue"], "multiple choice", "image")[1]
    assert "Options:\nA. red\nB. blue" in mc["content"] and "image" in mc["content"]


def test_media_travel_as_references_in_describer_and_refiner_messages():
    ref = media_ref("/w/v.mp4", "ab" * 32, "video", {"fps": 1.0, "max_pixels": 100})
    rep = representation_messages(load_prompt("structured_representation"), ref, [0.0, 1.0, 2.0], 2.5, 1.0, 64, 48)
    assert rep[1]["content"][0] is ref
    assert "0.0, 1.0, 2.0" in rep[1]["content"][1]["text"]
    img = media_ref("/w/i.png", "cd" * 32, "image", {"frames": 1, "max_pixels": 100})
    refine = refinement_messages(load_prompt("cot_refinement"), img, "Q?", [], "<think>t</think><answer>a</answer>",
                                 "Please provide your text answer within the <answer> </answer> tags.")
    assert refine[1]["content"][0] is img and "image" in refine[1]["content"][1]["text"]
