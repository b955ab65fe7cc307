"""Fault injection by spec: what breaks, where, and for which simulated seconds.

Spec syntax (`--fault`, repeatable; times in simulated seconds, START < END):
  cloud_down@START-END                   the cloud coordinator is stopped
  broker_down@START-END                  the MQTT broker is stopped
  gateway_kill:JUNCTION@START-END        one junction's gateway process is killed
  camera:JUNCTION:APPROACH:MODE@START-END  a camera fault at one approach, MODE one of
                                         frozen|black|blur|obstructed|dropped
  uplink_delay:SECONDS@START-END         every gateway's uplink is delayed by SECONDS
The harness applies camera faults in the renderer; the controller acts on the others (stopping
the broker, the coordinator or a gateway) when `FaultSchedule.active(t)` reports them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.errors import EdgewardError

FAULT_KINDS = ("cloud_down", "broker_down", "gateway_kill", "camera", "uplink_delay")
CAMERA_MODES = ("frozen", "black", "blur", "obstructed", "dropped")

_SPEC = re.compile(r"^(?P<body>[^@]+)@(?P<start>[^-]+)-(?P<end>.+)$")


class FaultSpecError(EdgewardError):
    """A fault spec does not parse or names something that does not exist."""


@dataclass(frozen=True)
class Fault:
    kind: str
    start_s: float
    end_s: float
    junction: str = ""
    approach: str = ""
    mode: str = ""
    delay_s: float = 0.0
    spec: str = ""

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    @property
    def label(self) -> str:
        return self.spec or self.kind


def parse_fault(text: str) -> Fault:
    """One fault from its spec; the error names the part that is wrong and the syntax."""
    spec = text.strip()
    m = _SPEC.match(spec)
    if not m:
        raise FaultSpecError(
            f"fault {text!r}: expected KIND[:ARGS]@START-END, e.g. cloud_down@300-900 or "
            "camera:J2:north:frozen@100-300"
        )
    start, end = _seconds(text, m.group("start"), "start"), _seconds(text, m.group("end"), "end")
    if end <= start:
        raise FaultSpecError(f"fault {text!r}: end {end:g} s must be after start {start:g} s")
    parts = m.group("body").split(":")
    kind, args = parts[0], parts[1:]
    if kind not in FAULT_KINDS:
        raise FaultSpecError(
            f"fault {text!r}: kind {kind!r} is unknown; use one of {', '.join(FAULT_KINDS)}"
        )
    if kind in ("cloud_down", "broker_down"):
        _arity(text, kind, args, 0, f"{kind}@START-END")
        return Fault(kind, start, end, spec=spec)
    if kind == "gateway_kill":
        _arity(text, kind, args, 1, "gateway_kill:JUNCTION@START-END")
        return Fault(kind, start, end, junction=_nonempty(text, args[0], "junction"), spec=spec)
    if kind == "uplink_delay":
        _arity(text, kind, args, 1, "uplink_delay:SECONDS@START-END")
        delay = _seconds(text, args[0], "delay")
        return Fault(kind, start, end, delay_s=delay, spec=spec)
    if len(args) != 3:
        raise FaultSpecError(
            f"fault {text!r}: camera faults take junction, approach and mode: "
            "camera:JUNCTION:APPROACH:MODE@START-END"
        )
    junction, approach, mode = args
    if mode not in CAMERA_MODES:
        raise FaultSpecError(
            f"fault {text!r}: camera mode {mode!r} is unknown; use one of {', '.join(CAMERA_MODES)}"
        )
    return Fault(
        kind,
        start,
        end,
        junction=_nonempty(text, junction, "junction"),
        approach=_nonempty(text, approach, "approach"),
        mode=mode,
        spec=spec,
    )


def _seconds(text: str, value: str, what: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise FaultSpecError(
            f"fault {text!r}: {what} {value!r} is not a number of seconds"
        ) from None
    if v < 0:
        raise FaultSpecError(f"fault {text!r}: {what} {v:g} must not be negative")
    return v


def _arity(text: str, kind: str, args: list[str], n: int, syntax: str) -> None:
    if len(args) != n:
        raise FaultSpecError(f"fault {text!r}: {kind} takes {n} argument(s): {syntax}")


def _nonempty(text: str, value: str, what: str) -> str:
    if not value:
        raise FaultSpecError(f"fault {text!r}: the {what} is empty")
    return value


class FaultSchedule:
    """All faults of a run; asked every step which are active."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self.faults: tuple[Fault, ...] = tuple(sorted(faults, key=lambda f: (f.start_s, f.kind)))

    @classmethod
    def parse(cls, specs: Sequence[str]) -> FaultSchedule:
        return cls(parse_fault(s) for s in specs)

    def active(self, t: float, kind: str | None = None) -> list[Fault]:
        return [f for f in self.faults if f.active(t) and (kind is None or f.kind == kind)]

    def camera_fault(self, t: float, junction: str, approach_keys: Sequence[str]) -> str | None:
        """The camera fault mode at an approach now (matched by compass or edge id), or None."""
        for f in self.active(t, "camera"):
            if f.junction == junction and f.approach in approach_keys:
                return f.mode
        return None

    def validate(self, junctions: Mapping[str, Sequence[str]]) -> None:
        """Check junction and approach names against the network; say which exist."""
        for f in self.faults:
            if f.junction and f.junction not in junctions:
                names = ", ".join(sorted(junctions)[:20])
                raise FaultSpecError(
                    f"fault {f.spec!r}: junction {f.junction!r} is not a traffic light of this "
                    f"network; its traffic lights are {names}"
                )
            if f.approach and f.approach not in junctions[f.junction]:
                names = ", ".join(junctions[f.junction])
                raise FaultSpecError(
                    f"fault {f.spec!r}: junction {f.junction} has no approach {f.approach!r}; "
                    f"its approaches are {names}"
                )

    def windows(self) -> list[tuple[float, float, str]]:
        return [(f.start_s, f.end_s, f.label) for f in self.faults]
