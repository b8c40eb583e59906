"""The terminal's progress during ``python -m dagster_project materialize``: the latest progress line of the runs in
flight (a training step with its loss and time left, a curation shard's or an evaluation's ``done/total``), read
from the Dagster instance's event log, so nothing long is silent.

On a terminal it is one line rewritten in place; otherwise (CI, a log file) a line every ``every`` seconds at
most, and a heartbeat when a run has said nothing new, so the output never stays silent for longer than that.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from typing import IO, Any

from videorft.progress import clock_text

# what a progress message looks like: "step 40/561: ...", "initial_cots[001] reasoned: 12/30 (...)"
PROGRESS = re.compile(r"\b\d+/\d+\b")


class ProgressLine:
    """Watches the instance's in-flight runs from a thread while the CLI executes them; ``say`` prints the CLI's
    own lines without tearing the progress line."""

    def __init__(self, stream: IO[str] | None = None, every: float = 20.0, poll: float = 2.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every, self.poll = every, poll
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.label, self.started = "", time.monotonic()
        self.latest, self.latest_at = "", time.monotonic()
        self.said_at = time.monotonic()
        self.shown = False  # a rewritable line is on screen (TTY)
        self.cursors: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._watch, name="videorft-progress", daemon=True)

    def start(self) -> ProgressLine:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        with self.lock:
            self._clear()

    def run_started(self, label: str) -> None:
        with self.lock:
            self.label, self.started, self.latest = label, time.monotonic(), ""
            self.latest_at = self.started

    def say(self, text: str) -> None:
        with self.lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self.said_at = time.monotonic()

    def update(self, message: str) -> None:
        """A new progress message from a run in flight."""
        with self.lock:
            self.latest, self.latest_at = message, time.monotonic()
            if self.tty:
                self._show(message)

    def tick(self) -> None:
        """Called every poll: on a terminal refresh the elapsed time; otherwise print when ``every`` has passed."""
        with self.lock:
            now = time.monotonic()
            if self.tty:
                if self.label:
                    self._show(self.latest)
            elif now - self.said_at >= self.every and self.label:
                print(self._line(self.latest or "running, no progress reported yet"), file=self.stream, flush=True)
                self.said_at = now

    def _line(self, message: str) -> str:
        now = time.monotonic()
        quiet = now - self.latest_at
        stale = f" [nothing newer for {clock_text(quiet)}]" if message and quiet >= self.every else ""
        return f"  {self.label} ({clock_text(now - self.started)}): {message}{stale}"

    def _show(self, message: str) -> None:
        width = shutil.get_terminal_size((120, 20)).columns - 1
        self.stream.write("\r\033[K" + self._line(message or "running")[:width])
        self.stream.flush()
        self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def _watch(self) -> None:
        from dagster import DagsterInstance

        instance = None
        while not self.stopped.wait(self.poll):
            try:  # progress is a courtesy: a busy or missing event log never stops the CLI or prints a trace
                instance = instance or DagsterInstance.get()
                message = self._newest(instance)
            except Exception:
                message = ""
            if message:
                self.update(message)
            self.tick()
        if instance is not None:
            instance.dispose()

    def _newest(self, instance: Any) -> str:
        """The newest progress message of the runs in flight, if any came since the last poll."""
        from dagster import DagsterRunStatus, RunsFilter

        newest = ""
        for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=8):
            connection = instance.get_records_for_run(run.run_id, cursor=self.cursors.get(run.run_id), limit=500)
            self.cursors[run.run_id] = connection.cursor
            for record in connection.records:
                text = record.event_log_entry.user_message or ""
                if record.event_log_entry.dagster_event is None and PROGRESS.search(text):
                    newest = text.splitlines()[0]
        return newest
