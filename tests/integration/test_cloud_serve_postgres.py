"""The Serve cloud tier on a real PostgreSQL: every grade under load keeps its review case and
its row in the grade log.

The ingress replicas find the database through EDGEWARD_DATABASE_URL (Ray's workers inherit this
process's environment), as a KubeRay deployment does; a second store handle reads back what the
cluster wrote, like another node would.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import pytest

from cloud.flywheel.grade_log_db import DatabasePredictionLog
from cloud.runtime import LocalCloud
from cloud.store import CloudStore
from shared.broker import free_port
from shared.config import CloudConfig
from shared.config.cloud import GraderSettings
from shared.monitoring.prediction_log import pseudonymise
from sim.fundus.generator import generate_sample
from tests.postgres_support import postgres_cluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SCANS = 12
KEY = b"pg-site-key"


def test_concurrent_grades_on_postgres_each_keep_exactly_one_review_case(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = cv2.imencode(".png", generate_sample(3, 0, size=384, defect_rate=0.0).image_bgr)[1]
    with postgres_cluster() as pg:
        url = pg.new_database()
        monkeypatch.setenv("EDGEWARD_DATABASE_URL", url)
        monkeypatch.setenv("EDGEWARD_SITE_KEY", KEY.decode())  # the grade log is on
        config = CloudConfig(
            data_dir=tmp_path / "data",
            registry_dir=quick_registry,
            http_port=free_port(),
            grpc_port=free_port(),
            grader=GraderSettings(
                max_batch_size=4, batch_wait_timeout_s=0.02, prediction_log="grades.sqlite3"
            ),
            review_band=(0.0, 1.0),  # every grade goes to a person: each needs its case
        )
        scan_ids = [f"pg-{uuid.uuid4().hex[:10]}" for _ in range(SCANS)]
        with LocalCloud(
            config,
            num_cpus=2,
            with_bridge=False,
            namespace=f"edgeward-pg-{uuid.uuid4().hex[:8]}",
            insecure_dev=True,  # about the store; keys: test_cloud_ingress_access
        ) as cloud:

            def post(scan_id: str) -> int:
                with httpx.Client(base_url=cloud.http_url, timeout=120) as http:
                    headers = {"Content-Type": "image/png", "X-Scan-Id": scan_id}
                    return http.post(
                        "/v1/grade", content=body.tobytes(), headers=headers
                    ).status_code

            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(post, scan_ids)) == [200] * SCANS
                assert list(pool.map(post, scan_ids)) == [200] * SCANS  # retries: replayed
        store = CloudStore(tmp_path / "elsewhere", url=url)
        try:
            assert store.dialect == "postgresql"
            assert store.count() == SCANS
            cases = store.cases(status=None, limit=1000)
            assert sorted(c.scan_id for c in cases) == sorted(scan_ids)
            assert all(c.heatmap_png for c in cases)  # the heat map went with every case
        finally:
            store.close()
        # every scan's grade in the database's grade log, once (the retries were replayed)
        log = DatabasePredictionLog(url, KEY)
        try:
            rows = log.rows("fundus-grader")
            assert sorted(r.pid for r in rows) == sorted(pseudonymise(s, KEY) for s in scan_ids)
            assert all(r.tier == "cloud" and r.score is not None for r in rows)
        finally:
            log.close()
        assert not (tmp_path / "data" / "cloud.sqlite3").exists()  # nothing went to SQLite
        assert not (tmp_path / "data" / "grades.sqlite3").exists()
