"""A signal port for running a gateway without a controller driver: it logs every switch.

A real deployment replaces it with the vendor's controller interface (NTCIP, a serial
protocol, ...) behind the same SignalPort; this one makes `edgeward edge traffic` runnable
end to end (cameras, counts, MQTT, fallback, applier) on a bench.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edge.traffic.signal_port import PhaseDef
from shared.errors import ConfigError

log = logging.getLogger(__name__)


def load_program(path: Path) -> list[PhaseDef]:
    """Phases from JSON: [{"state": "GGrr", "duration_s": 30, "min_s": 7, "max_s": 60}, ...]."""
    if not path.is_file():
        raise ConfigError(f"signal program {path} does not exist")
    try:
        rows = json.loads(path.read_text())
        return [
            PhaseDef.from_state(
                str(r["state"]), float(r["duration_s"]), r.get("min_s"), r.get("max_s")
            )
            for r in rows
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"signal program {path}: {type(exc).__name__}: {exc}; expected a JSON list of "
            '{"state", "duration_s"[, "min_s", "max_s"]}'
        ) from None


class ConsoleSignalPort:
    """Holds the phase the applier sets, on the wall clock, and logs each switch."""

    def __init__(self, junction_id: str, program: list[PhaseDef], crossings: set[int]) -> None:
        self.junction_id = junction_id
        self._program = program
        self._shown = list(program)
        self._crossings = crossings
        self._phase = 0
        self._lock = threading.Lock()  # the watchdog releases from its own thread
        self._released: tuple[float, int] | None = None
        self._flashing = False

    def phases(self) -> list[PhaseDef]:
        return list(self._program)

    def install(self, program: Sequence[PhaseDef]) -> None:
        self._shown = list(program)  # the junction's own phases stay first: indexes hold

    def current_phase(self) -> int:
        with self._lock:
            released = self._released
            if released is None:
                return self._phase
        return self._local_phase(*released)

    def _local_phase(self, since: float, i: int) -> int:
        """The controller's own plan, run on its own since it was handed back in phase i."""
        n = len(self._program)
        if i >= n:  # an applier's red clearance: the plan goes on after the yellow it follows
            state = self._shown[i].state
            after = [
                (y + 1) % n
                for y, p in enumerate(self._program)
                if p.kind == "yellow" and p.state.replace("y", "r").replace("Y", "r") == state
            ]
            i = after[0] if after else 0
        left = self.time() - since
        while left >= self._program[i].duration_s > 0:
            left -= self._program[i].duration_s
            i = (i + 1) % n
        return i

    def release(self) -> None:
        with self._lock:
            self._released = (self.time(), self._phase)
        log.warning("junction %s: handed back to the controller's own plan", self.junction_id)

    def fail_safe(self) -> None:
        with self._lock:
            self._flashing = True
        log.critical("junction %s: FLASH until the cabinet is reset", self.junction_id)

    def set_phase(self, index: int) -> None:
        with self._lock:
            if self._flashing:
                return
            if self._released is not None:
                self._phase = self._local_phase(*self._released)
                self._released = None
        if index != self._phase:
            log.info(
                "junction %s: phase %d -> %d (%s)",
                self.junction_id,
                self._phase,
                index,
                self._shown[index].state,
            )
        self._phase = index

    def time(self) -> float:
        return time.monotonic()  # phase timing never follows a wall-clock step

    def has_pedestrian_crossing(self, phase: int) -> bool:
        return phase in self._crossings
