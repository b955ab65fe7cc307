"""Where the gateway's pictures come from: the twin's renderer, or real cameras via OpenCV."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[np.uint8]


class FrameSource(Protocol):
    """The latest frame per approach; None where a frame was dropped."""

    def frames(self) -> dict[str, Frame | None]: ...


class VideoCaptureSource:
    """One OpenCV capture per approach (RTSP URL, device path or video file)."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._urls = dict(urls)
        self._captures = {a: cv2.VideoCapture(u) for a, u in self._urls.items()}

    def frames(self) -> dict[str, Frame | None]:
        out: dict[str, Frame | None] = {}
        for approach, cap in self._captures.items():
            ok, frame = cap.read() if cap.isOpened() else (False, None)
            if not ok and not cap.isOpened():
                cap.open(self._urls[approach])  # reconnect once per interval, never block long
            out[approach] = np.asarray(frame, dtype=np.uint8) if ok else None
        return out

    def close(self) -> None:
        for cap in self._captures.values():
            cap.release()
