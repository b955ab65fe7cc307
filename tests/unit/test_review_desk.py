"""The review desk over a real SQLite cloud store, through FastAPI's TestClient."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cloud.review_desk import mount_desk
from cloud.review_desk.accounts import AccountError, Accounts, hash_password, verify_password
from cloud.review_desk.desk import ReviewDesk, label_for
from cloud.review_desk.samples import sample_case
from cloud.store import CloudStore, DecisionError, ReviewCase
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample

PASSWORD = "correct horse battery"


@pytest.fixture
def app(store: CloudStore) -> FastAPI:
    a = FastAPI()
    a.state.desk = mount_desk(a, store)
    for name, role in (("ann", "reviewer"), ("bob", "reviewer"), ("root", "admin")):
        _accounts(a).add(name, role, PASSWORD)
    return a


def _accounts(app: FastAPI) -> Accounts:
    desk: ReviewDesk = app.state.desk
    return desk.accounts


def login(app: FastAPI, name: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    form = client.get("/desk/login")
    csrf = _csrf(form.text)
    resp = client.post("/desk/login", data={"csrf": csrf, "name": name, "password": password})
    assert resp.status_code == 303, resp.text
    return client


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def decide(client: TestClient, case: ReviewCase, outcome: str, note: str = "") -> None:
    page = client.get(f"/desk/cases/{case.case_id}")
    resp = client.post(
        f"/desk/cases/{case.case_id}/decision",
        data={"csrf": _csrf(page.text), "outcome": outcome, "note": note, "grade": ""},
    )
    assert resp.status_code == 303, resp.text


def test_password_is_stored_as_scrypt_hash_and_checked() -> None:
    stored = hash_password(PASSWORD)
    assert PASSWORD not in stored and stored.startswith("scrypt$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)


def test_account_rules_name_the_problem(app: FastAPI) -> None:
    accounts = _accounts(app)
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("ann", "reviewer", PASSWORD)
    with pytest.raises(AccountError, match="role 'boss'"):
        accounts.add("cy", "boss", PASSWORD)
    with pytest.raises(AccountError, match="at least 10"):
        accounts.add("cy", "reviewer", "short")


def test_unauthenticated_page_redirects_to_login_and_api_gets_401(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    resp = client.get("/desk/")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/desk/login?next=")
    assert client.get("/desk/cases/x/scan").status_code == 303
    assert client.get("/desk/api/queue").status_code == 401


def test_wrong_password_is_refused_and_opens_no_session(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    csrf = _csrf(client.get("/desk/login").text)
    resp = client.post("/desk/login", data={"csrf": csrf, "name": "ann", "password": "nope"})
    assert resp.status_code == 401 and "wrong password" in resp.text
    assert client.get("/desk/api/queue").status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    csrf = _csrf(client.get("/desk/login").text)
    resp = client.post("/desk/login", data={"csrf": csrf, "name": "ann", "password": PASSWORD})
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie


def test_login_without_the_form_token_is_refused(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    resp = client.post("/desk/login", data={"csrf": "forged", "name": "ann", "password": PASSWORD})
    assert resp.status_code == 403


def test_decision_without_csrf_token_changes_nothing(app: FastAPI, store: CloudStore) -> None:
    case = store.enqueue(sample_case("s1"))
    client = login(app, "ann")
    resp = client.post(f"/desk/cases/{case.case_id}/decision", data={"outcome": "refer"})
    assert resp.status_code == 403
    assert store.case(case.case_id).status == "open"
    assert store.labels() == []


def test_queue_orders_disagreement_then_probability_then_wait(
    app: FastAPI, store: CloudStore
) -> None:
    store.enqueue(sample_case("old-low", referable_probability=0.40, waited_s=900))
    store.enqueue(sample_case("new-low", referable_probability=0.40, waited_s=10))
    store.enqueue(sample_case("high", referable_probability=0.65, waited_s=5))
    store.enqueue(
        sample_case("disputed", edge_verdict="no_immediate_concern", referable_probability=0.35)
    )
    client = login(app, "ann")
    order = [c["scan_id"] for c in client.get("/desk/api/queue").json()["cases"]]
    assert order == ["disputed", "high", "old-low", "new-low"]
    page = client.get("/desk/").text
    assert page.index("disputed") < page.index("high") < page.index("old-low")


def test_queue_is_paginated(app: FastAPI, store: CloudStore) -> None:
    for i in range(55):
        store.enqueue(sample_case(f"p{i:02d}", waited_s=100 - i))
    client = login(app, "ann")
    first = client.get("/desk/api/queue").json()
    second = client.get("/desk/api/queue?page_no=2").json()
    assert first["total"] == 55 and len(first["cases"]) == 50 and len(second["cases"]) == 5
    assert "page 2 of 2" in client.get("/desk/?page_no=2").text


def test_decision_is_audited_labelled_and_opens_next_case(app: FastAPI, store: CloudStore) -> None:
    first = store.enqueue(sample_case("a", referable_probability=0.7))
    second = store.enqueue(sample_case("b", referable_probability=0.4))
    client = login(app, "ann")
    decide(client, first, "refer", note="microaneurysms")
    nxt = client.get("/desk/next")
    assert nxt.headers["location"] == f"/desk/cases/{second.case_id}"
    [label] = store.labels()
    assert (label["scan_id"], label["label"]) == ("a", "grade2")
    [record] = client.get(f"/desk/api/cases/{first.case_id}/audit").json()["decisions"]
    assert record["reviewer"] == "ann" and record["outcome"] == "refer"
    assert record["model_version"] == "fundus-dr:7" and record["note"] == "microaneurysms"


def test_audit_is_append_only_a_conflicting_decision_adds_nothing(
    app: FastAPI, store: CloudStore
) -> None:
    case = store.enqueue(sample_case("c"))
    ann, bob = login(app, "ann"), login(app, "bob")
    decide(ann, case, "ungradable")
    before = ann.get(f"/desk/api/cases/{case.case_id}/audit").json()["decisions"]
    page = bob.get(f"/desk/cases/{case.case_id}")
    resp = bob.post(
        f"/desk/cases/{case.case_id}/decision",
        data={"csrf": _csrf(page.text), "outcome": "refer"},
    )
    assert resp.status_code == 409 and "already decided" in resp.text
    decide(ann, case, "ungradable", note="confirmed")  # the same label again: a new record
    after = ann.get(f"/desk/api/cases/{case.case_id}/audit").json()["decisions"]
    assert after[: len(before)] == before and len(after) == 2
    assert after[1]["note"] == "confirmed"
    assert store.case(case.case_id).label == "ungradable"


def test_second_opinion_goes_to_another_reviewer(app: FastAPI, store: CloudStore) -> None:
    case = store.enqueue(sample_case("d"))
    ann, bob = login(app, "ann"), login(app, "bob")
    decide(ann, case, "second_opinion", note="not sure about the macula")
    with store.engine.connect() as conn:
        assigned = conn.execute(
            text("SELECT assigned_to FROM desk_second_opinions WHERE case_id = :c"),
            {"c": case.case_id},
        ).scalar_one()
    assert assigned != "ann"
    asker_queue = [c["scan_id"] for c in ann.get("/desk/api/queue").json()["cases"]]
    assert asker_queue == []
    target = bob if assigned == "bob" else login(app, assigned)
    [item] = target.get("/desk/api/queue").json()["cases"]
    assert item["second_opinion_for"] == "ann"
    assert store.case(case.case_id).status == "open" and store.labels() == []
    decide(target, case, "no_referable")
    trail = target.get(f"/desk/api/cases/{case.case_id}/audit").json()["decisions"]
    assert [(r["reviewer"], r["outcome"]) for r in trail] == [
        ("ann", "second_opinion"),
        (assigned, "no_referable"),
    ]
    assert store.labels()[0]["label"] == "grade0"


def test_second_opinion_without_another_reviewer_is_refused(tmp_path: Path) -> None:
    store = CloudStore(tmp_path)
    app = FastAPI()
    app.state.desk = mount_desk(app, store)
    _accounts(app).add("solo", "reviewer", PASSWORD)
    case = store.enqueue(sample_case("e"))
    client = login(app, "solo")
    page = client.get(f"/desk/cases/{case.case_id}")
    resp = client.post(
        f"/desk/cases/{case.case_id}/decision",
        data={"csrf": _csrf(page.text), "outcome": "second_opinion"},
    )
    assert resp.status_code == 400 and "edgeward cloud users add" in resp.text
    store.close()


def test_audit_page_is_for_admins(app: FastAPI) -> None:
    assert login(app, "ann").get("/desk/audit").status_code == 403
    assert login(app, "root").get("/desk/audit").status_code == 200


def test_case_page_says_not_recorded_for_absent_fields(app: FastAPI, store: CloudStore) -> None:
    case = store.enqueue(sample_case("f"))
    html = login(app, "ann").get(f"/desk/cases/{case.case_id}").text
    for heading in ("Quality findings", "Out-of-distribution scores"):
        assert re.search(heading + r"</h2>\s*<p>not recorded</p>", html), heading
    assert "fundus-dr:7" in html


def test_grade_must_fit_the_decision() -> None:
    assert label_for("c", "refer", 3) == "grade3"
    assert label_for("c", "no_referable", None) == "grade0"
    with pytest.raises(DecisionError, match="grade 1 does not fit 'refer'"):
        label_for("c", "refer", 1)


def test_expired_session_is_refused(store: CloudStore) -> None:
    accounts = Accounts(store.engine, session_ttl_s=-1.0)  # expired the moment it opens
    user = accounts.add("fay", "reviewer", PASSWORD)
    token, _ = accounts.open_session(user)
    assert accounts.session(token) is None
    live = Accounts(store.engine)
    token, _ = live.open_session(user)
    session = live.session(token)
    assert session is not None and session.user == user


def test_labels_reach_the_grader_sink_and_a_failing_sink_loses_nothing(
    store: CloudStore,
) -> None:
    got: list[tuple[str, str]] = []

    async def sink(scan_id: str, label: str) -> None:
        got.append((scan_id, label))
        raise RuntimeError("grader replica restarting")

    desk = ReviewDesk(store, on_label=sink)
    user = desk.accounts.add("gil", "reviewer", PASSWORD)
    case = store.enqueue(sample_case("g"))
    decided = asyncio.run(desk.decide(user, case.case_id, "refer", 4, ""))
    assert got == [("g", "grade4")]
    assert decided.case.label == "grade4" and store.labels()[0]["label"] == "grade4"
    assert [r.outcome for r in desk.records.trail(case.case_id)] == ["refer"]


def test_the_database_refuses_to_change_or_delete_an_audit_record(store: CloudStore) -> None:
    desk = ReviewDesk(store)
    user = desk.accounts.add("hal", "reviewer", PASSWORD)
    case = store.enqueue(sample_case("h"))
    asyncio.run(desk.decide(user, case.case_id, "ungradable", None, "blurred"))
    for statement in ("UPDATE desk_decisions SET label = 'grade0'", "DELETE FROM desk_decisions"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    [record] = desk.records.trail(case.case_id)
    assert (record.label, record.note) == ("ungradable", "blurred")


def test_a_dicom_scan_is_shown_as_a_full_resolution_png(app: FastAPI, store: CloudStore) -> None:
    sample = generate_sample(11, 0, size=320, grade=2, defect_rate=0.0)
    case = sample_case("dicom-1", image=to_dicom_bytes(sample))
    case = store.enqueue(replace(case, content_type="application/dicom"))
    resp = login(app, "ann").get(f"/desk/cases/{case.case_id}/scan")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    shown = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert shown is not None and shown.shape[:2] == sample.image_bgr.shape[:2]


def test_a_note_is_shown_as_text_never_as_markup(app: FastAPI, store: CloudStore) -> None:
    case = store.enqueue(sample_case("x"))
    client = login(app, "ann")
    decide(client, case, "ungradable", note="<script>alert(1)</script>")
    html = client.get(f"/desk/cases/{case.case_id}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
