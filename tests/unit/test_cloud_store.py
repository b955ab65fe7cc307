"""The cloud's records on SQLite and on a real PostgreSQL, same tests: one result per scan,
review cases written with their result, reviewer labels, nodes, numbered migrations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cloud.store import (
    CloudStore,
    DecisionConflictError,
    DecisionError,
    ReviewCase,
    StoreConfigError,
    UnknownCaseError,
)
from cloud.store_migrations import MIGRATIONS
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb
from tests.postgres_support import PgCluster, postgres_cluster

StoreFactory = Callable[[], CloudStore]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one fresh database (each call: another replica's connection)."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg").new_database()
    opened: list[CloudStore] = []

    def factory() -> CloudStore:
        opened.append(CloudStore(tmp_path, url=url))
        return opened[-1]

    yield factory
    for store in opened:
        store.close()


def _result(scan_id: str, request_id: str, p: float = 0.7) -> pb.GradeResult:
    return pb.GradeResult(
        scan_id=scan_id,
        referable_probability=p,
        model_version="fundus-grader:1",
        verdict="refer",
        request_id=request_id,
    )


def _case(scan_id: str = "scan-1") -> ReviewCase:
    return ReviewCase(
        scan_id=scan_id,
        site_id="site-a",
        reason="uncertain",
        edge_verdict="no_immediate_concern",
        cloud_verdict="refer",
        referable_probability=0.55,
        confidence=0.55,
        model_version="fundus-grader:1",
        image=b"png-bytes",
        content_type="image/png",
        heatmap_png=b"heat",
    )


def test_second_result_for_a_scan_returns_the_first_and_adds_no_record(open_store):
    store = open_store()
    first, created = store.put_if_absent(_result("scan-1", "req-a", 0.7), "site-a")
    again, created_again = store.put_if_absent(_result("scan-1", "req-b", 0.1), "site-a")
    assert created and not created_again
    assert again == first and again.request_id == "req-a"
    assert store.count() == 1


def test_concurrent_writers_of_one_scan_leave_one_record(open_store):
    stores = [open_store() for _ in range(4)]  # like several ingress replicas
    winners: list[str] = []

    def write(i: int) -> None:
        stored, _ = stores[i].put_if_absent(_result("scan-x", f"req-{i}"), "s")
        winners.append(stored.request_id)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(winners)) == 1
    assert stores[0].count() == 1


def test_results_survive_a_restart(open_store):
    first = open_store()
    first.put_if_absent(_result("scan-1", "r"), "s")
    first.close()
    reopened = open_store().get("scan-1")
    assert reopened is not None and reopened.verdict == "refer"


def test_review_case_round_trip_stores_the_label_for_retraining(open_store):
    store = open_store()
    case = store.enqueue(_case())
    assert store.enqueue(_case()).case_id == case.case_id  # one case per scan
    assert [c.case_id for c in store.cases("open")] == [case.case_id]
    decided = store.decide(case.case_id, "grade3", "dr-who", "haemorrhages")
    assert decided.status == "decided" and decided.label == "grade3"
    assert store.cases("open") == []
    assert store.labels()[0]["label"] == "grade3"
    assert store.case(case.case_id).image == b"png-bytes"


def test_bad_decisions_are_refused_with_reasons(open_store):
    store = open_store()
    case = store.enqueue(_case())
    with pytest.raises(DecisionError, match="label 'grade9' is not one of"):
        store.decide(case.case_id, "grade9", "dr")
    with pytest.raises(DecisionError, match="reviewer is empty"):
        store.decide(case.case_id, "grade1", " ")
    with pytest.raises(UnknownCaseError, match="does not exist"):
        store.decide("nope", "grade1", "dr")
    store.decide(case.case_id, "grade1", "dr")
    with pytest.raises(DecisionConflictError, match="already decided as 'grade1'"):
        store.decide(case.case_id, "grade4", "dr2")


def test_node_table_keeps_the_latest_state(open_store):
    store = open_store()
    store.upsert("gw-1", kind="clinic", state="online", detail="", outbox_depth=0, message_id="m1")
    store.upsert(
        "gw-1", kind="clinic", state="offline", detail="will", outbox_depth=0, message_id="m2"
    )
    nodes = store.nodes()
    assert len(nodes) == 1 and nodes[0]["state"] == "offline"


def test_result_and_its_review_case_commit_together_or_not_at_all(open_store, monkeypatch):
    store = open_store()

    def crash(*_: object) -> None:
        raise RuntimeError("replica died between the result and its case")

    with monkeypatch.context() as m:
        m.setattr(CloudStore, "_insert_case", staticmethod(crash))
        with pytest.raises(RuntimeError, match="replica died"):
            store.record(_result("scan-1", "req-a"), "site-a", _case("scan-1"))
    assert store.get("scan-1") is None  # no needs_review result without its case
    assert store.cases(status=None) == []
    stored, created = store.record(_result("scan-1", "req-b"), "site-a", _case("scan-1"))
    assert created and stored.request_id == "req-b"  # the retry graded and stored both
    assert [c.scan_id for c in store.cases()] == ["scan-1"]


def test_replicas_racing_on_the_same_scans_leave_exactly_one_case_per_result(open_store):
    replicas = [open_store() for _ in range(2)]
    scans = [f"scan-{i}" for i in range(40)]
    errors: list[BaseException] = []

    def write(store: CloudStore, tag: str) -> None:
        try:
            for scan in scans:
                store.record(_result(scan, f"{tag}-{scan}"), "s", _case(scan))
        except BaseException as exc:  # pragma: no cover - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r, f"r{i}")) for i, r in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert replicas[0].count() == len(scans)
    cases = replicas[1].cases(status=None, limit=1000)
    assert sorted(c.scan_id for c in cases) == sorted(scans)


def test_migrations_are_numbered_applied_once_and_recorded(open_store):
    first = open_store()
    assert first.migrations_applied == [m.number for m in MIGRATIONS]
    assert open_store().migrations_applied == []  # a second replica finds them done
    with first.engine.connect() as conn:
        numbers = [n for (n,) in conn.execute(text("SELECT number FROM schema_version"))]
    assert sorted(numbers) == [m.number for m in MIGRATIONS]


def test_a_database_from_a_newer_edgeward_is_refused(open_store):
    store = open_store()
    newer = max(m.number for m in MIGRATIONS) + 1
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO schema_version (number, name, applied_at) VALUES (:n, 'x', 0)"),
            {"n": newer},
        )
    with pytest.raises(EdgewardError, match=f"schema migration {newer} but this edgeward knows"):
        open_store()


def test_unusable_database_urls_are_clear_errors(tmp_path):
    with pytest.raises(StoreConfigError, match=r"'mysql' .* is not supported"):
        CloudStore(tmp_path, url="mysql://u:secret@h/db")
    with pytest.raises(StoreConfigError, match="cannot open database") as info:
        CloudStore(tmp_path, url="postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)  # the password never reaches a log


def test_the_database_url_comes_from_the_environment(tmp_path, monkeypatch, pg):
    url = pg.new_database()
    monkeypatch.setenv("EDGEWARD_DATABASE_URL", url)
    store = CloudStore(tmp_path)
    try:
        assert store.dialect == "postgresql"
        assert not (tmp_path / "cloud.sqlite3").exists()
    finally:
        store.close()
