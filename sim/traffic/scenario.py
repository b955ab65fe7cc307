"""Scenarios: generated grids and arterials, or any user-supplied SUMO network with signals.

Spec syntax (`--scenario`):
  grid:RxC[:PROFILE]       R x C signalised grid, 2 lanes each way plus a left-turn lane
  arterial:1xN[:PROFILE]   an N-junction arterial (2 lanes each way) crossed by 1-lane side streets
  PATH.sumocfg             a SUMO configuration with its own network and routes (its net,
                           route and additional files and begin time are used; the harness
                           sets step length, end, seed and outputs itself)
  PATH.net.xml[.gz]        a network; routes from --routes FILE..., else generated demand
PROFILE is steady (default), rush (a peak in the middle of the run) or asymmetric (one
direction carries most of the demand).
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from sim.traffic.baseline_programs import (
    MAX_DUR_S,
    MIN_GREEN_S,
    OWN,
    REBUILT,
    actuate_logic,
    rewrite_programs,
    write_xml,
)
from sim.traffic.demand import PROFILES, Gate, generate_trips
from sim.traffic.envelope import apply_envelope, light_conflicts
from sim.traffic.network import NetworkError, junctions_of, read_net
from sim.traffic.sumo_bin import parse_xml, run_tool

CONTROLLER_KINDS = ("fixed", "actuated", "delay_based", "edgeward")
YELLOW_S = 4  # generated programs follow the default SignalSafety: 4 s yellow, 2 s all-red
ALL_RED_S = 2
# how SUMO reads the scenario's files: an old scenario may need validation off (SUMO's fokr_bs
# demo: "attribute 'beginLane' is not declared for element 'flow'")
READ_OPTIONS = ("xml-validation", "xml-validation.net", "xml-validation.routes")


class ScenarioError(EdgewardError):
    """A scenario spec or file is wrong; the message says what and how to fix it."""


@dataclass(frozen=True)
class ScenarioSpec:
    kind: str  # grid | arterial | file
    rows: int = 0
    cols: int = 0
    profile: str = "steady"
    path: Path | None = None
    routes: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        if self.kind == "file" and self.path is not None:
            own_routes = self.routes or self.path.name.endswith(".sumocfg")
            return self.path.name if own_routes else f"{self.path.name}:{self.profile}"
        return f"{self.kind}:{self.rows}x{self.cols}:{self.profile}"


@dataclass
class Scenario:
    """A scenario ready to run: files on disk, begin/end, the network's junctions."""

    spec: ScenarioSpec
    net_file: Path
    route_files: list[Path]
    additional_files: list[Path] = field(default_factory=list)
    begin_s: float = 0.0
    workdir: Path = Path(".")
    generated: bool = False
    # SUMO options the scenario's .sumocfg sets that decide how its files are read
    # (READ_OPTIONS); the harness sets the rest (times, seed, outputs) itself
    sumo_options: list[str] = field(default_factory=list)

    def network_for(
        self, controller: str, envelope: SignalSafety | None = None, programs: str = REBUILT
    ) -> Path:
        """The network a controller runs on: actuated/delay_based on programs netconvert rebuilt
        (`programs` REBUILT) or on the network's own phases made actuated (OWN).

        With `envelope`, a baseline's programs are rewritten to edgeward's change intervals and
        green limits (`sim.traffic.envelope`), so it pays for clearance as edgeward does.
        """
        net = self._network_for(controller, programs)
        if envelope is None or controller not in ("fixed", "actuated", "delay_based"):
            return net
        stem = self.net_file.name.removesuffix(".gz").removesuffix(".net.xml")
        tag = f"{controller}.own" if net != self.net_file and programs == OWN else controller
        return apply_envelope(net, self.workdir / f"{stem}.{tag}.envelope.net.xml", envelope)

    def additional_for(
        self, controller: str, envelope: SignalSafety | None = None, programs: str = REBUILT
    ) -> list[Path]:
        """The additional files a controller runs with: a scenario's own plans in them dropped,
        made actuated or enveloped as `sim.traffic.baseline_programs` says."""
        baseline = controller in ("actuated", "delay_based")
        rebuilt, own = baseline and programs == REBUILT, baseline and programs == OWN
        enveloped = envelope is not None and controller in ("fixed", "actuated", "delay_based")
        if not (rebuilt or own or enveloped):
            return list(self.additional_files)
        tag = f"{controller}{'.own' if own else ''}{'.envelope' if enveloped else ''}"
        conflicts = light_conflicts(self.net_file) if enveloped and self.additional_files else {}
        return [
            rewrite_programs(
                path,
                self.workdir / f"{path.name.removesuffix('.xml')}.{tag}.xml",
                drop=rebuilt,
                actuated=controller if own else None,
                envelope=envelope,
                conflicts=conflicts,
            )
            for path in self.additional_files
        ]

    def _network_for(self, controller: str, programs: str = REBUILT) -> Path:
        if controller not in ("actuated", "delay_based"):
            return self.net_file
        stem = self.net_file.name.removesuffix(".gz").removesuffix(".net.xml")
        if programs == OWN:
            out = self.workdir / f"{stem}.{controller}.own.net.xml"
            if not out.exists():
                root = _check_xml(self.net_file, "network file")
                for logic in root.iter("tlLogic"):
                    actuate_logic(logic, controller)
                write_xml(root, out)
            return out
        out = self.workdir / f"{stem}.{controller}.net.xml"
        if not out.exists():
            args = ["-s", str(self.net_file), "--tls.rebuild", "--tls.default-type", controller]
            args += ["--tls.min-dur", str(MIN_GREEN_S), "--tls.max-dur", str(MAX_DUR_S)]
            yellow, all_red = (
                (YELLOW_S, ALL_RED_S) if self.generated else _change_times(self.net_file)
            )
            if yellow:
                args += ["--tls.yellow.time", str(yellow)]
            if all_red:
                args += ["--tls.allred.time", str(all_red)]
            run_tool("netconvert", args, f"rebuild {controller} programs", output=out)
        return out


