"""A watchdog on the gateway loop: a loop that stops stepping (a stall, a hung camera read)
must not hold a yellow. After `timeout_s` without a kick it hands the junction to the
controller's own timing plan (`SignalPort.release`), from its own thread; the next step of a
recovered loop takes control back at a phase boundary (the applier follows the controller)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self,
        timeout_s: float,
        on_stall: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"watchdog timeout {timeout_s} s must be positive")
        self.timeout_s = timeout_s
        self._on_stall = on_stall
        self._clock = clock
        self._last = clock()
        self._fired = False
        self.stalls = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="traffic-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def kick(self) -> None:
        """The loop is alive: called after every completed step."""
        with self._lock:
            self._last = self._clock()
            self._fired = False

    def _watch(self) -> None:
        # check several times per timeout, so a stall is caught within 1.25 x timeout_s
        while not self._stop.wait(self.timeout_s / 4):
            self._watch_once()

    def _watch_once(self) -> None:
        with self._lock:
            stalled = self._clock() - self._last
            due = stalled >= self.timeout_s and not self._fired
            if due:
                self._fired = True
                self.stalls += 1
        if due:
            log.error("gateway loop stalled for %.1f s: handing the junction back", stalled)
            self._on_stall(stalled)
