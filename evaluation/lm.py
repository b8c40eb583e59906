"""The lm-eval model class that reads videos: ``videorft`` (Hugging Face backend, vLLM when installed).

lm-eval hands ``generate_until`` every request at once; each carries the question text (the tasks'
``doc_to_text``), the generation kwargs and ``{"visual": [video URI]}`` (the tasks' ``doc_to_image``). This
adapter:

* works in chunks of ``chunk_size`` requests, in lm-eval's order, and decodes a chunk's videos only when that
  chunk is generated (``FrameCache``: each video once per frame spec, kept on disk across runs);
* caches every finished chunk under ``cache_dir`` keyed by the checkpoint's identity, the frame/pixel
  config, the generation settings and the chunk's own requests, so an interrupted evaluation resumes at the
  first unfinished chunk and never pays twice for a generation;
* returns a failure marker (``FAILED_PREFIX`` + reason) for a sample whose video cannot be decoded or whose
  generation raises, so the task counts and reports it instead of scoring it as a wrong answer;
* pays for a video once: its processed pixels and its vision-tower output are reused by every other question
  on it and every benchmark sharing it in this process, and so is the language model's prefill of the prompt up
  to the end of the video (``VisionReuse``; a benchmark's questions are taken in video order, so a video's
  questions are generated close together; ``reuse_vision=False`` turns all of it off);
* decodes greedily: ``do_sample=False`` is argmax at every step, which is what the paper's ``top_p=0.001``
  (with temperature 1, the nucleus keeps only the most probable token unless two tie within 0.1%) amounts to,
  without sampling noise; no stop string (reasoning contains blank lines) and up to ``max_new_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from evaluation.vision_reuse import VisionReuse
from videorft.frames import FrameCache, media_part
from videorft.media import MIN_PIXELS, media_cache_dir
from videorft.profile import FrameSpec

FAILED_PREFIX = "\x00videorft-failed: "
BLANK_LEVEL = 128  # the grey of the "blank" video control
LOG = logging.getLogger("videorft.evaluation")


def is_failure(output: str | None) -> bool:
    return output is None or output.startswith(FAILED_PREFIX)


def model_identity(name_or_path: str) -> str:
    """What makes a checkpoint's outputs what they are, cheaply: a hub id as is; a folder by its files'
    names, sizes and modification times (hashing gigabytes of weights per evaluation would cost minutes)."""
    from videorft.shipped import is_shipped, weights_tag

    if is_shipped(name_or_path):  # the shipped weights, by their card's file hashes
        return f"{name_or_path}-{weights_tag(name_or_path)}"
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    digest = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        digest.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{path.name}-{digest.hexdigest()[:16]}"


class ChunkCache:
    """Finished chunks as JSON files: ``<root>/<model key>/<chunk key>.json``, written atomically."""

    def __init__(self, root: str | os.PathLike[str] | None, model_key: str) -> None:
        self.folder = Path(root) / model_key if root else None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> list[str] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        try:
            outputs = json.loads(path.read_text())["outputs"] if path.exists() else None
        except (OSError, ValueError, KeyError):
            outputs = None  # a torn file: generate again
        if outputs is None:
            self.misses += 1
        else:
            self.hits += 1
        return outputs

    def put(self, key: str, outputs: list[str], meta: dict[str, Any]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{key}.json.part"
        tmp.write_text(json.dumps({"outputs": outputs, **meta}))
        os.replace(tmp, self.folder / f"{key}.json")


def _visual(args: Sequence[Any]) -> str:
    extra = args[2] if len(args) > 2 and isinstance(args[2], dict) else {}
    visual = extra.get("visual")
    if isinstance(visual, list | tuple):
        visual = visual[0] if visual else None
    if not visual:
        raise ValueError("request has no video: the task's doc_to_image must return the video URI")
    return str(visual)


@register_model("videorft")
class VideoLM(LM):
    """Qwen2.5-VL (any checkpoint our model factory loads) answering video questions for lm-eval."""

    MULTIMODAL = True

    def __init__(self, pretrained: str = "tiny-random", frames: int = 32, max_pixels: int = 256 * 28 * 28,
                 min_pixels: int = MIN_PIXELS, max_new_tokens: int = 1024, batch_size: int = 4,
                 chunk_size: int = 16, cache_dir: str | None = None, frame_cache_dir: str | None = None,
                 media_cache: str | None = None,
                 dtype: str = "auto", attn_implementation: str | None = None, backend: str = "hf",
                 model_version: str | None = None, device: str | None = None, reuse_vision: bool = True,
                 video_control: str = "none", progress: Callable[[int, int], None] | None = None, **_: Any) -> None:
        super().__init__()
        self.pretrained, self.backend = pretrained, backend
        self.spec = FrameSpec(frames=int(frames), max_pixels=int(max_pixels), min_pixels=int(min_pixels))
        self.max_new_tokens, self.batch_size, self.chunk_size = int(max_new_tokens), int(batch_size), int(chunk_size)
        self.dtype, self.attn_implementation, self.device_name = dtype, attn_implementation, device
        media_cache = media_cache or media_cache_dir()
        self.frames = FrameCache(self.spec, disk_dir=frame_cache_dir or str(Path(media_cache) / "eval_frames"),
                                 media_cache_dir=media_cache)
        from evaluation.task_files import VIDEO_CONTROLS

        if video_control not in VIDEO_CONTROLS:
            raise ValueError(f"video_control {video_control!r}: expected one of {VIDEO_CONTROLS}")
        self.video_control = video_control
        control = "" if video_control == "none" else f"|{video_control}"
        self.model_key = hashlib.sha256(
            f"{model_version or model_identity(pretrained)}|{backend}|{self.spec.key()}{control}".encode()
        ).hexdigest()[:24]
        self.cache = ChunkCache(cache_dir, self.model_key)
        self.progress = progress
        self.generated = 0
        self._model: Any = None
        self._processor: Any = None
        self._llm: Any = None
        self.reuse = VisionReuse() if reuse_vision else None

    # -- lm-eval interface ----------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """Each request's continuation scored as the whole assistant reply to its context and video: the sum of
        its tokens' log-probabilities, the end-of-turn token included (so "white" is not credited with the
        start of "white triangle"), and whether greedy decoding would write exactly it."""
        items = [(req.args[0], _visual(req.args), req.args[1]) for req in requests]
        return [(float(ll), bool(greedy)) for ll, greedy in
                self._chunked(items, "loglikelihood", lambda chunk: self._score_chunk(chunk))]

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        raise NotImplementedError("videorft tasks are generative (output_type: generate_until)")

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        items = [(req.args[0], _visual(req.args), dict(req.args[1] or {})) for req in requests]
        max_new = {int(kw.get("max_gen_toks", self.max_new_tokens)) for _, _, kw in items}
        if len(max_new) > 1:
            raise ValueError(f"one generation length per call, got {sorted(max_new)}")
        length = max_new.pop() if max_new else self.max_new_tokens
        return self._chunked([(c, v, "") for c, v, _ in items], length,
                             lambda chunk: self._generate_chunk([(c, v) for c, v, _ in chunk], length))

    def _chunked(self, items: list[tuple[str, str, str]], kind: int | str,
                 compute: Callable[[list[tuple[str, str, str]]], list[Any]]) -> list[Any]:
        """``compute`` over ``(context, video, continuation)`` items in cached chunks, returned in input order.
        The questions on a video go side by side, so one prefill of it serves them all (lm-eval's order
        otherwise); ``kind`` (a generation length, or the request type) is part of every chunk's key."""
        order = (sorted(range(len(items)), key=lambda i: items[i][1]) if self.reuse is not None
                 else list(range(len(items))))
        ordered = [items[i] for i in order]
        outputs: list[Any] = []
        for start in range(0, len(ordered), self.chunk_size):
            chunk = ordered[start:start + self.chunk_size]
            # a generation's chunk key is as it always was (no continuation), so earlier caches stay valid
            requests = [(c, v, t) if t else (c, v) for c, v, t in chunk]
            key = hashlib.sha256(json.dumps([self.model_key, kind, requests]).encode()).hexdigest()[:32]
            cached = self.cache.get(key)
            if cached is None:
                started = time.perf_counter()
                cached = compute(chunk)
                self.cache.put(key, cached, {"seconds": time.perf_counter() - started, "kind": kind})
            outputs.extend(cached)
            if self.progress is not None:
                self.progress(len(outputs), len(ordered))
        restored: list[Any] = [None] * len(outputs)
        for position, original in enumerate(order):
            restored[original] = outputs[position]
        return restored

    # -- scoring a given reply --------------------------------------------------------------------------------
    def _score_chunk(self, chunk: list[tuple[str, str, str]]) -> list[list[float | bool]]:
        """``[log-probability, greedy]`` of each item's continuation; ``[nan, False]`` where the video cannot be
        decoded or the forward pass raises (the task marks the question failed, as a failed generation)."""
        out: list[list[float | bool]] = []
        for context, video, reply in chunk:
            try:
                out.append(self._score(context, self._frames(video), reply))
            except Exception as exc:  # one broken video fails its own questions only
                LOG.warning("no likelihood for a reply on %s: %s: %s", video, type(exc).__name__, exc)
                out.append([float("nan"), False])
        return out

    def _score(self, context: str, frames: Any, reply: str) -> list[float | bool]:
        import torch

        model, processor = self._hf()
        user = [{"role": "user", "content": [media_part("image" if frames.ndim == 3 else "video", frames),
                                             {"type": "text", "text": context}]}]
        prompt = processor.apply_chat_template([user], tokenize=True, return_dict=True, add_generation_prompt=True,
                                               return_tensors="pt")
        full = processor.apply_chat_template([[*user, {"role": "assistant", "content": [
            {"type": "text", "text": reply}]}]], tokenize=True, return_dict=True, return_tensors="pt")
        ids, start = full["input_ids"][0], prompt["input_ids"].shape[1]
        end_of_turn = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        stop = next((i for i in range(start, len(ids)) if int(ids[i]) == end_of_turn), len(ids) - 1)
        with torch.inference_mode():
            logits = model(**full.to(model.device)).logits[0, start - 1:stop].float()
        target = ids[start:stop + 1].to(logits.device)
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, target[:, None])[:, 0]
        return [float(logprobs.sum()), bool((logits.argmax(dim=-1) == target).all())]

    # -- generation -----------------------------------------------------------------------------------------
    def _generate_chunk(self, chunk: list[tuple[str, str]], max_new: int) -> list[str]:
        """Decode the chunk's videos (lazily, now), then generate in batches; failures are marked per sample."""
        decoded: list[Any] = []
        for _, video in chunk:
            try:
                decoded.append(self._frames(video))
            except Exception as exc:  # a broken or missing video fails its own sample only
                decoded.append(f"{FAILED_PREFIX}cannot decode {video}: {type(exc).__name__}: {exc}")
        outputs: list[str | None] = [d if isinstance(d, str) else None for d in decoded]
        ready = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
        for b in range(0, len(ready), self.batch_size):
            batch = ready[b:b + self.batch_size]
            try:
                texts = self._generate([chunk[i][0] for i in batch], [decoded[i] for i in batch], max_new)
            except Exception as exc:
                LOG.warning("generation failed for a batch of %d (%s); retrying one by one", len(batch), exc)
                texts = []
                for i in batch:  # isolate the sample that breaks the batch
                    try:
                        texts.extend(self._generate([chunk[i][0]], [decoded[i]], max_new))
                    except Exception as one:
                        texts.append(f"{FAILED_PREFIX}generation failed: {type(one).__name__}: {one}")
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text
                self.generated += 1
        return [o if o is not None else f"{FAILED_PREFIX}no output" for o in outputs]

    def _frames(self, video: str) -> Any:
        """The decoded frames the model sees: the video's, or under the ``blank`` control a uniform grey of the
        same shape (the question and the frame count stay; what the video shows is gone)."""
        frames = self.frames.get(video)
        if self.video_control == "blank":
            import numpy as np

            return np.full_like(frames, BLANK_LEVEL)
        return frames

    def _generate(self, prompts: list[str], frames: list[Any], max_new: int) -> list[str]:
        if self.backend == "vllm":
            return self._generate_vllm(prompts, frames, max_new)
        import torch

        model, processor = self._hf()
        convs = [[{"role": "user", "content": [media_part("image" if f.ndim == 3 else "video", f),
                                               {"type": "text", "text": p}]}] for p, f in zip(prompts, frames,
                                                                                          strict=True)]
        inputs = processor.apply_chat_template(convs, tokenize=True, return_dict=True, add_generation_prompt=True,
                                               return_tensors="pt", processor_kwargs={"padding": True})
        inputs = inputs.to(model.device)
        greedy = {"max_new_tokens": max_new, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        new = None
        if self.reuse is not None:
            new = self.reuse.generate_on_heads(model, inputs, processor.tokenizer.pad_token_id, **greedy)
        if new is None:
            with torch.inference_mode():
                out = model.generate(**inputs, **greedy)
            new = out[:, inputs["input_ids"].shape[1]:]
        return processor.batch_decode(new, skip_special_tokens=True)

    def _hf(self) -> tuple[Any, Any]:
        if self._model is None:
            from training.model import load_model_and_processor

            self._model, self._processor = load_model_and_processor(self.pretrained, dtype=self.dtype,
                                                                    attn_implementation=self.attn_implementation)
            self._processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
            if self.device_name:
                self._model.to(self.device_name)
            elif _cuda():
                self._model.to("cuda")
            self._model.eval()
            if self.reuse is not None:
                self.reuse.install(self._processor, self._model)
        return self._model, self._processor

    def _generate_vllm(self, prompts: list[str], frames: list[Any], max_new: int) -> list[str]:
        """vLLM backend (GPU nodes with vLLM installed): the same chat prompt, frames as ``multi_modal_data``."""
        from vllm import LLM, SamplingParams  # ImportError names the missing package: install vllm on GPU nodes

        from training.model import load_processor

        if self._llm is None:
            self._llm = LLM(model=self.pretrained, dtype=self.dtype if self.dtype != "auto" else "auto",
                            limit_mm_per_prompt={"video": 1, "image": 1})
            self._processor = load_processor(self.pretrained)
        requests = []
        for prompt, f in zip(prompts, frames, strict=True):
            kind = "image" if f.ndim == 3 else "video"
            conv = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": prompt}]}]
            text = self._processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            requests.append({"prompt": text, "multi_modal_data": {kind: f}})
        params = SamplingParams(temperature=0.0, max_tokens=max_new)
        return [r.outputs[0].text for r in self._llm.generate(requests, params)]


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
