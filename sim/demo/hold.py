"""The demo's last step when a person runs it: keep the cloud, the review desk, the gateways
and Orthanc up, say what to do, report what happens, and stop everything on Ctrl-C."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sim.demo.console import Console
from sim.demo.desk import Reviewer
from sim.pacs import Orthanc

# Under the 30 s the demo promises never to go silent for.
STILL_UP_S = 25.0


@dataclass(frozen=True)
class HoldInfo:
    desk_url: str
    reviewers: list[Reviewer]
    orthanc: Orthanc | None
    report: Path  # report.html, beside its facts.json
    # Open cases of the clinic with the PACS: "scan X (cloud id), study Y" (decisions get an SR).
    dicom_cases: list[str] = field(default_factory=list)


def should_hold(no_hold: bool) -> bool:
    """Hold only for a person at a terminal: tests, CI and pipes end as before."""
    return not no_hold and sys.stdin is not None and sys.stdin.isatty()


def instructions(info: HoldInfo) -> list[str]:
    checks = json.loads((info.report.parent / "facts.json").read_text())["checks"]
    passed = sum(bool(c["ok"]) for c in checks)
    lines = [
        f"report: {info.report} ({passed}/{len(checks)} checks passed)",
        "the system stays up so you can try the clinic workflow yourself:",
        f"  review desk: {info.desk_url}/",
    ]
    lines += [f"    login {r.name} password {r.password}" for r in info.reviewers]
    if info.orthanc is not None:
        lines.append(
            f"  Orthanc explorer: {info.orthanc.url}/app/explorer.html (no login; "
            f"DICOMweb at {info.orthanc.url}/dicom-web)"
        )
        lines.append(
            "  decide a case in the desk (keys r / n / u / s), then open Orthanc: the study now "
            "has the reviewer's SR and PDF beside the automated ones"
        )
        if info.dicom_cases:
            lines.append(
                "  open cases of clinic-1, the clinic with the PACS (their decisions get an SR):"
            )
            lines += [f"    {c}" for c in info.dicom_cases[:10]]
        else:
            lines.append(
                "  (no scan of clinic-1, the clinic with the PACS, went to review this run: the "
                "model decides which do; other clinics' decisions get no SR, they have no PACS)"
            )
    lines.append("  press Ctrl-C to stop everything")
    return lines


class PacsWatch:
    """Counts Orthanc's instances; says when new ones arrive (the reviewer's SR and PDF)."""

    def __init__(self, orthanc: Orthanc | None) -> None:
        self.orthanc = orthanc
        self.seen = self._count()

    def _count(self) -> int | None:
        if self.orthanc is None:
            return None
        try:
            return int(self.orthanc.get("/statistics")["CountInstances"])
        except (httpx.HTTPError, OSError, KeyError, ValueError):
            return None

    def news(self) -> str | None:
        now = self._count()
        if now is None or self.seen is None or now <= self.seen:
            self.seen = now if now is not None else self.seen
            return None
        new, self.seen = now - self.seen, now
        return f"pacs: {new} new instance(s) in Orthanc (a reviewer's SR and PDF arrive as a pair)"


def hold(
    info: HoldInfo,
    say: Console,
    decided: Callable[[], int],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait for Ctrl-C (or SIGTERM, or the terminal closing), printing what happens and a line
    at least every STILL_UP_S."""
    for line in instructions(info):
        say(line)
    # Ctrl-C is what the instructions promise, even where the shell started us ignoring SIGINT;
    # SIGTERM and a closed terminal stop as cleanly. httpx would log every poll at INFO.
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _interrupt) for s in stops}
    quiet = logging.getLogger("httpx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        _wait(info, say, decided, sleep)
    finally:
        quiet.setLevel(level)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _wait(
    info: HoldInfo, say: Console, decided: Callable[[], int], sleep: Callable[[float], None]
) -> None:
    watch = PacsWatch(info.orthanc)
    known = _count(decided, say)
    try:
        while True:
            sleep(2.0)
            count = _count(decided, say)
            if count is not None and known is not None and count > known:
                say(f"review desk: {count - known} new decision(s), {count} in all")
            known = count if count is not None else known
            news = watch.news()
            if news is not None:
                say(news)
            if time.monotonic() - say.last_line_at() >= STILL_UP_S:
                say(f"still up: review desk {info.desk_url}/ ; Ctrl-C to stop")
    except KeyboardInterrupt:
        say("Ctrl-C: stopping the gateways, the cloud, the broker and Orthanc")


def _count(decided: Callable[[], int], say: Console) -> int | None:
    try:
        return decided()
    except (OSError, ValueError) as exc:
        say(f"review desk: decisions not readable ({exc})")
        return None
