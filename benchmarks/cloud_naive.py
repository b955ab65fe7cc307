"""The naive peer `bench cloud` compares Serve with: FastAPI calling PyTorch per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.broker import free_port
from shared.errors import EdgewardError


def naive_app(core: Any) -> Any:
    """FastAPI calling the PyTorch grader per request: what one writes without a serving layer."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    async def grade(request: Request) -> JSONResponse:
        data = await request.body()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            return JSONResponse({"error": "not an image"}, status_code=400)
        g = core.grade([img], True)[0]  # blocks the event loop: the naive part
        return JSONResponse(
            {
                "scan_id": request.headers.get("x-scan-id", ""),
                "probabilities": [float(p) for p in g.probabilities],
            }
        )

    # Real classes, not the strings `from __future__ import annotations` leaves: FastAPI reads
    # them to know what to inject.
    grade.__annotations__ = {"request": Request, "return": JSONResponse}
    app.add_api_route("/v1/grade", grade, methods=["POST"])
    return app


@contextmanager
def naive_server(registry: Path) -> Iterator[str]:
    """The peer on a free loopback port, its grade URL while the block runs.

    The PyTorch-eager grader (with pytorch-grad-cam), as one writes it naively.
    """
    import uvicorn

    from cloud.grader import load_core

    core = load_core(registry, "", "fundus-grader", runtime="torch")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(naive_app(core), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise EdgewardError(f"uvicorn did not start on port {port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1/grade"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        core.close()
