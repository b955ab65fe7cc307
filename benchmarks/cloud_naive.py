"""The naive peer `bench cloud` compares Serve with: FastAPI calling PyTorch per request."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


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
