"""The demo's console: timestamped lines, and a heartbeat so a long step never goes quiet."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

# A step that prints nothing for this long gets a status line: people stop the demo when it
# looks hung, and a 5-minute traffic run used to print nothing until it ended.
HEARTBEAT_S = 20.0

Activity = Callable[[], str]


class Console:
    """`[  12.3s] text` lines; while `activity` is set, a status line when silent for long."""

    def __init__(self, t0: float, stream: TextIO | None = None, every_s: float = HEARTBEAT_S):
        self.t0 = t0
        self.every_s = every_s
        self.stream = stream
        self.activity: Activity | None = None
        self._last = t0
        self._lock = threading.Lock()

    def __call__(self, text: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            print(f"[{now - self.t0:6.1f}s] {text}", file=self.stream or sys.stdout, flush=True)
            self._last = now

    def last_line_at(self) -> float:
        """When the last line was printed (time.monotonic())."""
        return self._last

    def heartbeat_line(self, now: float) -> str | None:
        """The status line due at `now` (the console was silent for `every_s`), else None."""
        activity = self.activity
        if activity is None or now - self._last < self.every_s:
            return None
        return activity()

    def beat(self, now: float | None = None) -> None:
        """Print the due status line, if any."""
        now = time.monotonic() if now is None else now
        line = self.heartbeat_line(now)
        if line is not None:
            self(line, now)

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Beat once a second in a thread while the block runs (it prints only when due)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(1.0):
                self.beat()

        thread = threading.Thread(target=loop, name="demo-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    @contextmanager
    def during(self, activity: Activity) -> Iterator[None]:
        """Report `activity()` as the heartbeat's status line while the block runs."""
        previous, self.activity = self.activity, activity
        try:
            yield
        finally:
            self.activity = previous


def waiting(what: str, since: float) -> Activity:
    """A status line for a plain wait: what, and for how long so far."""
    return lambda: f"{what} ({time.monotonic() - since:.0f} s so far)"
