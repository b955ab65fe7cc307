"""The cloud's HTTP routes over FastAPI's TestClient: API keys, per-site reads, body limits, audit.

The real Ingress class and its routes run in-process; only the Serve replica lookup is replaced
by this test's instance, and the replica's grader by a stand-in (no scan here needs grading).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from ray import serve

from cloud import ingress as ing
from cloud.access import DB_NAME, AccessLog
from cloud.store import ReviewCase, SqliteStore
from shared.config import CloudConfig
from shared.proto import edgeward_pb2 as pb
from shared.security.apikeys import KEY_FILE_ENV, KEYS_ENV, ApiKeys, new_key

KEYS = {
    "clinic-a": "key-a-0123456789",
    "clinic-b": "key-b-0123456789",
    "alice": "key-alice-01234567",
    "ops": "key-ops-0123456789",
}
ENV = (
    f"site:clinic-a:{KEYS['clinic-a']},site:clinic-b:{KEYS['clinic-b']},"
    f"reviewer:alice:{KEYS['alice']},admin:ops:{KEYS['ops']}"
)


def _auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


class _NoGrader:
    """Stands in for the grader each replica builds (and loads a model for): never called."""

    def __init__(self, **_: Any) -> None:
        pass


def _ingress(data_dir: Path):
    """An Ingress built as Serve would, minus Ray: the user class's own __init__."""
    wrapper = cast(Any, ing.Ingress).func_or_class  # the Serve deployment's class
    user_cls = wrapper.__mro__[1]
    instance = object.__new__(wrapper)
    with pytest.MonkeyPatch.context() as patch:
        # the globals the class's code reads (Serve may hold a copy of the module's)
        patch.setitem(user_cls.__init__.__globals__, "Grader", _NoGrader)
        user_cls.__init__(instance, {}, CloudConfig(data_dir=data_dir).model_dump(mode="json"))
    return instance


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, object]]:
    monkeypatch.setenv(KEYS_ENV, ENV)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    instance = _ingress(tmp_path / "cloud")
    # Serve hands each route `self` through get_replica_context(); here it is our instance.
    monkeypatch.setattr(
        serve, "get_replica_context", lambda: SimpleNamespace(servable_object=instance)
    )
    with TestClient(ing.app) as client:
        yield client, instance


def _graded(instance, scan_id: str, site: str) -> None:
    """A stored result for `site`, as a graded upload would leave it."""
    instance.store.put_if_absent(
        pb.GradeResult(scan_id=scan_id, verdict="refer", confidence=0.9, model_version="g:1"), site
    )
    instance.access.claim(scan_id, site)


