"""VideoRFT's rule-based rewards as TRL reward functions: ``(completions, **dataset_columns) -> list[float]``.

Columns are named as in the VideoRFT schema (``solution`` holds ``<answer>..</answer>``, ``problem_type``,
``options``). A completion is a string (standard format) or a list of chat messages (conversational
format); the last assistant message is scored. The semantic-consistency reward (paper Eq. 5) and the
combined ``videorft_reward`` (Eq. 6) build on these; ``temporal_bonus`` / ``TemporalReward`` are Video-R1's T-GRPO
reward (a Table 2 comparison variant), fed by the GRPO trainer's shuffled-frame rollouts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from training.schema import Strict
from videorft.answers import ANSWER_RE, FORMAT_RE, answers_match, extract_answer, parse_number

_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
# A sentence ends at . ! or ? followed by white space or the end; a decimal point ("3.5 m") is followed by a
# digit, so it never ends one (the official code splits on the first '.', which cuts "3.5 m" in two).
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)")


class SemanticRewardConfig(Strict):
    """Eq. 5/6: r_sc = min(1, w * max(cos(SigLIP_text(span_M), mean_F SigLIP_image(frame)), 0)), gated."""

    mode: Literal["gated", "ungated", "off"] = "gated"  # Table 2 ablations: off / ungated / gated (full)
    weight: Annotated[float, Field(gt=0)] = 2.0  # w; the paper's best setting
    span_tokens: Annotated[int, Field(gt=0, le=512)] = 64  # M: SigLIP's text context
    frames: Annotated[int, Field(gt=0)] = 16  # F
    max_pixels: Annotated[int, Field(gt=0)] | None = None  # frames decoded for SigLIP; None: its input side squared
    model: str = "ViT-SO400M-14-SigLIP-384"  # "a lightweight version of SigLIP with 400M parameters"
    pretrained: str | None = "webli"
    gate_reward: str = "accuracy_reward"
    cache_root: str | None = None  # None: the storage root (VIDEORFT_STORAGE_ROOT / profile)
    compile: bool = False  # torch.compile SigLIP's image tower: same embeddings, faster after a one-off compile

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` (in a recipe or a --set reward.semantic.mode=off) as false
        return "off" if value is False else value


class TemporalRewardConfig(Strict):
    """Video-R1's T-GRPO (the closest peer): per prompt, a second group of G rollouts on shuffled frames;
    the correct ordered rollouts earn ``alpha`` when the ordered group's accuracy p beats ``mu`` times the
    shuffled group's p~ (Video-R1: alpha 0.3, mu 0.8)."""

    enabled: bool = False
    alpha: Annotated[float, Field(gt=0)] = 0.3
    mu: Annotated[float, Field(gt=0)] = 0.8


