"""Progress on long work: the training step lines' time left, the throttled ``done/total`` lines of curation and
evaluation, and the terminal's progress line of ``python -m dagster_project materialize``."""

from __future__ import annotations

import io
import time

import dagster as dg

from dagster_project.progress import ProgressLine
from videorft.progress import pace_text, throttled


def test_the_time_left_is_measured_on_this_runs_own_steps():
    assert pace_text(40, 560, 0, 20.0) == "7%, 20s elapsed, ~4m20s left"
    # a run resumed at step 500 that did 20 steps in 20 s: 40 steps left take 40 s, not 500 steps' worth
    assert pace_text(520, 560, 500, 20.0) == "93%, 20s elapsed, ~40s left"
    assert pace_text(0, 560, 0, 0.0) == "0%, 0s elapsed"  # nothing done yet: no guess


def test_progress_callbacks_speak_at_most_every_interval_and_always_at_the_end():
    said: list[str] = []
    report = throttled(said.append, "initial_cots[001] reasoned", every=3600)
    for done in range(1, 11):
        report(done, 10)
    assert len(said) == 2  # the first call, and the last
    assert said[-1].startswith("initial_cots[001] reasoned: 10/10 (100%, ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_is_one_line_rewritten_and_the_clis_lines_are_not_torn():
    screen = _Terminal()
    line = ProgressLine(screen, poll=3600)
    line.run_started("run 7/30")
    line.update("step 3/10: loss=1.2; 30%, 3s elapsed, ~7s left")
    line.update("step 4/10: loss=1.1; 40%, 4s elapsed, ~6s left")
    line.say("videorft: run 7/30 ok in 9 s")
    text = screen.getvalue()
    assert text.count("\r\033[K") == 3  # two updates in place, and the line cleared before the CLI's own
    assert text.endswith("\r\033[Kvideorft: run 7/30 ok in 9 s\n")
    assert "\n" not in text.split("videorft:")[0]  # progress never scrolled the terminal


def test_off_a_terminal_a_run_that_reports_nothing_still_gets_a_heartbeat(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # no instance to read: the heartbeat alone
    out = io.StringIO()
    line = ProgressLine(out, every=0.05, poll=0.01)
    line.run_started("run 3/30")
    line.start()
    time.sleep(0.3)
    line.stop()
    beats = out.getvalue().splitlines()
    assert beats and all(b.startswith("  run 3/30 (") and "no progress reported yet" in b for b in beats)


def test_the_progress_line_reads_what_a_run_in_flight_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry: {enabled: false}\n")

    @dg.asset
    def slow_training(context) -> None:  # no annotation: this module has postponed annotations
        for step in range(1, 4):
            context.log.info(f"step {step}/3: loss={1.0 / step:.2f}")
            time.sleep(0.4)

    out = io.StringIO()
    line = ProgressLine(out, every=0.1, poll=0.05)
    line.run_started("run 1/1")
    with dg.DagsterInstance.get() as instance:
        line.start()
        assert dg.materialize([slow_training], instance=instance).success
        line.stop()
    assert any("run 1/1 (" in row and "step 2/3: loss=0.50" in row for row in out.getvalue().splitlines())
