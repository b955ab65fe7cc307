"""Where dcmtk's command-line tools are, past their look-alikes on PATH.

pynetdicom installs console scripts with the same names (storescu, echoscu, ...) and other
options beside the Python interpreter; with the virtualenv activated they come first on PATH.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


def dcmtk_tool(name: str) -> str | None:
    """The first `name` on PATH that says it is dcmtk's, or None."""
    return _find(name, os.environ.get("PATH", ""))


@functools.cache
def _find(name: str, search_path: str) -> str | None:
    """Asked once per tool and PATH: each candidate is run (`--version`) to say what it is."""
    for folder in search_path.split(os.pathsep):
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
