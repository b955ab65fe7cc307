"""A signal port for running a gateway without a controller driver: it logs every switch.

A real deployment replaces it with the vendor's controller interface (NTCIP, a serial
protocol, ...) behind the same SignalPort; this one makes `edgeward edge traffic` runnable
end to end (cameras, counts, MQTT, fallback, applier) on a bench.
"""

from __future__ import annotations

import json
import logging
import time
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
        self._crossings = crossings
        self._phase = 0

    def phases(self) -> list[PhaseDef]:
        return list(self._program)

    def current_phase(self) -> int:
        return self._phase

    def set_phase(self, index: int) -> None:
        if index != self._phase:
            log.info(
                "junction %s: phase %d -> %d (%s)",
                self.junction_id,
                self._phase,
                index,
                self._program[index].state,
            )
        self._phase = index

    def time(self) -> float:
        return time.time()

    def has_pedestrian_crossing(self, phase: int) -> bool:
        return phase in self._crossings
