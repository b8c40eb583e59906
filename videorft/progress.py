"""How long work has taken and has left, as people read it: the one format of the training step lines, the
evaluation and curation progress lines and the terminal's progress line."""

from __future__ import annotations

import time
from collections.abc import Callable


def clock_text(seconds: float) -> str:
    """``45s``, ``7m05s``."""
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def pace_text(step: int, total: int, first_step: int, elapsed: float) -> str:
    """``12%, 1m05s elapsed, ~7m50s left``: time left at this run's own pace, ``(total - step) * elapsed /
    (step - first_step)``, so a resumed run's earlier steps do not count as free."""
    share = f"{100 * step / total:.0f}%, " if total > 0 else ""
    done = step - first_step
    left = f", ~{clock_text((total - step) * elapsed / done)} left" if done > 0 and total >= step else ""
    return f"{share}{clock_text(elapsed)} elapsed{left}"


def throttled(say: Callable[[str], None], what: str, every: float = 5.0) -> Callable[[int, int], None]:
    """A ``(done, total)`` progress callback that says ``{what}: done/total ({pace})`` through ``say`` at most every
    ``every`` seconds, and always at the end: what Dagster's run log and the terminal's progress line show."""
    started = time.monotonic()
    last = [float("-inf")]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every:
            last[0] = now
            say(f"{what}: {done}/{total} ({pace_text(done, total, 0, now - started)})")

    return report
