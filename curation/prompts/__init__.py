"""The curation prompts: template files in this folder, loaded, checked and rendered into chat messages.

A prompt set is one YAML file (plus, for the describer, its JSON schema). Its content hash names the exact
text that produced a response; the prompt assets use it as their code and data version, and every curated
row records it. Templates use ``$name`` placeholders (``string.Template``), so JSON examples need no escaping.
Media never appears inline: messages carry media *references* (``{"type": "media", ...}``) that the expert
client turns into image or video parts for each endpoint, and hashes for the response cache.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml


def prompt_files(folder: Path) -> dict[str, tuple[str, ...]]:
    """Every ``<name>.yaml`` in a prompt folder is a prompt (with ``<name>.schema.json`` when present): adding an
    expert stage's prompt is adding its file, here or in the profile's ``curation.prompts_dir``."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        schema = folder / f"{path.stem}.schema.json"
        found[path.stem] = (path.name, schema.name) if schema.exists() else (path.name,)
    return found


_SHIPPED = prompt_files(Path(__file__).resolve().parent)
PROMPT_NAMES: tuple[str, ...] = tuple(_SHIPPED)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "structured_representation": ("system", "video", "image", "repair"),
    "cot_generation": ("system", "sub_prompts", "template", "answer_formats", "options_header", "media_words",
                       "repair"),
    "cot_refinement": ("system", "video", "image", "repair"),
}
SUB_PROMPTS = ("simulated_observation", "task_understanding", "selective_focus", "visual_reasoning",
               "reflective_answering")
# The placeholders each template may use; anything else is a typo caught at load time.
_PLACEHOLDERS: dict[tuple[str, str], frozenset[str]] = {
    ("structured_representation", "video"): frozenset({"num_frames", "fps_text", "duration_text", "timestamps"}),
    ("structured_representation", "image"): frozenset({"width_text"}),
    ("cot_generation", "template"): frozenset({*SUB_PROMPTS, "media_word", "representation", "question",
                                               "options_block", "answer_format"}),
    ("cot_refinement", "video"): frozenset({"question", "options_block", "initial_response", "answer_format"}),
    ("cot_refinement", "image"): frozenset({"question", "options_block", "initial_response", "answer_format"}),
}


class PromptError(ValueError):
    """A prompt folder or file that cannot be used; the message names the file and the problem."""


def default_prompts_dir() -> Path:
    return Path(__file__).resolve().parent


def _placeholders(template: str) -> set[str]:
    return {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(template)
            if m.group("named") or m.group("braced")}


@dataclass(frozen=True)
class PromptSet:
    """One prompt's files (name -> text); ``content_hash`` is its identity everywhere downstream."""

    name: str
    files: dict[str, str] = field(hash=False)

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256(self.name.encode())
        for filename in sorted(self.files):
            digest.update(b"\0" + filename.encode() + b"\0" + self.files[filename].encode())
        return digest.hexdigest()[:16]

    @cached_property
    def spec(self) -> dict[str, Any]:
        return yaml.safe_load(self.files[f"{self.name}.yaml"])

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        schema_file = next((f for f in self.files if f.endswith(".schema.json")), None)
        return json.loads(self.files[schema_file]) if schema_file else None

    def to_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "content_hash": self.content_hash, "files": dict(self.files)}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> PromptSet:
        prompt = cls(manifest["name"], dict(manifest["files"]))
        validate_prompt(prompt)
        return prompt

    def render(self, key: str, **values: Any) -> str:
        template = self.spec[key]
        return string.Template(template).substitute({k: str(v) for k, v in values.items()}).strip()

    def repair_message(self, error: str) -> dict[str, Any]:
        return {"role": "user", "content": self.render("repair", error=error)}


def validate_prompt(prompt: PromptSet) -> None:
    """Refuse a prompt set with a missing section, an unknown placeholder or (describer) an invalid schema."""
    where = f"prompt '{prompt.name}' ({prompt.name}.yaml)"
    try:
        spec = prompt.spec
    except yaml.YAMLError as exc:
        raise PromptError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise PromptError(f"{where} must be a mapping")
    missing = [k for k in _REQUIRED.get(prompt.name, ("system",)) if k not in spec]
    if missing:
        raise PromptError(f"{where} lacks the section(s) {missing}")
    for (name, key), allowed in _PLACEHOLDERS.items():
        if name == prompt.name:
            unknown = _placeholders(spec[key]) - allowed
            if unknown:
                raise PromptError(f"{where}: section '{key}' uses unknown placeholder(s) "
                                  f"{sorted('$' + u for u in unknown)}; allowed: {sorted(allowed)}")
    if prompt.name == "cot_generation":
        lacking = [s for s in SUB_PROMPTS if s not in spec["sub_prompts"]]
        if lacking:
            raise PromptError(f"{where}: 'sub_prompts' lacks {lacking} (paper 2.2 names five)")
    if prompt.schema is not None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(prompt.schema)
        except SchemaError as exc:
            raise PromptError(f"prompt '{prompt.name}': invalid JSON schema: {exc.message}") from exc


