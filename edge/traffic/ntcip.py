"""An NTCIP 1202 signal-controller driver: the SignalPort over SNMPv2c (pysnmp's message codec).

The applier stays the only one that decides: it picks every phase and times every change
interval on our side; this driver only turns its choice into the controller's standard objects
and reads back what the controller shows.

- Status: phaseStatusGroupGreens / Yellows (1.3.6.1.4.1.1206.4.2.1.1.4.1.{4,3}.G), one
  8-phase bitmask per group G. `current_phase` is the program phase whose greens and yellows
  match them; a display that is no phase of the program is an error, never a guess.
- Control: phaseControlGroupHold / ForceOff / VehCall (…1.1.5.1.{4,5,6}.G): the phase's greens
  are held and called, every other phase is forced off, so the controller runs its own
  yellow and red clearance towards them (its clearance times must be at least the applier's).
- Hand-back and flash: systemPatternControl (…1.4.14.0) 0 = the controller's own schedule,
  255 = flash. unitBackupTime (…1.3.3.0) is set on install: a gateway that stops talking
  (dead, hung, unplugged) loses the controller to its own plan within that time, on the
  controller's side, with no help from us.

Each request is one UDP datagram with a bounded timeout and retries, so a dead or slow
controller gives an `NtcipError` naming the controller, the object and the wait, never a hang.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.errors import ConfigError, EdgewardError

log = logging.getLogger(__name__)

ASC = "1.3.6.1.4.1.1206.4.2.1"
STATUS = {"reds": 2, "yellows": 3, "greens": 4}  # phaseStatusGroup{Reds,Yellows,Greens}
CONTROL = {"hold": 4, "force_off": 5, "veh_call": 6}  # phaseControlGroup{Hold,ForceOff,VehCall}
SYSTEM_PATTERN_CONTROL = f"{ASC}.4.14.0"
UNIT_BACKUP_TIME = f"{ASC}.3.3.0"
PHASE_YELLOW_CHANGE = f"{ASC}.1.2.1.8"  # .P, tenths of a second
PHASE_RED_CLEAR = f"{ASC}.1.2.1.9"  # .P, tenths of a second
PATTERN_STANDBY, PATTERN_FLASH = 0, 255
MAX_PHASE = 32  # four phase groups of eight

_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
_request_ids = itertools.count(int(time.time()) % 100_000 * 1000 + 1)


def status_oid(kind: str, group: int) -> str:
    return f"{ASC}.1.4.1.{STATUS[kind]}.{group}"


def control_oid(kind: str, group: int) -> str:
    return f"{ASC}.1.5.1.{CONTROL[kind]}.{group}"


class NtcipError(EdgewardError):
    """The controller did not answer, refused a request, or shows something we cannot map."""


class NtcipSignalPort:
    """One junction's NTCIP 1202 controller at host:port, as a SignalPort.

    `link_phases[k]` is the controller phase (1..32) that drives link k of the program's state
    strings (the link order of the junction's .net.xml): the cabinet's channel assignment.
    """

    def __init__(
        self,
        junction_id: str,
        program: list[PhaseDef],
        crossings: set[int],
        address: tuple[str, int],
        link_phases: Sequence[int],
        *,
        community: str = "public",
        timeout_s: float = 0.5,
        retries: int = 1,
        backup_time_s: int = 10,
    ) -> None:
        if not program:
            raise ConfigError(f"junction {junction_id}: the signal program has no phases")
        width = len(program[0].state)
        if len(link_phases) != width:
            raise ConfigError(
                f"junction {junction_id}: {len(link_phases)} link phases for {width} links of "
                f"the program; give one controller phase (1..{MAX_PHASE}) per link"
            )
        bad = [p for p in link_phases if not 1 <= p <= MAX_PHASE]
        if bad:
            raise ConfigError(
                f"junction {junction_id}: controller phase {bad[0]} is out of range; "
                f"phases are 1..{MAX_PHASE}"
            )
        if timeout_s <= 0 or retries < 0 or not 0 < backup_time_s <= 3600:
            raise ConfigError(
                f"junction {junction_id}: timeout_s {timeout_s} must be > 0, retries {retries} "
                f">= 0 and backup_time_s {backup_time_s} in 1..3600"
            )
        self.junction_id = junction_id
        self.address = address
        self._program = list(program)
        self._crossings = crossings
        self._links = list(link_phases)
        self._community = community
        self._timeout_s = timeout_s
        self._retries = retries
        self._backup_time_s = backup_time_s
        self._groups = range(1, (max(self._links) - 1) // 8 + 2)
        self._used = self._mask(set(self._links))
        self._shown = list(program)
        self._signatures = [self._signature(i, p) for i, p in enumerate(self._shown)]
        self._commanded = 0
        self._flashing = False
        self.unreachable: str | None = None  # set when a hand-back could not reach it
        self._lock = threading.Lock()  # the watchdog releases from its own thread
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @classmethod
    def from_file(
        cls, junction_id: str, program: list[PhaseDef], crossings: set[int], path: Path
    ) -> NtcipSignalPort:
        """The controller named by a JSON file: {"address": "HOST:PORT", "link_phases": [...],
        optional "community", "timeout_s", "retries", "backup_time_s"}."""
        if not path.is_file():
            raise ConfigError(f"NTCIP controller file {path} does not exist")
        try:
            cfg = json.loads(path.read_text())
            host, _, port = str(cfg["address"]).rpartition(":")
            return cls(
                junction_id,
                program,
                crossings,
                (host, int(port)),
                [int(p) for p in cfg["link_phases"]],
                community=str(cfg.get("community", "public")),
                timeout_s=float(cfg.get("timeout_s", 0.5)),
                retries=int(cfg.get("retries", 1)),
                backup_time_s=int(cfg.get("backup_time_s", 10)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"NTCIP controller file {path}: {type(exc).__name__}: {exc}; expected JSON "
                '{"address": "HOST:PORT", "link_phases": [controller phase per link], ...}'
            ) from None

    def check_clearance(self, safety: SignalSafety) -> None:
        """Refuse a controller whose own yellow or red clearance is shorter than the applier's:
        on a force-off the controller times them, so they must cover what the applier assumes."""
        used = sorted(set(self._links))
        oids = [f"{PHASE_YELLOW_CHANGE}.{p}" for p in used] + [
            f"{PHASE_RED_CLEAR}.{p}" for p in used
        ]
        values = self._get(oids, "phaseYellowChange/phaseRedClear")
        for i, p in enumerate(used):
            yellow, red = values[i] / 10.0, values[len(used) + i] / 10.0
            if yellow + 1e-9 < safety.yellow_s or red + 1e-9 < safety.all_red_s:
                raise NtcipError(
                    f"junction {self.junction_id}: controller {self._where()} phase {p} times "
                    f"yellow {yellow:g} s and red clearance {red:g} s, shorter than the "
                    f"gateway's {safety.yellow_s:g} s / {safety.all_red_s:g} s; lengthen them "
                    "in the controller's phase timing (or lower safety where the kinematics allow)"
                )

    # -- SignalPort -------------------------------------------------------------------------

    def phases(self) -> list[PhaseDef]:
        return list(self._program)

    def install(self, program: Sequence[PhaseDef]) -> None:
        shown = list(program)
        signatures = [self._signature(i, p) for i, p in enumerate(shown)]
        self._set([(UNIT_BACKUP_TIME, self._backup_time_s)], "unitBackupTime")
        self._shown, self._signatures = shown, signatures

    def current_phase(self) -> int:
        shown = self.read_status()
        sig = (shown["greens"], shown["yellows"])
        if self._signatures[self._commanded] == sig:
            return self._commanded
        for i, s in enumerate(self._signatures):
            if s == sig:
                return i
        raise NtcipError(
            f"junction {self.junction_id}: controller {self._where()} shows greens "
            f"{_phases(sig[0])} yellows {_phases(sig[1])}, which is no phase of the program; "
            "check link_phases against the cabinet's channel assignment"
        )

    def set_phase(self, index: int) -> None:
        if self._flashing:
            return
        greens, _ = self._signatures[index]
        binds: list[tuple[str, int]] = []
        for g in self._groups:
            byte = (greens >> (8 * (g - 1))) & 0xFF
            off = (self._used & ~greens) >> (8 * (g - 1)) & 0xFF
            binds += [(control_oid("hold", g), byte), (control_oid("veh_call", g), byte)]
            binds.append((control_oid("force_off", g), off))
        self._set(binds, f"phaseControlGroup for phase {index} ({self._shown[index].state})")
        self._commanded = index
        self.unreachable = None

    def release(self) -> None:
        """Clear our holds and calls; the controller runs its own schedule. Never raises: the
        watchdog calls it, and an unreachable controller reverts on its own backup time."""
        binds = [(control_oid(k, g), 0) for g in self._groups for k in CONTROL]
        try:
            self._set([*binds, (SYSTEM_PATTERN_CONTROL, PATTERN_STANDBY)], "release")
        except NtcipError as exc:
            self.unreachable = str(exc)
            log.critical(
                "junction %s: %s; the controller takes itself back after its backup time (%d s)",
                self.junction_id,
                exc,
                self._backup_time_s,
            )
            return
        log.warning("junction %s: handed back to the controller's own plan", self.junction_id)

    def fail_safe(self) -> None:
        self._flashing = True
        try:
            self._set([(SYSTEM_PATTERN_CONTROL, PATTERN_FLASH)], "systemPatternControl=flash")
        except NtcipError as exc:  # the cabinet's MMU still flashes on a conflict
            self.unreachable = str(exc)
            log.critical("junction %s: could not command flash: %s", self.junction_id, exc)
            return
        log.critical("junction %s: FLASH until the cabinet is reset", self.junction_id)

    def time(self) -> float:
        return time.monotonic()  # phase timing never follows a wall-clock step

    def has_pedestrian_crossing(self, phase: int) -> bool:
        return phase in self._crossings

    def close(self) -> None:
        self._sock.close()

    # -- NTCIP ------------------------------------------------------------------------------

    def read_status(self) -> dict[str, int]:
        """{"greens", "yellows", "reds"}: bitmasks over all groups (bit p-1 = phase p)."""
        oids = [(status_oid(k, g), k, g) for g in self._groups for k in STATUS]
        values = self._get([o for o, _, _ in oids], "phaseStatusGroup")
        out = dict.fromkeys(STATUS, 0)
        for (_, kind, g), v in zip(oids, values, strict=True):
            out[kind] |= (v & 0xFF) << (8 * (g - 1))
        return out

    def _signature(self, index: int, phase: PhaseDef) -> tuple[int, int]:
        colour: dict[int, str] = {}
        for link, ch in zip(self._links, phase.state, strict=False):
            c = "g" if ch in "Gg" else "y" if ch in "yY" else "r"
            if colour.setdefault(link, c) != c:
                raise ConfigError(
                    f"junction {self.junction_id}: phase {index} ({phase.state}) shows controller "
                    f"phase {link} as both {colour[link]} and {c}; links of one controller phase "
                    "must share a colour: fix link_phases"
                )
        greens = self._mask({p for p, c in colour.items() if c == "g"})
        return greens, self._mask({p for p, c in colour.items() if c == "y"})

    @staticmethod
    def _mask(phases: set[int]) -> int:
        return sum(1 << (p - 1) for p in phases)

    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _get(self, oids: list[str], what: str) -> list[int]:
        return self._request(_V2C.GetRequestPDU(), [(o, _V2C.Null("")) for o in oids], what)

    def _set(self, binds: list[tuple[str, int]], what: str) -> None:
        self._request(_V2C.SetRequestPDU(), [(o, _V2C.Integer(v)) for o, v in binds], what)

    def _request(self, pdu: object, binds: list[tuple[str, object]], what: str) -> list[int]:
        _V2C.apiPDU.set_defaults(pdu)
        rid = next(_request_ids)
        _V2C.apiPDU.set_request_id(pdu, rid)
        _V2C.apiPDU.set_varbinds(pdu, binds)
        msg = _V2C.Message()
        _V2C.apiMessage.set_defaults(msg)
        _V2C.apiMessage.set_community(msg, self._community)
        _V2C.apiMessage.set_pdu(msg, pdu)
        data = encoder.encode(msg)
        with self._lock:
            for _ in range(self._retries + 1):
                self._sock.sendto(data, self.address)
                reply = self._await(rid)
                if reply is not None:
                    return self._values(reply, what)
        raise NtcipError(
            f"junction {self.junction_id}: controller {self._where()} did not answer {what} "
            f"within {self._timeout_s} s x {self._retries + 1} tries; check the cabinet's "
            "network and SNMP community"
        )

    def _await(self, rid: int) -> object | None:
        deadline = time.monotonic() + self._timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self._sock.settimeout(left)
            try:
                data, _ = self._sock.recvfrom(65535)
            except (TimeoutError, ConnectionRefusedError):  # ICMP unreachable: nobody there
                continue
            try:
                msg, _ = decoder.decode(data, asn1Spec=_V2C.Message())
            except PyAsn1Error:
                continue  # not SNMP: ignore it, as a controller would
            pdu = _V2C.apiMessage.get_pdu(msg)
            if int(_V2C.apiPDU.get_request_id(pdu)) == rid:  # a late answer to an old try: skip
                return pdu
        return None

    def _values(self, pdu: object, what: str) -> list[int]:
        status = int(_V2C.apiPDU.get_error_status(pdu))
        if status:
            index = int(_V2C.apiPDU.get_error_index(pdu, muteErrors=True))
            raise NtcipError(
                f"junction {self.junction_id}: controller {self._where()} refused {what}: "
                f"SNMP error {status} ({_V2C.apiPDU.get_error_status(pdu).prettyPrint()}) at "
                f"variable {index}; check the controller supports NTCIP 1202 and the community"
            )
        out: list[int] = []
        for oid, value in _V2C.apiPDU.get_varbinds(pdu):
            try:
                out.append(int(value))
            except (TypeError, ValueError, PyAsn1Error):
                raise NtcipError(
                    f"junction {self.junction_id}: controller {self._where()} has no {oid} "
                    f"({value.prettyPrint()}) for {what}; it does not implement this object"
                ) from None
        return out


def _phases(mask: int) -> list[int]:
    return [p + 1 for p in range(MAX_PHASE) if mask >> p & 1]
