"""The prediction log: every edge verdict and cloud grade, with its feature summary and, later,
the reviewer's label. SQLite, stdlib only, so a gateway keeps one too; the cloud keeps the same
log in its database beyond one node (cloud/flywheel/grade_log_db.py, on `PredictionStore`).

Scan ids are pseudonymised with a keyed hash before they are stored; the same key on the cloud
side maps a reviewer's label back to the logged prediction without ever storing the raw id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import EdgewardError

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pid TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    at REAL NOT NULL,
    site TEXT NOT NULL DEFAULT '',
    verdict TEXT NOT NULL DEFAULT '',
    confidence REAL NOT NULL,
    score REAL,
    prediction INTEGER,
    arm TEXT NOT NULL DEFAULT 'champion',
    latency_ms REAL,
    error TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    features TEXT NOT NULL DEFAULT '{}',
    UNIQUE (pid, model_version, arm)
);
CREATE INDEX IF NOT EXISTS predictions_model ON predictions (model, seq);
CREATE TABLE IF NOT EXISTS labels (
    pid TEXT PRIMARY KEY,
    label INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT 'reviewer',
    at REAL NOT NULL
);
"""


def pseudonymise(scan_id: str, key: bytes) -> str:
    """A stable keyed hash of a scan id (HMAC-SHA256, 24 hex characters)."""
    if not key:
        raise EdgewardError("pseudonymisation key is empty; set EDGEWARD_SITE_KEY")
    return hmac.new(key, scan_id.encode(), hashlib.sha256).hexdigest()[:24]


JSON_FIELDS = ("attributes", "features")


@dataclass(frozen=True)
class LoggedPrediction:
    """One row of the log, label joined in when a reviewer gave one."""

    seq: int
    pid: str
    tier: str
    model: str
    model_version: str
    at: float
    site: str
    verdict: str
    confidence: float
    score: float | None
    prediction: int | None
    arm: str
    latency_ms: float | None
    error: str
    attributes: dict[str, str] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    label: int | None = None


# Every backend speaks this SQL (SQLite's sqlite3 and SQLAlchemy both bind `:name`).
INSERT_PREDICTION = (
    "INSERT INTO predictions (pid, tier, model, model_version, at, site, verdict, confidence, "
    "score, prediction, arm, latency_ms, error, attributes, features) VALUES (:pid, :tier, "
    ":model, :model_version, :at, :site, :verdict, :confidence, :score, :prediction, :arm, "
    ":latency_ms, :error, :attributes, :features) ON CONFLICT (pid, model_version, arm) DO NOTHING"
)
UPSERT_LABEL = (
    "INSERT INTO labels (pid, label, source, at) VALUES (:pid, :label, :source, :at) "
    "ON CONFLICT (pid) DO UPDATE SET label = excluded.label, source = excluded.source, "
    "at = excluded.at"
)
SELECT_MODELS = "SELECT DISTINCT model FROM predictions"


class PredictionStore(ABC):
    """A prediction log on some SQL database: this module's SQLite file (`PredictionLog`), or the
    cloud's database (`cloud/flywheel/grade_log_db.py`). The rules live here; a backend only
    runs the SQL. Safe to share between threads."""

    def __init__(self, key: bytes, where: str) -> None:
        self.key = key
        self.where = where  # for messages: the file, or the database URL without its password

    @abstractmethod
    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        """Run one write; the number of rows it changed."""

    @abstractmethod
    def _query(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]: ...

    @abstractmethod
    def close(self) -> None: ...

    def record(
        self,
        scan_id: str,
        *,
        tier: str,
        model: str,
        model_version: str,
        confidence: float,
        features: Mapping[str, float],
        verdict: str = "",
        score: float | None = None,
        prediction: int | None = None,
        site: str = "",
        arm: str = "champion",
        latency_ms: float | None = None,
        error: str = "",
        attributes: Mapping[str, str] | None = None,
        at: float | None = None,
    ) -> bool:
        """Log one prediction; False if this scan was already logged for this version and arm."""
        if not 0.0 <= confidence <= 1.0:
            raise EdgewardError(
                f"prediction log: confidence {confidence!r} for model {model_version} is outside "
                "0..1; log the calibrated probability behind the verdict"
            )
        row = {
            "pid": pseudonymise(scan_id, self.key), "tier": tier, "model": model,
            "model_version": model_version, "at": time.time() if at is None else at,
            "site": site, "verdict": verdict, "confidence": float(confidence),
            "score": None if score is None else float(score), "prediction": prediction,
            "arm": arm, "latency_ms": latency_ms, "error": error,
            "attributes": json.dumps(dict(attributes or {}), sort_keys=True),
            "features": json.dumps({k: float(v) for k, v in features.items()}, sort_keys=True),
        }  # fmt: skip
        return self._execute(INSERT_PREDICTION, row) == 1

    def add_label(self, scan_id: str, label: int, source: str = "reviewer") -> None:
        """The confirmed answer for a scan (e.g. 1 = referable); a later label replaces it."""
        row = {"pid": pseudonymise(scan_id, self.key), "label": int(label), "source": source,
               "at": time.time()}  # fmt: skip
        self._execute(UPSERT_LABEL, row)

    def rows(
        self,
        model: str,
        *,
        arm: str | None = None,
        model_version: str | None = None,
        last: int | None = None,
        labelled_only: bool = False,
    ) -> list[LoggedPrediction]:
        """This model's predictions in log order (the newest `last` of them if given)."""
        where, args = ["p.model = :model"], {"model": model}
        if arm is not None:
            where.append("p.arm = :arm")
            args["arm"] = arm
        if model_version is not None:
            where.append("p.model_version = :model_version")
            args["model_version"] = model_version
        if labelled_only:
            where.append("l.label IS NOT NULL")
        sql = (
            "SELECT p.seq, p.pid, p.tier, p.model, p.model_version, p.at, p.site, p.verdict, "
            "p.confidence, p.score, p.prediction, p.arm, p.latency_ms, p.error, p.attributes, "
            "p.features, l.label FROM predictions p LEFT JOIN labels l ON l.pid = p.pid "
            f"WHERE {' AND '.join(where)} ORDER BY p.seq DESC"
        )
        if last is not None:
            sql += f" LIMIT {int(last)}"
        names = [f for f in LoggedPrediction.__dataclass_fields__ if f not in JSON_FIELDS]
        out = []
        for r in reversed(self._query(sql, args)):
            values = dict(zip(names[:14], r[:14], strict=True))
            values["label"] = r[16]
            out.append(
                LoggedPrediction(**values, attributes=json.loads(r[14]), features=json.loads(r[15]))
            )
        return out

    def models(self) -> list[str]:
        return [r[0] for r in self._query(SELECT_MODELS, {})]


class PredictionLog(PredictionStore):
    """The log in an SQLite file (stdlib only, so a gateway keeps one too)."""

    def __init__(self, path: Path | str, key: bytes) -> None:
        super().__init__(key, str(path))
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def _query(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())


def feature_matrix(rows: Sequence[LoggedPrediction], name: str) -> np.ndarray:
    """One logged feature (or `confidence`) over the rows that have it."""
    if name == "confidence":
        return np.array([r.confidence for r in rows], dtype=np.float64)
    return np.array([r.features[name] for r in rows if name in r.features], dtype=np.float64)
