"""The grade log in the cloud's database, for deployments beyond one node.

Replicas on several machines (KubeRay) cannot share one SQLite file: with `EDGEWARD_DATABASE_URL`
set, every grader replica writes its grades, and the review desk its labels, to the same
PostgreSQL database the results and review cases live in (tables from migration 6), and
`edgeward monitor` reads them back from there. Same rules and SQL as the SQLite log
(`shared.monitoring.prediction_log.PredictionStore`); only the connection differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from cloud.store import open_database
from shared.monitoring.prediction_log import PredictionStore


class DatabasePredictionLog(PredictionStore):
    """A prediction log on an SQLAlchemy database URL (PostgreSQL, or SQLite for one node)."""

    def __init__(self, url: str, key: bytes) -> None:
        engine, _ = open_database(url)
        super().__init__(key, engine.url.render_as_string(hide_password=True))
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(text(sql), params).rowcount

    def _query(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