def _change_times(net_file: Path) -> tuple[int, int]:
    """The network's own yellow and all-red times (longest of each; 0 if none), kept on rebuild."""
    yellow = all_red = 0
    for tl in _check_xml(net_file, "network file").iter("tlLogic"):
        for ph in tl.iter("phase"):
            state, dur = ph.get("state", ""), round(float(ph.get("duration", "0")))
            if "y" in state.lower() and "G" not in state and "g" not in state:
                yellow = max(yellow, dur)
            elif state and set(state) <= set("rs"):
                all_red = max(all_red, dur)
    return yellow, all_red


_GEN = re.compile(r"^(grid|arterial):(\d+)x(\d+)(?::([a-z_]+))?$")


def parse_scenario(
    text: str, routes: list[Path] | None = None, profile: str | None = None
) -> ScenarioSpec:
    """Validate a scenario spec; the error shows the accepted syntax."""
    routes = routes or []
    if text.startswith(("grid", "arterial")) and not Path(text).exists():
        m = _GEN.match(text)
        if not m:
            raise ScenarioError(
                f"scenario {text!r} is not valid; write grid:RxC[:PROFILE] (e.g. grid:4x4:rush) "
                f"or arterial:1xN[:PROFILE], PROFILE one of {', '.join(PROFILES)}"
            )
        kind, rows, cols, prof = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        prof = prof or profile or "steady"
        if prof not in PROFILES:
            raise ScenarioError(
                f"scenario {text!r}: demand profile {prof!r} is unknown; use one of "
                f"{', '.join(PROFILES)}"
            )
        if not (1 <= rows <= 20 and 1 <= cols <= 20) or (rows * cols < 2 and kind == "grid"):
            raise ScenarioError(
                f"scenario {text!r}: {rows}x{cols} is out of range; use 1..20 junctions per "
                "side and at least 2 in all"
            )
        if kind == "arterial" and rows != 1:
            raise ScenarioError(
                f"scenario {text!r}: an arterial is one road; write arterial:1x{cols}"
            )
        if kind == "arterial" and cols < 2:
            raise ScenarioError(f"scenario {text!r}: an arterial needs at least 2 junctions")
        if routes:
            raise ScenarioError("--routes applies to a .net.xml scenario, not a generated one")
        return ScenarioSpec(kind, rows, cols, prof)
    path = Path(text)
    if not path.exists():
        raise ScenarioError(
            f"scenario {text!r} is neither a generated scenario (grid:RxC, arterial:1xN) nor an "
            "existing file; give a .sumocfg or .net.xml path"
        )
    if path.name.endswith(".sumocfg"):
        if routes:
            raise ScenarioError(f"{path}: a .sumocfg names its own routes; drop --routes")
        return ScenarioSpec("file", path=path, profile=profile or "steady")
    if path.name.endswith((".net.xml", ".net.xml.gz")):
        for r in routes:
            if not r.exists():
                raise ScenarioError(f"route file {r} does not exist; check the path")
        return ScenarioSpec("file", path=path, routes=tuple(routes), profile=profile or "steady")
    raise ScenarioError(
        f"scenario file {path} has an unknown type; give a .sumocfg or a .net.xml (plus --routes)"
    )