def completion_text(completion: Any) -> str:
    """The text of one completion, in TRL's standard (str) or conversational (messages) format."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        content = last.get("content", "") if isinstance(last, dict) else str(last)
        if isinstance(content, list):  # multimodal message parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return str(completion)


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """r_format = 1 if the completion is exactly ``<think>...</think><answer>...</answer>`` (DOTALL), else 0."""
    return [1.0 if FORMAT_RE.match(completion_text(c)) else 0.0 for c in completions]


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def accuracy_score(problem_type: str, prediction: str, truth: str, options: list[str] | None = None) -> float:
    """Accuracy of one extracted answer by problem type.

    multiple choice: 1 if the answer commits to exactly one option letter and it is the truth's
        (``videorft.answers.option_letter``: ``B``, ``(b)``, ``B. <B's text>``; ``A, B`` / ``A or B`` commit to
        none, so listing every letter earns nothing);
    numerical: 1 if the whole answer is a number equal to the truth after rounding to 2 decimals
        (``3`` vs ``3.0`` and ``1,000`` vs ``1000`` are equal: the reference's decimal-presence rule would
        teach the policy to copy the truth's formatting, which no prompt states; ``three`` is not a number);
    OCR: clip(1 - WER(truth, prediction), 0, 1) over white-space-separated words (jiwer), so a transcription
        laid out over several lines, with tabs or double spaces scores as the same words on one line;
    free-form: mean of ROUGE-1, ROUGE-2 and ROUGE-L F1  (rouge-score);
    regression: 1 - clip(|p - g| / |g|, 0, 1); with g = 0: 1 if p = 0 else 0 (the reference's epsilon
        gives an exact 0 a reward of 0).
    """
    prediction, truth = prediction.strip(), truth.strip()
    if not prediction:
        return 0.0
    if problem_type in ("multiple choice", "numerical"):
        return 1.0 if answers_match(problem_type, prediction, truth, options) else 0.0
    if problem_type == "OCR":
        import jiwer

        truth, prediction = " ".join(truth.split()), " ".join(prediction.split())
        if not truth:
            return 0.0
        return float(min(1.0, max(0.0, 1.0 - jiwer.wer(truth, prediction))))
    if problem_type == "free-form":
        scores = _rouge().score(truth, prediction)
        return float(sum(s.fmeasure for s in scores.values()) / len(scores))
    if problem_type == "regression":
        p, g = parse_number(prediction), parse_number(truth)
        if p is None or g is None:
            return 0.0
        if g == 0:
            return 1.0 if p == 0 else 0.0
        return float(1.0 - min(1.0, max(0.0, abs(p - g) / abs(g))))
    raise ValueError(f"unknown problem type {problem_type!r}")


def accuracy_reward(completions: list[Any], solution: list[str], problem_type: list[str],
                    options: list[Any] | None = None, **kwargs: Any) -> list[float]:
    """r_acc per completion: the completion's one closed ``<answer>..</answer>`` against the ``<answer>`` of
    ``solution``, scored by that row's problem type (``accuracy_score``).

    No closed answer block (a missing or an unclosed tag) scores 0, and so do two or more blocks: an answer
    is one commitment, not a list to pick from.
    """
    out = []
    for i, completion in enumerate(completions):
        answers = ANSWER_RE.findall(completion_text(completion))
        if len(answers) != 1:
            out.append(0.0)
            continue
        row_options = list(options[i]) if options is not None and options[i] is not None else []
        out.append(accuracy_score(problem_type[i], answers[0], extract_answer(solution[i]), row_options))
    return out


def describing_span(completion: str) -> str:
    """The video-describing part of the reasoning (paper Eq. 5): the ``<think>`` text after its first
    sentence (the question-parsing part). A decimal point ("3.5 m") does not end a sentence."""
    match = _THINK_RE.search(completion)
    thought = (match.group(1) if match else completion).strip()
    end = _SENTENCE_END_RE.search(thought)
    return thought[end.end():].strip() if end else ""


def semantic_scores(spans: list[str], video_embeddings: Any, text_embed: Callable[[list[str]], Any],
                    weight: float) -> list[float]:
    """r_sc = min(1, w * max(cos(t, v), 0)) per completion (Eq. 5); an empty describing span scores 0.

    ``video_embeddings`` is ``(N, D)``, one row per completion (the mean frame embedding of its video);
    ``text_embed`` maps the non-empty spans to ``(K, D)`` text embeddings in one batch.
    """
    import torch

    out = [0.0] * len(spans)
    idx = [i for i, s in enumerate(spans) if s]
    if not idx:
        return out
    text = torch.nn.functional.normalize(text_embed([spans[i] for i in idx]).float(), dim=-1)
    video = torch.nn.functional.normalize(video_embeddings[idx].float().to(text.device), dim=-1)
    cos = (text * video).sum(dim=-1)
    for i, value in zip(idx, torch.clamp(weight * torch.clamp(cos, min=0.0), max=1.0).tolist(), strict=True):
        out[i] = float(value)
    return out


class SemanticConsistencyReward:
    """The semantic-consistency reward as a TRL reward function, configured once (model, w, M, F, gate, cache).

    Columns used: ``path`` (the media URI), optional ``media_sha256`` and ``data_type``, and for the gate
    the gate reward's columns (``solution``, ``problem_type``, ``options``).
    """

    def __init__(self, config: Any, cache_root: str | None = None, media_cache_dir: str | None = None) -> None:
        from training.embedding_cache import VideoEmbeddingCache

        self.__name__ = "semantic_consistency_reward"  # TRL logs a reward function under its __name__
        self.config = config
        self.paid_rows = self.nonzero_rows = 0
        self.gate = rule_rewards()[config.gate_reward]
        self.embeddings = VideoEmbeddingCache.from_config(config, cache_root, media_cache_dir)

    def __call__(self, completions: list[Any], path: list[str], gate: list[float] | None = None,
                 **columns: Any) -> list[float]:
        """Scores per completion; ``gate`` (the gate reward's values, when the caller has them) saves
        recomputing."""
        if self.config.mode == "off":
            return [0.0] * len(completions)
        texts = [completion_text(c) for c in completions]
        shas = columns.get("media_sha256") or [None] * len(texts)
        videos = self.embeddings.media_embeddings(list(path), list(shas))
        scores = semantic_scores([describing_span(t) for t in texts], videos, self.embeddings.text_embeddings,
                                 self.config.weight)
        if self.config.mode == "gated":
            if gate is None:
                gate = self.gate(completions, **columns)
            scores = [s if g > 0 else 0.0 for s, g in zip(scores, gate, strict=True)]
            opened = [s for s, g in zip(scores, gate, strict=True) if g > 0]
        else:
            opened = scores
        self.paid_rows += len(opened)
        self.nonzero_rows += sum(s > 0 for s in opened)
        return scores

    def tally(self) -> dict[str, int]:
        """Rows the reward was paid on (the gate open, or every row ungated), how many scored above 0, and the
        video embeddings read from the precomputed store vs computed during training (a video the
        ``video_embeddings`` asset had not stored)."""
        return {"semantic_paid_rows": self.paid_rows, "semantic_nonzero_rows": self.nonzero_rows,
                "semantic_embeddings_read": self.embeddings.stats["from_storage"],
                "semantic_embeddings_computed": self.embeddings.stats["computed"]}


class VideoRFTReward:
    """r = r_format + r_acc + 1[r_gate > 0] * r_sc (Eq. 6; the gate follows the semantic reward's mode)."""

    def __init__(self, semantic: SemanticConsistencyReward) -> None:
        self.__name__ = "videorft_reward"
        self.semantic = semantic

    def __call__(self, completions: list[Any], **columns: Any) -> list[float]:
        fmt = format_reward(completions, **columns)
        acc = accuracy_reward(completions, **columns)
        gate = acc if self.semantic.gate is accuracy_reward else None
        sem = self.semantic(completions, gate=gate, **columns)
        return [f + a + s for f, a, s in zip(fmt, acc, sem, strict=True)]


def temporal_bonus(ordered_accuracy: Sequence[float], shuffled_accuracy: Sequence[float], alpha: float = 0.3,
                   mu: float = 0.8) -> list[float]:
    """T-GRPO's temporal reward for one prompt's group (Video-R1, Eq. 2): with p the share of the ordered
    rollouts that are correct and p~ the same share among rollouts on shuffled frames,
    r_t = alpha for each correct ordered rollout when p >= mu * p~, else 0. "Correct" is accuracy > 0, the
    convention of the semantic reward's gate. A group with no correct ordered rollout earns nothing (p = 0)."""
    if not ordered_accuracy:
        return []
    correct = [a > 0 for a in ordered_accuracy]
    p = sum(correct) / len(correct)
    p_shuffled = sum(a > 0 for a in shuffled_accuracy) / len(shuffled_accuracy) if shuffled_accuracy else 0.0
    if p == 0 or p < mu * p_shuffled:
        return [0.0] * len(correct)
    return [alpha if c else 0.0 for c in correct]


class TemporalReward:
    """T-GRPO's temporal reward as a TRL reward function: the trainer fills ``shuffled`` (sample id -> the
    accuracy of each rollout on shuffled frames) before TRL scores the ordered group; image rows and rows
    without a shuffled group earn 0."""

    def __init__(self, alpha: float = 0.3, mu: float = 0.8) -> None:
        self.__name__ = "temporal_reward"
        self.needs = frozenset({SHUFFLED_GROUPS})  # the trainer fills ``shuffled`` for a reward that needs it
        self.alpha, self.mu = alpha, mu
        self.shuffled: dict[str, list[float]] = {}

    def __call__(self, completions: list[Any], sample_id: list[str], **columns: Any) -> list[float]:
        accuracy = accuracy_reward(completions, **columns)
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(sample_id):
            groups.setdefault(str(key), []).append(i)
        out = [0.0] * len(completions)
        for key, rows in groups.items():
            if key not in self.shuffled:
                continue
            bonus = temporal_bonus([accuracy[i] for i in rows], self.shuffled[key], self.alpha, self.mu)
            for i, b in zip(rows, bonus, strict=True):
                out[i] = b
        return out


RewardFunc = Callable[..., list[float]]
SETTINGS, VIDEO_EMBEDDINGS, SHUFFLED_GROUPS = "settings", "video_embeddings", "shuffled_groups"


@dataclass(frozen=True)
class RewardContext:
    """What a reward entry may be built from: the recipe's ``reward`` section, and the one semantic-consistency
    model of a run (built on first use, shared by every entry that needs video embeddings)."""

    config: Any
    cache_root: str | None = None
    media_cache_dir: str | None = None

    @cached_property
    def semantic(self) -> SemanticConsistencyReward:
        return SemanticConsistencyReward(self.config.semantic, self.cache_root, self.media_cache_dir)


@dataclass(frozen=True)
class RewardEntry:
    """A reward name's builder and what it needs: ``settings`` (its part of the recipe's ``reward`` section),
    ``video_embeddings`` (the ``video_embeddings`` asset's store) or ``shuffled_groups`` (the trainer samples a
    second group on shuffled frames per video prompt and hands its accuracies to the function's ``shuffled``)."""

    build: Callable[[RewardContext], RewardFunc]
    needs: frozenset[str] = frozenset()


def _fixed(func: RewardFunc) -> RewardEntry:
    return RewardEntry(lambda context: func)


# The one registry of reward names (open-r1's REWARD_FUNCS_REGISTRY): a recipe's ``reward.functions`` names them.
REWARDS: dict[str, RewardEntry] = {
    "format_reward": _fixed(format_reward),
    "accuracy_reward": _fixed(accuracy_reward),
    "semantic_consistency_reward": RewardEntry(lambda context: context.semantic,
                                               frozenset({SETTINGS, VIDEO_EMBEDDINGS})),
    "videorft_reward": RewardEntry(lambda context: VideoRFTReward(context.semantic),
                                   frozenset({SETTINGS, VIDEO_EMBEDDINGS})),
    "temporal_reward": RewardEntry(lambda context: TemporalReward(context.config.temporal.alpha,
                                                                  context.config.temporal.mu),
                                   frozenset({SETTINGS, SHUFFLED_GROUPS})),
}


def rule_rewards() -> dict[str, RewardFunc]:
    """The registered rewards that need nothing (what a semantic gate may name), built."""
    return {n: e.build(RewardContext(None)) for n, e in REWARDS.items() if not e.needs}


def reward_names(config: Any) -> list[str]:
    """The reward names a recipe's ``reward`` section pays, in order: ``functions``, then ``temporal_reward`` when
    ``temporal.enabled`` asks for T-GRPO without naming it."""
    names = list(config.functions)
    temporal = getattr(config, "temporal", None)
    if temporal is not None and temporal.enabled and "temporal_reward" not in names:
        names.append("temporal_reward")
    return names


def reward_weights(config: Any) -> list[float] | None:
    """``reward.weights`` extended with 1.0 for each reward ``reward_names`` adds; None when not set."""
    if config.weights is None:
        return None
    return [*config.weights, *([1.0] * (len(reward_names(config)) - len(config.functions)))]


def needs(config: Any, need: str) -> bool:
    """Whether any reward a recipe pays needs ``need`` (a semantic reward switched off reads no embeddings)."""
    paid = any(need in REWARDS[n].needs for n in reward_names(config) if n in REWARDS)
    return paid and not (need == VIDEO_EMBEDDINGS and config.semantic.mode == "off")


def uses_video_embeddings(config: Any) -> bool:
    """Whether a recipe's ``reward`` section pays the semantic-consistency reward (so reads video embeddings)."""
    return needs(config, VIDEO_EMBEDDINGS)


def build_reward_funcs(config: Any, cache_root: str | None = None,
                       media_cache_dir: str | None = None) -> list[RewardFunc]:
    """The recipe's rewards (``reward_names``) as TRL reward functions, in order (open-r1's ``get_reward_funcs``).

    The semantic-consistency model is built once and shared by every function that needs it; nothing is kept
    in module state, so two trainers in one process can use different settings.
    """
    names = reward_names(config)
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}; known: {list(REWARDS)}")
    context = RewardContext(config, cache_root, media_cache_dir)
    return [REWARDS[n].build(context) for n in names]


@cache
def _paper_semantic_reward() -> SemanticConsistencyReward:
    return SemanticConsistencyReward(SemanticRewardConfig())


def semantic_consistency_reward(completions: list[Any], **columns: Any) -> list[float]:
    """r_sc (Eq. 5) with the paper's settings (SigLIP SO400M, w = 2, M = 64, F = 16, gated on
    ``accuracy_reward``); other settings: ``build_reward_funcs`` or ``SemanticConsistencyReward``."""
    return _paper_semantic_reward()(completions, **columns)


def videorft_reward(completions: list[Any], **columns: Any) -> list[float]:
    """r = r_format + r_acc + 1[r_acc > 0] * r_sc (Eq. 6) with the paper's semantic settings."""
    return VideoRFTReward(_paper_semantic_reward())(completions, **columns)
