"""The desk served on its own by uvicorn in a thread, over a store (no Ray): for the browser
tests, the benchmark and a desk beside the demo."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from cloud.review_desk import MOUNT_PATH, mount_desk
from cloud.review_desk.desk import LabelSink, ReviewDesk
from cloud.store import CloudStore
from shared.errors import EdgewardError


class DeskServer:
    """`with DeskServer(store) as srv:` serves the desk at `srv.url` until the block ends."""

    def __init__(
        self,
        store: CloudStore,
        host: str = "127.0.0.1",
        port: int = 0,
        on_label: LabelSink | None = None,
    ) -> None:
        self.app = FastAPI()
        self.desk: ReviewDesk = mount_desk(self.app, store, on_label)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))  # port 0: a free one, known before the server starts
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}{MOUNT_PATH}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout_s: float = 10.0) -> DeskServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise EdgewardError(
                    f"review desk: uvicorn did not start on port {self.port} within {timeout_s}s"
                )
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> DeskServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