def build_scenario(spec: ScenarioSpec, workdir: Path, *, seed: int, minutes: float) -> Scenario:
    """Write or check every file the scenario needs under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    seconds = minutes * 60.0
    if spec.kind == "grid":
        net_file = workdir / f"grid{spec.rows}x{spec.cols}.net.xml"
        _netgenerate_grid(spec.rows, spec.cols, net_file)
        scenario = Scenario(spec, net_file, [], workdir=workdir, generated=True)
        rate = 300.0
    elif spec.kind == "arterial":
        net_file = workdir / f"arterial1x{spec.cols}.net.xml"
        _build_arterial(spec.cols, net_file, workdir)
        scenario = Scenario(spec, net_file, [], workdir=workdir, generated=True)
        rate = 150.0  # per side-street entry; the arterial gets 3x (see _arterial_weight)
    elif spec.path is not None and spec.path.name.endswith(".sumocfg"):
        scenario = _from_sumocfg(spec, spec.path, workdir)
        rate = 0.0
    else:
        assert spec.path is not None
        scenario = Scenario(spec, spec.path, list(spec.routes), workdir=workdir)
        rate = 250.0
    net = _check_network(scenario.net_file)
    if not scenario.route_files:
        trips = workdir / f"demand-{spec.profile}-seed{seed}.trips.xml"
        weight = _arterial_weight if spec.kind == "arterial" else None
        n = generate_trips(
            net,
            trips,
            profile=spec.profile,
            seconds=seconds,
            veh_per_hour=rate,
            seed=seed,
            gate_weight=weight,
        )
        if n == 0:
            raise ScenarioError(f"{scenario.net_file}: generated demand is empty; give --routes")
        scenario.route_files = [trips]
    for r in scenario.route_files:
        _check_xml(r, "route file")
    return scenario


def _arterial_weight(gate: Gate) -> float:
    """The arterial carries most traffic: east-west gates 3x the side streets."""
    return 3.0 if abs(math.sin(math.radians(gate.heading_deg))) > 0.7 else 1.0


def _check_xml(path: Path, what: str) -> ET.Element:
    if not path.exists():
        raise ScenarioError(f"{what} {path} does not exist; check the path")
    try:
        return parse_xml(path).getroot()
    except (ET.ParseError, OSError, EOFError) as exc:
        raise ScenarioError(f"{what} {path} is not valid XML: {exc}; fix the file") from exc


def _check_network(net_file: Path) -> Any:
    root = _check_xml(net_file, "network file")
    if root.tag != "net":
        raise ScenarioError(
            f"network file {net_file} has root <{root.tag}>, expected <net>; "
            "give a network written by netconvert"
        )
    try:
        net = read_net(net_file)
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc
    if not junctions_of(net):
        raise ScenarioError(
            f"network file {net_file} has no traffic lights, so there is nothing to control; "
            "add signals (netconvert --tls.guess or node type traffic_light)"
        )
    return net


def _from_sumocfg(spec: ScenarioSpec, cfg: Path, workdir: Path) -> Scenario:
    root = _check_xml(cfg, "SUMO configuration")
    base = cfg.parent

    def values(tag: str) -> list[Path]:
        el = root.find(f".//{tag}")
        if el is None or not el.get("value"):
            return []
        return [base / v.strip() for v in el.get("value", "").split(",") if v.strip()]

    nets = values("net-file")
    if not nets:
        raise ScenarioError(f"SUMO configuration {cfg} names no <net-file>; add one")
    routes = values("route-files")
    if not routes:
        raise ScenarioError(
            f"SUMO configuration {cfg} names no <route-files>; add one or pass the .net.xml "
            "with generated demand"
        )
    for r in routes:
        if not r.exists():
            raise ScenarioError(
                f"SUMO configuration {cfg}: route file {r} does not exist; fix <route-files>"
            )
    additional = values("additional-files")
    for a in additional:
        if not a.exists():
            raise ScenarioError(
                f"SUMO configuration {cfg}: additional file {a} does not exist; fix it"
            )
    begin_el = root.find(".//begin")
    text = begin_el.get("value", "0") if begin_el is not None else "0"
    try:
        begin = sumo_time(text)
    except ValueError:
        raise ScenarioError(
            f"SUMO configuration {cfg}: <begin value={text!r}> is not a time; write seconds "
            "(54000) or hours:minutes:seconds (15:00:00)"
        ) from None
    options = [
        arg
        for tag in READ_OPTIONS
        if (el := root.find(f".//{tag}")) is not None and el.get("value")
        for arg in (f"--{tag}", el.get("value", ""))
    ]
    return Scenario(spec, nets[0], routes, additional, begin, workdir, sumo_options=options)


def sumo_time(text: str) -> float:
    """Seconds from a SUMO time value: seconds, or [[days:]hours:]minutes:seconds."""
    parts = text.strip().split(":")
    if len(parts) > 4 or any(not p.strip() for p in parts):
        raise ValueError(f"not a SUMO time: {text!r}")
    seconds = 0.0
    for unit, part in zip((86400.0, 3600.0, 60.0, 1.0)[-len(parts) :], parts, strict=True):
        seconds += unit * float(part)
    if not math.isfinite(seconds):
        raise ValueError(f"not a SUMO time: {text!r}")
    return seconds


def _netgenerate_grid(rows: int, cols: int, out: Path) -> None:
    if out.exists():
        return
    args = [
        "--grid",
        "--grid.x-number",
        str(cols),
        "--grid.y-number",
        str(rows),
        "--grid.length",
        "200",
        "--grid.attach-length",
        "200",
        "--default.lanenumber",
        "2",
        "--default.speed",
        "13.89",
        "--turn-lanes",
        "1",
        "--turn-lanes.length",
        "40",
        "--tls.guess",
        "--tls.yellow.time",
        str(YELLOW_S),
        "--tls.allred.time",
        str(ALL_RED_S),
        "--seed",
        "1",
    ]
    run_tool("netgenerate", args, f"generate grid {rows}x{cols}", output=out)


def _build_arterial(n: int, out: Path, workdir: Path) -> None:
    """An arterial from plain XML: main road 2 lanes each way, side streets 1 lane."""
    if out.exists():
        return
    spacing, side = 250.0, 150.0
    nodes = ["<nodes>", f'  <node id="W" x="{-200.0}" y="0" type="priority"/>']
    edges = ["<edges>"]
    for i in range(n):
        x = i * spacing
        nodes.append(f'  <node id="J{i}" x="{x}" y="0" type="traffic_light"/>')
        nodes.append(f'  <node id="N{i}" x="{x}" y="{side}" type="priority"/>')
        nodes.append(f'  <node id="S{i}" x="{x}" y="{-side}" type="priority"/>')
        for a, b in ((f"N{i}", f"J{i}"), (f"S{i}", f"J{i}")):
            edges.append(f'  <edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="13.89"/>')
            edges.append(f'  <edge id="{b}{a}" from="{b}" to="{a}" numLanes="1" speed="13.89"/>')
    nodes.append(f'  <node id="E" x="{(n - 1) * spacing + 200.0}" y="0" type="priority"/>')
    chain = ["W", *[f"J{i}" for i in range(n)], "E"]
    for a, b in itertools.pairwise(chain):
        for u, v in ((a, b), (b, a)):
            edges.append(f'  <edge id="{u}{v}" from="{u}" to="{v}" numLanes="2" speed="16.67"/>')
    nodes.append("</nodes>")
    edges.append("</edges>")
    nod, edg = workdir / "arterial.nod.xml", workdir / "arterial.edg.xml"
    nod.write_text("\n".join(nodes) + "\n")
    edg.write_text("\n".join(edges) + "\n")
    args = ["-n", str(nod), "-e", str(edg), "--no-turnarounds", "--offset.disable-normalization"]
    args += ["--tls.yellow.time", str(YELLOW_S), "--tls.allred.time", str(ALL_RED_S)]
    run_tool("netconvert", args, f"build arterial 1x{n}", output=out)
