"""The signal programs SUMO's own controllers run as baselines (`Scenario.network_for` and
`Scenario.additional_for` pick them).

REBUILT: actuated and delay_based on programs netconvert rebuilds from the network, so a
scenario's own plans in its additional files (`tlLogic`, and the WAUTs that switch between them)
must go, else SUMO runs the file's static plan instead, or refuses a rebuilt junction whose link
count changed. OWN: the network's and the files' own phases made actuated, with the rebuild's
bounds, so the two baselines differ only in their phase design. Under an envelope every program
left is enveloped (`sim.traffic.envelope`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from shared.traffic.conflicts import ConflictMatrix
from sim.traffic.envelope import envelope_logic

MIN_GREEN_S = 7
MAX_DUR_S = 50  # netconvert's default longest actuated green (--tls.max-dur), set explicitly
REBUILT, OWN = "rebuilt", "own"
PROGRAM_TAGS = frozenset({"tlLogic", "WAUT", "wautJunction"})


class ProgramFileError(EdgewardError):
    """An additional file that cannot be read."""


def actuate_logic(logic: ET.Element, controller: str) -> None:
    """A signal program made `controller` (actuated or delay_based) on its own phases: each
    green gets MIN_GREEN_S..MAX_DUR_S where it has no bounds. A NEMA logic is actuated already."""
    if logic.get("type") == "NEMA":
        return
    logic.set("type", controller)
    for phase in logic.iter("phase"):
        state = phase.get("state", "")
        if any(c in "yY" for c in state) or not any(c in "Gg" for c in state):
            continue
        if phase.get("minDur") is None:
            phase.set("minDur", str(min(MIN_GREEN_S, float(phase.get("duration", MIN_GREEN_S)))))
        if phase.get("maxDur") is None:
            phase.set("maxDur", str(MAX_DUR_S))
        low, high = float(phase.get("minDur", "0")), float(phase.get("maxDur", "0"))
        duration = float(phase.get("duration", "0"))
        phase.set("duration", str(min(max(duration, low), high)))


def rewrite_programs(
    path: Path,
    out: Path,
    *,
    drop: bool,
    actuated: str | None,
    envelope: SignalSafety | None,
    conflicts: Mapping[str, ConflictMatrix] | None = None,
) -> Path:
    """`path` with its programs dropped, made `actuated`, and/or enveloped, written to `out`;
    a file without programs is returned as it is. `conflicts`: each light's matrix from the
    network, so the envelope leaves out the phases edgeward leaves out."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise ProgramFileError(f"additional file {path}: cannot read it ({exc})") from exc
    root = tree.getroot()
    if root.find("tlLogic") is None:
        return path
    for child in list(root):  # programs and WAUTs sit at the top of an additional file
        if drop and child.tag in PROGRAM_TAGS:
            root.remove(child)
        elif child.tag == "tlLogic":
            if actuated is not None:
                actuate_logic(child, actuated)
            if envelope is not None:
                envelope_logic(child, envelope, (conflicts or {}).get(child.get("id", "")))
    return write_xml(root, out)


def write_xml(root: ET.Element, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="UTF-8", xml_declaration=True)
    return out
