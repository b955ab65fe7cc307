"""Synthetic review cases with real PNG pixels, for the desk's tests and benchmark."""

from __future__ import annotations

import time

import cv2
import numpy as np

from cloud.store import CloudStore, ReviewCase
from shared.proto import edgeward_pb2 as pb


def fundus_png(seed: int, size: int = 256) -> bytes:
    """A dark disc with a bright optic disc: enough to see that the page shows the scan."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.uint8)
    c = size // 2
    cv2.circle(image, (c, c), int(size * 0.45), (40, 70, 160), -1)
    cv2.circle(image, (int(c * 1.4), c), size // 12, (170, 220, 250), -1)
    for _ in range(6):  # vessels
        end = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        cv2.line(image, (int(c * 1.4), c), end, (30, 40, 120), 2)
    ok, png = cv2.imencode(".png", image)
    assert ok
    return bytes(png)


def heatmap_png(size: int = 128) -> bytes:
    ramp = np.tile(np.linspace(0, 255, size, dtype=np.uint8), (size, 1))
    ok, png = cv2.imencode(".png", cv2.applyColorMap(ramp, cv2.COLORMAP_JET))
    assert ok
    return bytes(png)


def sample_case(
    scan_id: str,
    *,
    edge_verdict: str = "",
    cloud_verdict: str = "refer",
    referable_probability: float = 0.5,
    waited_s: float = 0.0,
    image: bytes | None = None,
    heatmap: bytes | None = None,
) -> ReviewCase:
    disagree = edge_verdict in ("refer", "no_immediate_concern") and edge_verdict != cloud_verdict
    reason = f"uncertain: referable probability {referable_probability:.2f} is in the review band"
    if disagree:
        reason = f"tiers disagree: edge said {edge_verdict}, cloud grade says {cloud_verdict}"
    return ReviewCase(
        scan_id=scan_id,
        site_id="clinic-a",
        reason=reason,
        edge_verdict=edge_verdict,
        cloud_verdict=cloud_verdict,
        referable_probability=referable_probability,
        confidence=max(referable_probability, 1 - referable_probability),
        model_version="fundus-dr:7",
        image=image if image is not None else fundus_png(sum(scan_id.encode())),
        content_type="image/png",
        heatmap_png=heatmap if heatmap is not None else heatmap_png(),
        created_at=time.time() - waited_s,
    )


def fill_queue(store: CloudStore, n: int) -> list[ReviewCase]:
    """`n` open cases of mixed urgency (one image shared: the listing never reads it)."""
    image, heat = fundus_png(0), heatmap_png()
    cases = []
    for i in range(n):
        verdict = "refer" if i % 2 else "no_immediate_concern"
        cases.append(
            store.enqueue(
                sample_case(
                    f"bench-{i:05d}",
                    edge_verdict=("refer" if i % 7 == 0 else verdict),
                    cloud_verdict=verdict,
                    referable_probability=0.3 + 0.4 * ((i * 37) % 100) / 100,
                    waited_s=float(n - i),
                    image=image,
                    heatmap=heat,
                )
            )
        )
    return cases


def record_with_result(store: CloudStore, case: ReviewCase) -> ReviewCase:
    """Store the case with a GradeResult (grade probabilities, a hot region), as grading does."""
    p = case.referable_probability
    result = pb.GradeResult(
        scan_id=case.scan_id,
        grade_probabilities=[(1 - p) * 0.7, (1 - p) * 0.3, p * 0.6, p * 0.3, p * 0.1],
        referable_probability=p,
        confidence=case.confidence,
        model_version=case.model_version,
        verdict="review",
        needs_review=True,
        review_reason=case.reason,
        regions=[pb.Region(x=150, y=110, width=40, height=30, score=0.42)],
    )
    store.record(result, case.site_id, case)
    return store.case(case.case_id)
