"""`edgeward sim traffic` run as a user runs it: the installed console script, output checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EDGEWARD = Path(sys.executable).with_name("edgeward")


def sim_traffic(*args: str, timeout: float = 300) -> str:
    """Its stdout; a non-zero exit fails the test with the end of stderr."""
    proc = subprocess.run(
        [str(EDGEWARD), "sim", "traffic", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
