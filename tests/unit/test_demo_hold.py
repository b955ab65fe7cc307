"""The demo's hold for a person: what it tells them, that it never goes quiet for 30 s, that
Ctrl-C ends it, and that it holds only at a terminal."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from sim.demo.console import Console
from sim.demo.desk import Reviewer
from sim.demo.hold import HoldInfo, hold, instructions, should_hold


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _info(tmp_path: Path) -> HoldInfo:
    (tmp_path / "facts.json").write_text(
        json.dumps({"checks": [{"ok": True}, {"ok": True}, {"ok": False}]})
    )
    reviewers = [Reviewer("demo-reviewer", "pw-one"), Reviewer("demo-second-reader", "pw-two")]
    return HoldInfo("http://127.0.0.1:8000/desk", reviewers, None, tmp_path / "report.html")


def test_instructions_name_the_desk_logins_report_and_ctrl_c(tmp_path: Path) -> None:
    text = "\n".join(instructions(_info(tmp_path)))
    assert "http://127.0.0.1:8000/desk/" in text
    assert "login demo-reviewer password pw-one" in text
    assert "login demo-second-reader password pw-two" in text
    assert "(2/3 checks passed)" in text and "Ctrl-C" in text


def test_hold_speaks_every_30_s_reports_decisions_and_ends_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    out = io.StringIO()
    say = Console(clock(), stream=out)
    decisions = iter([0, 0, 0, 1, 1] + [1] * 1000)

    def sleep(seconds: float) -> None:
        clock.now += seconds
        if clock.now - 1000.0 > 300:
            raise KeyboardInterrupt  # the person presses Ctrl-C after five minutes

    hold(_info(tmp_path), say, lambda: next(decisions), sleep=sleep)
    lines = out.getvalue().splitlines()
    stamps = [float(line[1:].split("s]", 1)[0]) for line in lines]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) <= 30.0, gaps
    assert any("1 new decision(s), 1 in all" in line for line in lines)
    assert "Ctrl-C: stopping" in lines[-1]


def test_holds_only_at_a_terminal_and_not_with_no_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", io.StringIO())
    assert not should_hold(no_hold=False)  # a pipe, CI, the tests
    monkeypatch.setattr(sys, "stdin", Tty())
    assert should_hold(no_hold=False)
    assert not should_hold(no_hold=True)


def test_sigterm_ends_the_hold_cleanly_and_restores_the_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    calls = []

    def sleep(_seconds: float) -> None:
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # `kill PID`, or a service manager stopping it

    hold(_info(tmp_path), Console(time.monotonic(), stream=out), lambda: 0, sleep=sleep)
    assert "stopping the gateways, the cloud, the broker and Orthanc" in out.getvalue()
    assert len(calls) == 3
    assert signal.getsignal(signal.SIGTERM) is before
