"""Clinic gateway service parts that need no network: pseudonyms, records, outbox, backoff."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.clinic.database import Database
from edge.clinic.intake import normalise_metadata
from edge.clinic.ports import SubmissionError
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.store import ScanStore
from edge.clinic.uplink import backoff_delay
from edge.clinic.upload import UploadRefusedError, upload_copy
from edge.clinic.watcher import file_scan_id, is_temporary
from edge.outbox import CLOUD, EVENTS, Outbox
from shared.config.clinic import CloudUplink
from shared.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "gateway.db")


def test_pseudonyms_are_stable_keyed_and_hide_the_raw_id():
    a, b = Pseudonymiser(b"site-a" * 6), Pseudonymiser(b"site-b" * 6)
    assert a.patient("PAT-1") == a.patient("PAT-1")
    assert a.patient("PAT-1") != b.patient("PAT-1")
    assert a.patient("PAT-1") != a.patient("PAT-2")
    assert "PAT-1" not in a.patient("PAT-1")
    assert a.scan("x") != a.patient("x")[:34]
    assert len(a.scan("anything")) <= 64


def test_missing_site_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("EDGEWARD_TEST_SITE_KEY", raising=False)
    with pytest.raises(ConfigError, match="EDGEWARD_TEST_SITE_KEY"):
        Pseudonymiser.from_env("EDGEWARD_TEST_SITE_KEY")


def test_a_site_key_under_32_bytes_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("EDGEWARD_TEST_SITE_KEY", "x" * 31)
    with pytest.raises(ConfigError, match=r"EDGEWARD_TEST_SITE_KEY is 31 bytes.*at least 32"):
        Pseudonymiser.from_env("EDGEWARD_TEST_SITE_KEY")
    monkeypatch.setenv("EDGEWARD_TEST_SITE_KEY", "x" * 32)
    assert Pseudonymiser.from_env("EDGEWARD_TEST_SITE_KEY").patient("P").startswith("p-")


def test_redact_removes_every_raw_identifier():
    p = Pseudonymiser(b"k" * 32)
    text = "scan PAT-7.jpg of PAT-7: out of focus"
    assert (
        p.redact(text, "PAT-7", "PAT-7.jpg", None) == "scan [redacted] of [redacted]: out of focus"
    )


def test_outbox_is_fifo_and_takes_a_key_once_in_its_life(db):
    box = Outbox(db)
    for key in ("a", "b", "c"):
        assert box.enqueue(CLOUD, key, key.encode(), {})
    assert not box.enqueue(CLOUD, "a", b"again", {})
    assert box.enqueue(EVENTS, "a", b"other queue", {})
    head = box.peek(CLOUD, limit=5)
    assert [i.key for i in head] == ["a", "b", "c"]
    box.complete(head[0])
    assert not box.enqueue(CLOUD, "a", b"after delivery", {})  # never sent twice
    assert [i.key for i in box.peek(CLOUD, limit=5)] == ["b", "c"]
    assert [i.key for i in box.peek(CLOUD, limit=5, after_seq=head[1].seq)] == ["c"]
    assert box.note_failure(head[1], "UNAVAILABLE") == 1
    assert box.note_failure(head[1], "UNAVAILABLE") == 2
    assert box.depth(CLOUD) == 2 and box.outcome(CLOUD, "a") == "delivered"


def test_outbox_survives_reopening_the_database(tmp_path):
    first = Database(tmp_path / "g.db")
    Outbox(first).enqueue(CLOUD, "k", b"payload", {"scan_id": "s"})
    first.close()
    [item] = Outbox(Database(tmp_path / "g.db")).peek(CLOUD)
    assert (item.payload, item.meta) == (b"payload", {"scan_id": "s"})


def test_repeated_scan_id_is_duplicate_and_different_bytes_conflict(db):
    store = ScanStore(db)
    args: dict[str, Any] = {
        "source": "http",
        "filename": None,
        "content_type": "image/jpeg",
        "metadata": {},
    }
    assert store.create("s1", "c1", b"img", **args) == "accepted"
    assert store.create("s1", "c1", b"img", **args) == "duplicate"
    assert store.create("s1", "c1", b"other", **args) == "conflict"
    assert store.image("s1") == b"img"
    assert store.unjudged() == ["s1"]
    assert store.start_attempt("s1") == 1


def test_backoff_grows_exponentially_up_to_the_cap():
    settings = CloudUplink(backoff_initial_s=1.0, backoff_max_s=10.0)
    delays = [backoff_delay(n, settings) for n in range(1, 8)]
    assert 0.8 <= delays[0] <= 1.2
    assert 3.2 <= delays[2] <= 4.8
    assert all(d <= 12.0 for d in delays)
    assert delays[-1] >= 8.0


def test_metadata_keys_are_normalised_and_bounded():
    assert normalise_metadata({"Patient-Id": " P1 ", "LATERALITY": "OS"}) == {
        "patient_id": "P1",
        "laterality": "OS",
    }
    with pytest.raises(SubmissionError, match="at most 256"):
        normalise_metadata({"note": "x" * 300})


def test_camera_temp_names_are_never_read():
    for name in (".scan.jpg", "scan.jpg.part", "scan.tmp", "~scan.png", "x.crdownload"):
        assert is_temporary(name)
    assert not is_temporary("scan.dcm")
    assert file_scan_id(b"a") == file_scan_id(b"a") != file_scan_id(b"b")


def test_upload_copy_keeps_the_pixels_and_refuses_what_is_no_image() -> None:
    image = np.full((64, 64, 3), 90, np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    body, content_type = upload_copy(png, "scan.png", "image/png")
    assert content_type == "image/png"
    decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and np.array_equal(np.asarray(decoded), image)
    with pytest.raises(UploadRefusedError, match="not an image format"):
        upload_copy(b"%PDF-1.7 referral letter", "letter.pdf", "application/pdf")


def test_ingest_adapters_import_neither_the_app_nor_the_parts_it_wires() -> None:
    """Layers point one way: the app hands each adapter a narrow protocol from ports.py."""
    wired = {"edge.clinic.app", "edge.clinic.intake", "edge.clinic.judging", "edge.clinic.results"}
    for adapter in ("http_api", "grpc_api", "watcher"):
        tree = ast.parse((REPO / "edge" / "clinic" / f"{adapter}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "edge.clinic.ports" in imported, adapter
        assert not imported & wired, (adapter, imported & wired)
