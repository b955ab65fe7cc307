"""Bridge replicas as worker processes for `bench mqtt`, the shape Serve runs them in.

Serve gives each bridge replica its own process; as threads of the bench process the replicas
shared one GIL, so adding one added no capacity. Each worker here runs the real `BridgeClient` and
`BridgeCore` on the shared subscription; its batches come to the bench process over a pipe, one
blocking round trip per batch carrying the raw messages (as a Serve handle call to the coordinator
would), and the bench process records them on arrival. A control pipe pauses and resumes the
replica (a persistent session, so the broker queues a backlog meanwhile) and collects its counts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.suites.worker_pipe import answer
from cloud.bridge_client import BridgeClient
from cloud.bridge_core import AggregateBatch, BridgeCore, Outgoing
from cloud.store import SqliteStore
from shared.config.base import MqttSettings
from shared.errors import EdgewardError

READY_TIMEOUT_S = 60.0
# (message_id, sent_at) of each aggregate in a batch, as the bench records them
Arrived = list[tuple[str, float]]


def _replica(
    settings_json: str, client_id: str, scratch: str, ctrl: Connection, data: Connection
) -> None:
    settings = MqttSettings.model_validate_json(settings_json)

    def forward_batch(batch: AggregateBatch) -> Outgoing:
        data.send(([(t, p) for t, p, _ in batch], [(a.message_id, a.sent_at) for *_, a in batch]))
        data.recv()
        return []

    core = BridgeCore(
        SqliteStore(Path(scratch) / client_id), lambda *_: None, forward_batch=forward_batch
    )
    client: BridgeClient | None = None
    ctrl.send(("ready", None))
    try:
        while (cmd := ctrl.recv()) != "close":
            if client is not None:  # "pause", or a "resume" while running: start over
                client.stop()
                client = None
            if cmd == "resume":
                client = BridgeClient(settings, client_id, core)
                client.start()
                ctrl.send(("subscribed", client.subscribed.wait(READY_TIMEOUT_S)))
            else:
                ctrl.send(("paused", None))
    except Exception as exc:  # reported to the bench process, which raises it
        ctrl.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    finally:
        if client is not None:
            client.stop()
        data.send(None)
    ctrl.send(("counts", core.counts))


class ReplicaProcesses:
    """Bridge replicas, a process each; `record` gets every batch they hand over."""

    def __init__(
        self,
        settings: MqttSettings,
        client_ids: list[str],
        scratch: Path,
        record: Callable[[Arrived], None],
    ) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._record = record
        self._ctrl: list[Connection] = []
        self._procs: list[Any] = []
        self._readers: list[threading.Thread] = []
        self.calls = 0
        self._lock = threading.Lock()
        for client_id in client_ids:
            ctrl, ctrl_child = ctx.Pipe()
            data, data_child = ctx.Pipe()
            proc = ctx.Process(
                target=_replica,
                args=(settings.model_dump_json(), client_id, str(scratch), ctrl_child, data_child),
                daemon=True,
            )
            proc.start()
            reader = threading.Thread(target=self._read, args=(data,), daemon=True)
            reader.start()
            self._ctrl.append(ctrl)
            self._procs.append(proc)
            self._readers.append(reader)
        for ctrl in self._ctrl:
            self._reply(ctrl, "ready")

    def _read(self, data: Connection) -> None:
        """The coordinator's side of each replica's hand-over: record, then answer."""
        with contextlib.suppress(EOFError, OSError):
            while (msg := data.recv()) is not None:
                self._record(msg[1])
                with self._lock:
                    self.calls += 1
                data.send(len(msg[1]))

    def _reply(self, ctrl: Connection, expected: str) -> Any:
        return answer(ctrl, "a bridge replica process", READY_TIMEOUT_S, expected)

    @property
    def pids(self) -> list[int]:
        return [int(proc.pid) for proc in self._procs]

    def check(self) -> None:
        """Raise, naming it, if a replica process has ended while the bench still needs it."""
        for i, proc in enumerate(self._procs):
            if not proc.is_alive():
                raise EdgewardError(
                    f"mqtt bench: bridge replica process {i} (pid {proc.pid}) exited with code "
                    f"{proc.exitcode}; the broker keeps its share queued for its session"
                )

    def resume(self) -> bool:
        """Connect every replica (same session ids); True when each SUBSCRIBE was acknowledged."""
        for ctrl in self._ctrl:
            ctrl.send("resume")
        return all([self._reply(ctrl, "subscribed") for ctrl in self._ctrl])

    def pause(self) -> None:
        for ctrl in self._ctrl:
            ctrl.send("pause")
        for ctrl in self._ctrl:
            self._reply(ctrl, "paused")

    def close(self) -> list[dict[str, int]]:
        """Stop the replicas; each one's `BridgeCore` counts (empty for one that died)."""
        counts: list[dict[str, int]] = []
        for ctrl in self._ctrl:
            with contextlib.suppress(OSError):  # a replica that already died
                ctrl.send("close")
        for ctrl in self._ctrl:
            try:
                counts.append(dict(self._reply(ctrl, "counts")))
            except (EdgewardError, EOFError, OSError):
                counts.append({})
        for proc, reader in zip(self._procs, self._readers, strict=True):
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
            reader.join(5)
        return counts
