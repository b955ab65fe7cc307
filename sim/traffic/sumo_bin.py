"""Where the SUMO tools live and how to run them with errors a person can act on."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from shared.errors import EdgewardError


class SumoToolError(EdgewardError):
    """A SUMO tool is missing or refused its input."""


def sumo_binary(name: str) -> str:
    """Path of a SUMO binary (`sumo`, `netconvert`, ...) from the eclipse-sumo wheel or PATH."""
    candidates = []
    try:
        import sumo

        candidates.append(Path(sumo.SUMO_HOME) / "bin" / name)
    except ImportError:
        pass
    candidates.append(Path(sys.executable).parent / name)
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise SumoToolError(
        f"SUMO tool {name!r} not found; install the sim extra: pip install -e '.[sim]'"
    )


def run_tool(name: str, args: list[str], what: str, output: Path | None = None) -> None:
    """Run a SUMO tool; on failure raise with its own error lines, which name the bad input.

    `output` is passed as `-o` through a private temporary path: SUMO reads an output path
    with a colon (run directories named `grid:4x4:rush`) as host:port and fails.
    """
    with tempfile.TemporaryDirectory(prefix="edgeward-sumo-") as tmp:
        extra = ["-o", str(Path(tmp) / "out.xml")] if output is not None else []
        proc = subprocess.run(
            [sumo_binary(name), *args, *extra],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "rror" in ln]
            detail = "; ".join(lines[:5]) or proc.stderr.strip()[-500:]
            raise SumoToolError(f"{what}: {name} failed: {detail}")
        if output is not None:
            shutil.move(str(Path(tmp) / "out.xml"), output)


def output_safe(path: Path) -> bool:
    """Whether SUMO can write to `path` directly (a colon makes it read host:port)."""
    return ":" not in str(path.resolve())


def parse_xml(path: Path) -> ET.ElementTree[ET.Element]:
    """A SUMO XML file as SUMO reads it, gzipped (`.gz`) or not; ParseError, OSError or EOFError
    for the caller to name."""
    if path.name.endswith(".gz"):
        with gzip.open(path) as f:
            return ET.parse(f)
    return ET.parse(path)