def load_prompt(name: str, prompts_dir: str | Path | None = None) -> PromptSet:
    folder = Path(prompts_dir) if prompts_dir else default_prompts_dir()
    known = prompt_files(folder) if folder.is_dir() else {}
    if name not in known and name not in PROMPT_NAMES:
        raise PromptError(f"unknown prompt {name!r}: no {name}.yaml in {folder}; prompts there: {sorted(known)}")
    names = _SHIPPED.get(name) or known[name]  # a shipped prompt needs its shipped files (its schema) anywhere
    files: dict[str, str] = {}
    for filename in names:
        path = folder / filename
        if not path.is_file():
            raise PromptError(f"prompt '{name}' needs {path}; copy it from {default_prompts_dir()} "
                              "or fix curation.prompts_dir in the profile")
        files[filename] = path.read_text(encoding="utf-8")
    try:
        json.loads(files[names[-1]]) if names[-1].endswith(".json") else None
    except json.JSONDecodeError as exc:
        raise PromptError(f"prompt '{name}': {names[-1]} is not valid JSON: {exc}") from exc
    prompt = PromptSet(name, files)
    validate_prompt(prompt)
    return prompt


# ---- rendering into chat messages ----------------------------------------------------------------------

def media_ref(uri: str, sha256: str, data_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A media reference inside a message: the client expands it; the cache keys it by content hash + spec."""
    return {"type": "media", "data_type": data_type, "sha256": sha256, "uri": uri, "spec": spec}


def _options_block(header: str, options: list[str]) -> str:
    return f"{header}\n" + "\n".join(options) if options else ""


def _fmt_seconds(x: float) -> str:
    return f"{x:.1f}"


def representation_messages(prompt: PromptSet, media: dict[str, Any], timestamps: list[float],
                            duration: float, fps: float | None, width: int, height: int) -> list[dict[str, Any]]:
    if media["data_type"] == "image":
        text = prompt.render("image", width_text=f"{width}x{height} pixels")
    else:
        text = prompt.render(
            "video", num_frames=len(timestamps),
            fps_text=f"{fps:g} frame(s) per second" if fps else "uniform intervals",
            duration_text=f"{duration:.1f} s", timestamps=", ".join(_fmt_seconds(t) for t in timestamps))
    return [{"role": "system", "content": prompt.spec["system"].strip()},
            {"role": "user", "content": [media, {"type": "text", "text": text}]}]


def answer_format(prompt: PromptSet, problem_type: str, data_type: str) -> str:
    formats = prompt.spec["answer_formats"]
    if problem_type not in formats:
        raise PromptError(f"prompt '{prompt.name}' has no answer format for problem type {problem_type!r}")
    return string.Template(formats[problem_type]).safe_substitute(media_word=prompt.spec["media_words"][data_type])


def cot_generation_messages(prompt: PromptSet, representation: str, question: str, options: list[str],
                            problem_type: str, data_type: str) -> list[dict[str, Any]]:
    spec = prompt.spec
    media_word = spec["media_words"][data_type]
    subs = {k: string.Template(spec["sub_prompts"][k]).safe_substitute(media_word=media_word).strip()
            for k in SUB_PROMPTS}
    text = prompt.render("template", **subs, media_word=media_word, representation=representation,
                         question=question, options_block=_options_block(spec["options_header"], options),
                         answer_format=answer_format(prompt, problem_type, data_type))
    return [{"role": "system", "content": spec["system"].strip()}, {"role": "user", "content": text}]


def refinement_messages(prompt: PromptSet, media: dict[str, Any], question: str, options: list[str],
                        initial_response: str, answer_format_text: str) -> list[dict[str, Any]]:
    text = prompt.render(media["data_type"], question=question, options_block=_options_block("Options:", options),
                         initial_response=initial_response, answer_format=answer_format_text)
    return [{"role": "system", "content": prompt.spec["system"].strip()},
            {"role": "user", "content": [media, {"type": "text", "text": text}]}]
