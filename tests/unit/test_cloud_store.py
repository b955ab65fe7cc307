"""The cloud's SQLite records: one result per scan, review cases, reviewer labels, nodes."""

from __future__ import annotations

import threading

import pytest

from cloud.store import (
    DecisionConflictError,
    DecisionError,
    ReviewCase,
    SqliteStore,
    UnknownCaseError,
)
from shared.proto import edgeward_pb2 as pb


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


def test_second_result_for_a_scan_returns_the_first_and_adds_no_record(tmp_path):
    store = SqliteStore(tmp_path)
    first, created = store.put_if_absent(_result("scan-1", "req-a", 0.7), "site-a")
    again, created_again = store.put_if_absent(_result("scan-1", "req-b", 0.1), "site-a")
    assert created and not created_again
    assert again == first and again.request_id == "req-a"
    assert store.count() == 1


def test_concurrent_writers_of_one_scan_leave_one_record(tmp_path):
    stores = [SqliteStore(tmp_path) for _ in range(4)]  # like several ingress replicas
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


def test_results_survive_a_restart(tmp_path):
    SqliteStore(tmp_path).put_if_absent(_result("scan-1", "r"), "s")
    reopened = SqliteStore(tmp_path).get("scan-1")
    assert reopened is not None and reopened.verdict == "refer"


def test_review_case_round_trip_stores_the_label_for_retraining(tmp_path):
    store = SqliteStore(tmp_path)
    case = store.enqueue(_case())
    assert store.enqueue(_case()).case_id == case.case_id  # one case per scan
    assert [c.case_id for c in store.cases("open")] == [case.case_id]
    decided = store.decide(case.case_id, "grade3", "dr-who", "haemorrhages")
    assert decided.status == "decided" and decided.label == "grade3"
    assert store.cases("open") == []
    assert store.labels()[0]["label"] == "grade3"
    assert store.case(case.case_id).image == b"png-bytes"


def test_bad_decisions_are_refused_with_reasons(tmp_path):
    store = SqliteStore(tmp_path)
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


def test_node_table_keeps_the_latest_state(tmp_path):
    store = SqliteStore(tmp_path)
    store.upsert("gw-1", kind="clinic", state="online", detail="", outbox_depth=0, message_id="m1")
    store.upsert(
        "gw-1", kind="clinic", state="offline", detail="will", outbox_depth=0, message_id="m2"
    )
    nodes = store.nodes()
    assert len(nodes) == 1 and nodes[0]["state"] == "offline"