def test_every_data_route_needs_a_known_key(cloud) -> None:
    client, _ = cloud
    assert client.get("/healthz").status_code == 200  # probes stay open
    for method, path in [
        ("post", "/v1/grade"),
        ("get", "/v1/results/s1"),
        ("get", "/v1/review"),
        ("get", "/v1/labels"),
        ("get", "/v1/nodes"),
        ("post", "/v1/review/c1/decision"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert "API key" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/v1/results/s1", headers={"Authorization": "Bearer guessed"})
    assert wrong.status_code == 401


def test_roles_keep_sites_out_of_review_and_reviewers_out_of_uploads(cloud) -> None:
    client, _ = cloud
    assert client.get("/v1/review", headers=_auth("clinic-a")).status_code == 403
    assert client.get("/v1/nodes", headers=_auth("alice")).status_code == 403
    r = client.post("/v1/grade", headers={**_auth("alice"), "X-Scan-Id": "s1"}, content=b"x")
    assert r.status_code == 403 and "reviewer 'alice' may not do this" in r.json()["error"]
    assert client.get("/v1/review", headers=_auth("alice")).status_code == 200
    assert client.get("/v1/nodes", headers=_auth("ops")).status_code == 200


def test_a_site_reads_only_its_own_results(cloud) -> None:
    client, instance = cloud
    _graded(instance, "scan-a", "clinic-a")
    own = client.get("/v1/results/scan-a", headers=_auth("clinic-a"))
    assert own.status_code == 200 and own.json()["verdict"] == "refer"
    other = client.get("/v1/results/scan-a", headers=_auth("clinic-b"))
    assert other.status_code == 404
    assert "refer" not in other.text
    # Nor through the upload route, which replays a stored result for a known scan id.
    replay = client.post(
        "/v1/grade", headers={**_auth("clinic-b"), "X-Scan-Id": "scan-a"}, content=b"\xff\xd8"
    )
    assert replay.status_code == 403 and "another site" in replay.json()["error"]
    assert "refer" not in replay.text
    # A site cannot claim to be another with X-Site-Id either.
    spoof = client.post(
        "/v1/grade",
        headers={**_auth("clinic-b"), "X-Scan-Id": "scan-b", "X-Site-Id": "clinic-a"},
        content=b"x",
    )
    assert spoof.status_code == 403 and "X-Site-Id 'clinic-a'" in spoof.json()["error"]
    # Its own scan replays its own stored result.
    mine = client.post(
        "/v1/grade", headers={**_auth("clinic-a"), "X-Scan-Id": "scan-a"}, content=b"x"
    )
    assert mine.status_code == 200 and mine.headers["x-replayed"] == "true"


def test_an_oversized_body_is_refused_with_413_and_nothing_is_kept(cloud, monkeypatch) -> None:
    client, instance = cloud
    monkeypatch.setattr(ing, "MAX_BODY_BYTES", 1000)
    r = client.post(
        "/v1/grade", headers={**_auth("clinic-a"), "X-Scan-Id": "big"}, content=b"\0" * 1001
    )
    assert r.status_code == 413
    assert "exceeds the limit of 1000 bytes" in r.json()["error"]

    # Without a Content-Length (chunked), the count of bytes read trips the same limit.
    def chunks() -> Iterator[bytes]:
        for _ in range(11):
            yield b"\0" * 100

    r = client.post(
        "/v1/grade", headers={**_auth("clinic-a"), "X-Scan-Id": "big2"}, content=chunks()
    )
    assert r.status_code == 413
    assert instance.store.get("big") is None and instance.store.get("big2") is None
    assert instance.access.owner("big") is None
    # A decision body is bounded too.
    r = client.post(
        "/v1/review/c1/decision", headers=_auth("alice"), content=b"{" + b" " * 70_000 + b"}"
    )
    assert r.status_code == 413


def _case(instance, scan_id: str = "scan-r") -> ReviewCase:
    store: SqliteStore = instance.store
    return store.enqueue(
        ReviewCase(
            case_id=f"case-{scan_id}",
            scan_id=scan_id,
            site_id="clinic-a",
            reason="uncertain",
            edge_verdict="refer",
            cloud_verdict="refer",
            referable_probability=0.5,
            confidence=0.5,
            model_version="g:1",
            image=b"img",
            content_type="image/jpeg",
            heatmap_png=b"png",
            created_at=time.time(),
        )
    )


def test_decisions_record_the_authenticated_reviewer_append_only(cloud, tmp_path) -> None:
    client, instance = cloud
    case = _case(instance)
    url = f"/v1/review/{case.case_id}/decision"
    # Alice cannot sign as someone else.
    r = client.post(url, headers=_auth("alice"), json={"label": "grade2", "reviewer": "bob"})
    assert r.status_code == 403 and "reviewer 'bob'" in r.json()["error"]
    r = client.post(url, headers=_auth("alice"), json={"label": "grade2", "note": "DR"})
    assert r.status_code == 200 and r.json()["reviewer"] == "alice"
    r = client.post(url, headers=_auth("alice"), json={"label": "grade2", "note": "again"})
    assert r.status_code == 200
    audit = client.get(f"/v1/review/{case.case_id}/decisions", headers=_auth("alice")).json()
    rows = audit["decisions"]
    assert [(d["reviewer"], d["label"], d["note"]) for d in rows] == [
        ("alice", "grade2", "DR"),
        ("alice", "grade2", "again"),
    ]
    assert all(d["authenticated"] for d in rows)
    assert rows[0]["decided_at"] <= rows[1]["decided_at"] <= time.time()
    # A site may not read the audit log; and the log refuses to be rewritten.
    assert (
        client.get(f"/v1/review/{case.case_id}/decisions", headers=_auth("clinic-a")).status_code
        == 403
    )
    db = sqlite3.connect(tmp_path / "cloud" / DB_NAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE decisions SET reviewer = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM decisions")
    db.close()
    assert [d["reviewer"] for d in AccessLog(tmp_path / "cloud").decisions(case.case_id)] == [
        "alice",
        "alice",
    ]


def test_key_file_holds_only_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, line = new_key("site", "clinic-a")
    path = tmp_path / "keys"
    path.write_text(f"# issued today\n{line}\n")
    assert key not in path.read_text()
    monkeypatch.setenv(KEY_FILE_ENV, str(path))
    monkeypatch.delenv(KEYS_ENV, raising=False)
    keys = ApiKeys.from_env()
    assert keys is not None
    principal = keys.authenticate(key)
    assert principal is not None and (principal.role, principal.name) == ("site", "clinic-a")
    assert keys.authenticate(key + "x") is None
    path.write_text("site clinic-a 1234\n")
    with pytest.raises(Exception, match=r"keys:1: expected `ROLE NAME sha256:<64 hex>`"):
        ApiKeys.from_env()


def test_a_replica_without_keys_refuses_to_serve_unless_insecure_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.security.apikeys import INSECURE_DEV_ENV, NoApiKeysError

    for name in (KEYS_ENV, KEY_FILE_ENV, INSECURE_DEV_ENV):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NoApiKeysError, match="--insecure-dev"):
        _ingress(tmp_path / "closed")
    monkeypatch.setenv(INSECURE_DEV_ENV, "1")  # what `serve run` operators set for development
    assert _ingress(tmp_path / "dev").keys is None
