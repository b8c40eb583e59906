"""The question prompt the model is trained and evaluated with, as the VideoRFT / Video-R1 code builds it.

One place for it, so SFT, GRPO and the benchmarks ask the same way: the question (with its options for
multiple choice), the reasoning instruction, then the answer-format sentence of the problem type.
"""

from __future__ import annotations

from collections.abc import Sequence

QUESTION_TEMPLATE = (
    "{question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> and </think> tags, and then give your final answer "
    "between the <answer> and </answer> tags."
)
TYPE_TEMPLATE = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the "
                       "<answer> </answer> tags.",
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the "
           "<answer> </answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
}


def question_text(problem: str, problem_type: str, options: Sequence[str] | None = None) -> str:
    """The user turn's text: question (+ ``Options:`` lines for multiple choice), instruction, format."""
    if problem_type not in TYPE_TEMPLATE:
        raise ValueError(f"unknown problem type {problem_type!r}; expected one of {sorted(TYPE_TEMPLATE)}")
    question = problem
    if problem_type == "multiple choice" and options:
        question = problem + "Options:\n" + "\n".join(str(o) for o in options)
    return QUESTION_TEMPLATE.format(question=question) + TYPE_TEMPLATE[problem_type]
