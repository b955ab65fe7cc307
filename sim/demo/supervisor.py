"""Start, watch and stop the demo's processes; Ctrl-C stops everything that was started."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from shared.errors import EdgewardError

log = logging.getLogger(__name__)


def edgeward_cmd(*args: str) -> list[str]:
    """The `edgeward` CLI of this interpreter, so children use the same venv."""
    return [sys.executable, "-m", "shared.cli", *args]


class Process:
    """A child in its own process group, so stopping it also stops what it started (Ray, SUMO)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_start = 0

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.log_start = out.tell()  # the log is appended across restarts; this run's part
        self.proc = subprocess.Popen(
            self.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.debug("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(self.argv))
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def output(self) -> str:
        """What this run of the process has logged so far (not earlier runs')."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")
        return ""

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Whatever the child left in its group (workers, raylets) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)


class Supervisor:
    """Owns every child process of the demo; leaving the `with` block stops them all."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.children: dict[str, Process] = {}

    def start(self, name: str, argv: list[str]) -> Process:
        proc = Process(name, argv, self.logs / f"{name}.log", self.env).start()
        self.children[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.children.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def http_json(
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> object:
    """GET (or POST when `data`) a JSON endpoint."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


# How a server says a port it was given is taken: grpcio (Ray Serve's gRPC proxy, our front)
# and uvicorn (Serve's HTTP proxy). Not bare "Address already in use": Ray logs and retries that
# for its own internal ports.
BIND_FAILURES = ("Failed to bind to address", "error while attempting to bind on address")


class PortTakenError(EdgewardError):
    """A port was free when picked and taken by someone else before the server bound it."""


def _check_starting(proc: Process, what: str) -> None:
    lines = proc.output().splitlines()
    taken = next((line for line in lines if any(b in line for b in BIND_FAILURES)), "")
    if taken:
        raise PortTakenError(f"{what} could not bind its port: {taken.strip()}")
    if not proc.alive:
        raise EdgewardError(f"{what} exited during start-up; its log ends:\n{proc.tail()}")


def start_with_fresh_ports(
    launch: Callable[[int], Process], ready: Callable[[Process], None], what: str, attempts: int = 3
) -> Process:
    """`launch(attempt)` then `ready(proc)`; when the process could not bind a port (free when
    picked, taken since: seen on a loaded host), stop it and launch again, where `launch`
    picks fresh ports for attempts after the first."""
    for attempt in range(1, attempts + 1):
        proc: Process | None = None
        try:
            proc = launch(attempt)
            ready(proc)
            return proc
        except PortTakenError as exc:
            if proc is not None:
                proc.stop()
            if attempt == attempts:
                raise EdgewardError(f"{exc}; gave up after {attempts} sets of ports") from None
            log.warning("%s; retrying with fresh ports (%d/%d)", exc, attempt, attempts)
    raise AssertionError("unreachable")


def wait_output(proc: Process, text: str, timeout: float, what: str) -> None:
    """Wait until the process prints `text` (its own word that it serves: a port that merely
    answers may be someone else's), failing early if it died or could not bind its port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_starting(proc, what)
        if text in proc.output():
            return
        time.sleep(0.3)
    raise EdgewardError(f"{what} did not say {text!r} after {timeout:.0f}s:\n{proc.tail()}")


def wait_http(url: str, proc: Process, timeout: float, what: str) -> None:
    """Wait until `url` answers 2xx, failing early (with its log) if the process died or
    could not bind its port (PortTakenError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_starting(proc, what)
        with (
            contextlib.suppress(urllib.error.URLError, OSError, ValueError),
            urllib.request.urlopen(url, timeout=2) as resp,
        ):
            if resp.status < 300:
                return
        time.sleep(0.5)
    raise EdgewardError(f"{what} not ready at {url} after {timeout:.0f}s; log:\n{proc.tail()}")
