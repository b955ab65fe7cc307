"""Fixtures shared by every test: real services on free loopback ports, GPU detection."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]


def _gpu_reason() -> str | None:
    """None if an NVIDIA GPU is usable here, else why GPU tests cannot run."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this host (nvidia-smi not found)"
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed: {exc}"
    if out.returncode != 0 or "GPU" not in out.stdout:
        return f"nvidia-smi lists no GPU: {out.stderr.strip() or out.stdout.strip()}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real anonymous mosquitto on a free port, for one test."""
    with MosquittoBroker(workdir=tmp_path / "mqtt") as b:
        yield b


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto that requires user `edge` with password `s3cret`."""
    with MosquittoBroker(users={"edge": "s3cret"}, workdir=tmp_path / "mqtt") as b:
        yield b


# Identities of the production broker fixture: clinic gateway id -> its site; junctions.
CLINIC_SITES = {"clinic-a-gw1": "clinic-a", "clinic-b-gw1": "clinic-b"}
JUNCTIONS = ["J1", "J2"]


@pytest.fixture
def production_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """deploy/mosquitto/ run for real: TLS, a client certificate per gateway, the ACL."""
    with MosquittoBroker.with_production_config(tmp_path, JUNCTIONS, CLINIC_SITES) as b:
        yield b


def _sources_hash(*roots: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    for root in roots:
        base = REPO / root
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for f in files:
            digest.update(str(f.relative_to(REPO)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def quick_registry() -> Path:
    """A registry built by `edgeward models build --quick`, shared by every test in the run.

    Cached under .cache/ keyed by the code that makes it, so a re-run skips the ~2 min build.
    Tests must not modify it: copy it (`shutil.copytree`) to tamper or promote.
    """
    key = _sources_hash(
        "models",
        "sim/datasets",
        "sim/fundus",
        "sim/traffic/camera.py",
        "sim/traffic/network.py",
        "sim/traffic/faults.py",
        "shared/preprocess.py",
        "shared/quality_doubt.py",
        "edge/clinic/quality.py",  # with quality_fov.py and pipeline.py: the gate set's code
        "edge/clinic/quality_fov.py",
        "edge/clinic/pipeline.py",
        "shared/counter_input.py",
        "shared/registry",
    )
    path = REPO / ".cache" / f"quick-registry-{key}"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Several pytest processes may want it at once: one builds (into a temp dir, then an atomic
    # rename), the others wait on the lock and reuse it.
    with (REPO / ".cache" / "quick-registry.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / ".complete").exists():
            building = path.with_name(f"{path.name}.building-{os.getpid()}")
            shutil.rmtree(building, ignore_errors=True)
            subprocess.run(
                [
                    str(REPO / ".venv/bin/edgeward"),
                    "models",
                    "build",
                    "--quick",
                    "--registry",
                    str(building),
                ],
                check=True,
            )
            (building / ".complete").write_text("ok\n")
            shutil.rmtree(path, ignore_errors=True)
            building.rename(path)
    return path
