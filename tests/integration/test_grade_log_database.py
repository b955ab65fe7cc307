"""The grade log in the cloud's database (PostgreSQL beyond one node), same rules as the SQLite
file: one row per scan, version and arm, pseudonymised ids, reviewer labels joined; replicas on
one database share one log, and `edgeward monitor --database` judges drift from it."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cloud.flywheel.grade_log import open_grade_log
from cloud.flywheel.grade_log_db import DatabasePredictionLog
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog, PredictionStore, pseudonymise
from sim.flywheel.scenarios import feed
from tests.postgres_support import PgCluster, postgres_cluster

KEY = b"site-key"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite-file", "sqlite-url", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionStore]:
    """The log on every store it runs on: the gateway's file, and the cloud's database."""
    if request.param == "sqlite-file":
        opened: PredictionStore = PredictionLog(tmp_path / "log.db", KEY)
    elif request.param == "sqlite-url":
        opened = DatabasePredictionLog(f"sqlite:///{tmp_path / 'cloud.sqlite3'}", KEY)
    else:
        opened = DatabasePredictionLog(request.getfixturevalue("pg").new_database(), KEY)
    yield opened
    opened.close()


def _record(log: PredictionStore, scan_id: str, confidence: float, **extra: Any) -> bool:
    """One cloud grade of model m:1."""
    return log.record(
        scan_id, tier="cloud", model="m", model_version="m:1", confidence=confidence,
        features={"brightness": 1.0}, **extra,
    )  # fmt: skip


def test_a_scan_is_logged_once_per_version_and_arm(log: PredictionStore) -> None:
    assert _record(log, "scan-1", 0.9, prediction=1)
    assert not _record(log, "scan-1", 0.2, prediction=0)
    assert _record(log, "scan-1", 0.3, arm="challenger")
    rows = log.rows("m")
    assert [(r.pid, r.arm, r.confidence) for r in rows] == [
        (pseudonymise("scan-1", KEY), "champion", 0.9),
        (pseudonymise("scan-1", KEY), "challenger", 0.3),
    ]
    assert rows[0].features == {"brightness": 1.0} and log.models() == ["m"]


def test_labels_join_every_arm_and_a_later_label_replaces_the_first(log: PredictionStore) -> None:
    for i in range(3):
        _record(log, f"s{i}", 0.8, at=100.0 + i)
    log.add_label("s1", 1)
    log.add_label("s1", 0, source="second-opinion")
    log.add_label("s2", 1)
    labelled = log.rows("m", labelled_only=True)
    assert [(r.pid, r.label) for r in labelled] == [
        (pseudonymise("s1", KEY), 0),
        (pseudonymise("s2", KEY), 1),
    ]
    assert [r.at for r in log.rows("m", last=2)] == [101.0, 102.0]  # the newest two, in order
    assert log.rows("m", model_version="m:2") == []


def test_a_confidence_outside_0_1_is_refused_on_every_store(log: PredictionStore) -> None:
    with pytest.raises(EdgewardError, match=r"confidence 1\.5 .* outside 0\.\.1"):
        _record(log, "s", 1.5)
    assert log.rows("m") == []


def test_the_database_log_has_the_gateway_logs_columns(tmp_path: Path) -> None:
    """Migration 6 copies the SQLite log's schema: a column added to one needs the other."""
    PredictionLog(tmp_path / "gateway.db", KEY).close()
    DatabasePredictionLog(f"sqlite:///{tmp_path / 'cloud.sqlite3'}", KEY).close()
    for table in ("predictions", "labels"):
        columns = [
            [row[1:3] for row in sqlite3.connect(db).execute(f"PRAGMA table_info({table})")]
            for db in (tmp_path / "gateway.db", tmp_path / "cloud.sqlite3")
        ]
        assert columns[0] == columns[1], table


def test_replicas_on_one_postgresql_database_write_one_log(pg: PgCluster) -> None:
    url = pg.new_database()
    replicas = [DatabasePredictionLog(url, KEY) for _ in range(2)]
    scans = [f"scan-{i}" for i in range(40)]
    new: list[bool] = []

    def grade_all(replica: DatabasePredictionLog) -> None:  # both see every scan (a retry storm)
        for scan in scans:
            new.append(_record(replica, scan, 0.7))

    threads = [threading.Thread(target=grade_all, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert new.count(True) == len(scans)  # each scan logged once, by whichever came first
    replicas[0].add_label("scan-3", 1)
    rows = replicas[1].rows("m")
    assert sorted(r.pid for r in rows) == sorted(pseudonymise(s, KEY) for s in scans)
    assert [r.label for r in rows if r.pid == pseudonymise("scan-3", KEY)] == [1]
    with replicas[0].engine.connect() as conn:  # only keyed hashes reach the database
        stored = conn.execute(text("SELECT pid FROM predictions")).scalars().all()
    assert not any(s.startswith("scan-") for s in stored)
    for r in replicas:
        r.close()


def test_the_cloud_logs_grades_to_its_database_when_the_url_is_set(
    pg: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEWARD_SITE_KEY", KEY.decode())
    monkeypatch.setenv("EDGEWARD_DATABASE_URL", pg.new_database())
    plog = open_grade_log(tmp_path / "grades.sqlite3")
    assert isinstance(plog, DatabasePredictionLog)
    assert plog.where.startswith("postgresql+psycopg://")
    plog.close()
    assert not (tmp_path / "grades.sqlite3").exists()
    monkeypatch.delenv("EDGEWARD_DATABASE_URL")
    plog = open_grade_log(tmp_path / "grades.sqlite3")
    assert isinstance(plog, PredictionLog) and (tmp_path / "grades.sqlite3").exists()


def _monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(REPO / ".venv/bin/edgeward"), "monitor", "report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def test_monitor_judges_drift_from_the_grade_log_in_the_database(
    pg: PgCluster, quick_registry: Path, tmp_path: Path
) -> None:
    url = pg.new_database()
    log = DatabasePredictionLog(url, KEY)
    assert feed(log, quick_registry, "fundus-triage", "new-camera", n=120, seed=202) == 120
    log.close()
    env = {"PATH": "/usr/bin:/bin", "EDGEWARD_DATABASE_URL": url, "EDGEWARD_SITE_KEY": "k"}
    args = ("--registry", str(quick_registry), "--model", "fundus-triage")
    done = _monitor(env, "--database", *args, "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert "fundus-triage: DRIFT over the last 120" in done.stdout
    assert (tmp_path / "r" / "index.html").exists()
    del env["EDGEWARD_DATABASE_URL"]
    done = _monitor(env, "--database", *args, "--out", str(tmp_path / "r2"))
    assert done.returncode == 2
    assert "EDGEWARD_DATABASE_URL is not set" in done.stderr and "Traceback" not in done.stderr
    done = _monitor(env, *args, "--out", str(tmp_path / "r3"))
    assert done.returncode == 2 and "--log FILE" in done.stderr and "--database" in done.stderr
