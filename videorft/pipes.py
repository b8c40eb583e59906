"""The Dagster Pipes session of a library entry point: the context when Dagster launched the process (it sets
``DAGSTER_PIPES_CONTEXT``), else None, so the libraries run the same with or without Dagster and need only
``dagster-pipes`` installed on a GPU node.

Under Pipes a child's logs go to Dagster (the run's log and the UI), so its console stays quiet: this module
owns what "quiet" means (``QUIET_CHILD_ENV`` for the launcher, ``quiet_console`` inside the child).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

# Set by the launcher in a child's environment: read by the libraries when they are imported, so their
# progress bars and INFO lines never start (one line per logged step goes to Dagster instead).
QUIET_CHILD_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "LMEVAL_LOG_LEVEL": "WARNING",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
# Warnings every run would print and nobody can act on: (category, message regex). Each names why it is known.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # TRL 1.16 itself reads the deprecated alias transformers 5 warns about
    (FutureWarning, r"`gradient_checkpointing` is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # decoded frames from the read-only frame cache; the processor copies them anyway
    (UserWarning, r"The given NumPy array is not writable"),
)
NOISY_LOGGERS = ("lm_eval", "lm-eval", "transformers", "datasets", "accelerate", "httpx", "urllib3", "filelock")


def quiet_console() -> None:
    """Turn the libraries' console chatter off in this process (its logs go to Dagster over Pipes)."""
    for key, value in QUIET_CHILD_ENV.items():
        os.environ.setdefault(key, value)
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if "DS_ACCELERATOR" not in os.environ:
        # DeepSpeed warns on import when it finds no GPU; say "cpu" when that is what there is (a GPU node
        # keeps its detection)
        import torch

        if not torch.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"


@contextlib.contextmanager
def pipes_session() -> Iterator[Any]:
    """The Pipes context in rank 0 of a multi-process launch (torchrun, accelerate), else None: Pipes has one
    writer, and another rank closing the channel first would drop rank 0's result."""
    if "DAGSTER_PIPES_CONTEXT" not in os.environ or int(os.environ.get("RANK", "0")) != 0:
        if "DAGSTER_PIPES_CONTEXT" in os.environ:
            quiet_console()
        yield None
        return
    from dagster_pipes import open_dagster_pipes

    quiet_console()
    with open_dagster_pipes() as pipes:
        yield pipes
