"""Where dcmtk's command-line tools are, past their look-alikes on PATH.

pynetdicom installs console scripts with the same names (storescu, echoscu, ...) and other
options beside the Python interpreter; with the virtualenv activated they come first on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def dcmtk_tool(name: str) -> str | None:
    """The first `name` on PATH that says it is dcmtk's, or None."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which(name, path=folder) if folder else None
        if path is not None and _is_dcmtk(path):
            return path
    return None


def _is_dcmtk(path: str) -> bool:
    try:
        done = subprocess.run(
            [path, "--version"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "dcmtk" in done.stdout.lower()
