"""Fixtures the cloud-store unit tests share: the store on both databases it supports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store import CloudStore
from tests.postgres_support import PgCluster, postgres_cluster


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CloudStore]:
    """The cloud store on both databases it supports (PostgreSQL: a fresh database)."""
    url = request.getfixturevalue("pg").new_database() if request.param == "postgresql" else None
    s = CloudStore(tmp_path, url=url)
    yield s
    s.close()
