"""`edgeward cloud up` as an operator runs it: a process that systemd or `timeout` stops with
SIGTERM must shut down cleanly and leave no Ray node folder behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.broker import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]

READY_S = 240.0


def _ray_dirs() -> set[Path]:
    return set(Path("/tmp").glob("edgeward-ray-*"))


def _run_and_stop(registry: Path, tmp_path: Path, *, when: str) -> str:
    """Start `edgeward cloud up`, SIGTERM it at `when` ("serving": it said so; "deploying": it
    said its Ray node is up and the app deploying), and return its output after checking that
    it stopped cleanly and left no Ray folder."""
    config = tmp_path / "cloud.yaml"
    config.write_text(
        f"role: cloud\ndata_dir: {tmp_path / 'data'}\nregistry_dir: {registry}\n"
        f"http_port: {free_port()}\ngrpc_port: {free_port()}\n"
    )
    before = _ray_dirs()
    command = [sys.executable, "-m", "shared.cli", "cloud", "up", "--config", str(config)]
    proc = subprocess.Popen(
        [*command, "--no-bridge", "--insecure-dev", "--num-cpus", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready, deploying = threading.Event(), threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "deploying the app" in line:
                deploying.set()
            if "serving on" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if when == "serving":
            assert ready.wait(READY_S), "cloud up never said it was serving:\n" + "".join(lines)
        else:  # ray.init has returned: Serve is starting, the app deploying (seconds)
            assert deploying.wait(READY_S), "cloud up never said Ray was up:\n" + "".join(lines)
            assert not ready.is_set(), "the app deployed before the stop: nothing was tested"
        started = _ray_dirs() - before
        assert started, "cloud up started no Ray node folder under /tmp"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert rc == 0, output
    assert "shutting down" in output
    assert "SIGTERM received" not in output  # Ray's own handler did not take the signal
    deadline = time.monotonic() + 10
    while started & _ray_dirs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not started & _ray_dirs(), "the Ray node folder was left behind"
    return output


def test_sigterm_stops_cloud_up_cleanly_and_removes_its_ray_folder(quick_registry, tmp_path):
    _run_and_stop(quick_registry, tmp_path, when="serving")


def test_sigterm_while_the_app_deploys_still_stops_cleanly(quick_registry, tmp_path):
    # `docker stop` or a deleted pod right after the start: Ray's handler took it (rc 15)
    _run_and_stop(quick_registry, tmp_path, when="deploying")
