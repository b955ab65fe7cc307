"""The desk inside the cloud ingress: served by the FastAPI app that Ray Serve freezes."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from ray import cloudpickle
from ray._common.serialization import pickle_dumps
from ray.serve._private.utils import ensure_serialization_context

from cloud import review_desk
from cloud.ingress import app
from cloud.store import CloudStore


def test_frozen_ingress_app_serves_the_desk_bound_after_freezing(tmp_path: Path) -> None:
    # Serve pickles the app when the Ingress class is decorated, before any replica exists:
    # the desk must still answer once the replica's constructor binds it to the store.
    ensure_serialization_context()  # as serve.ingress does (it registers Ray's reducers)
    frozen = cloudpickle.loads(pickle_dumps(app, error_msg="the ingress app does not pickle"))
    client = TestClient(frozen, follow_redirects=False)
    review_desk._bound.clear()
    assert client.get("/desk/").status_code == 503
    store = CloudStore(tmp_path)
    try:
        review_desk.bind_desk(store)
        resp = client.get("/desk/")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/desk/login")
        assert "Log in" in client.get("/desk/login").text
        assert client.get("/desk/api/queue").status_code == 401
    finally:
        review_desk._bound.clear()
        store.close()
