"""Facts about the host a run was measured on, so two runs can be told apart and compared."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

# Packages whose version changes what the figures mean.
PACKAGES = (
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "ray",
    "opencv-python-headless",
    "paho-mqtt",
    "grad-cam",
    "tensorrt",
    "pycuda",
    "eclipse-sumo",
    "edgeward",
)
REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except OSError:
        return None
    return None


def jetson_model() -> str | None:
    """The board name on NVIDIA Jetson (device tree), None elsewhere."""
    path = Path("/proc/device-tree/model")
    try:
        text = path.read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return None
    return text if "jetson" in text.lower() or "nvidia" in text.lower() else None


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as nvidia-smi sees them (name, driver, memory); empty without one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return found


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: above the core count, figures are from a busy host."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def busy_warning(facts: dict[str, Any]) -> str | None:
    """A warning when other work shared the CPU while measuring, else None."""
    load, cores = facts.get("load_average"), facts.get("cpu_affinity") or facts.get("cpu_cores")
    if not load or not cores or load[0] <= cores:
        return None
    return (
        f"host was busy: 1-minute load average {load[0]} on {cores} cores; other processes "
        "competed for the CPU, so latencies are inflated and ratios less reliable"
    )


def host_facts() -> dict[str, Any]:
    """Everything a reader needs to judge where the figures came from."""
    uname = platform.uname()
    return {
        "hostname": uname.node,
        "os": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count() or 0,
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": memory_gb(),
        "load_average": load_average(),
        "jetson": jetson_model(),
        "gpus": gpus(),
        "packages": package_versions(),
        "git": git_commit(),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
