"""The Dagster Pipes session of a library entry point: the context when Dagster launched the process (it sets
``DAGSTER_PIPES_CONTEXT``), else None, so the libraries run the same with or without Dagster and need only
``dagster-pipes`` installed on a GPU node."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def pipes_session() -> Iterator[Any]:
    if "DAGSTER_PIPES_CONTEXT" not in os.environ:
        yield None
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        yield pipes
