"""Patient identity at the gateway: pseudonyms out, nothing in the logs, a per-site key."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.pseudonym import Pseudonymiser
from shared.config import ClinicGatewayConfig
from shared.errors import ConfigError
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    cloud,
    gateway,
    http,
    post,
    rows,
    scan,
)
from tests.integration.support.standin_pipeline import StandInPipeline, sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
__all__ = ["cloud", "gateway"]  # fixtures, used by name
PATIENT = "MRN-4711-SECRET"


def test_scan_status_and_logs_carry_the_pseudonym_never_the_patient_id(gateway, cloud, caplog):
    caplog.set_level(logging.DEBUG)
    cloud.refuse.add(Pseudonymiser(SITE_KEY).scan("refused-pd"))
    service = gateway()
    with http(service) as client:
        graded = post(client, sample_jpeg(5), **{"X-Patient-Id": PATIENT, "X-Laterality": "OD"})
        scan_id = graded.json()["scan_id"]
        post(client, sample_jpeg(6), **{"X-Patient-Id": PATIENT, "X-Scan-Id": "refused-pd"})
        assert post(client, b"not an image", **{"X-Patient-Id": PATIENT}).status_code == 202
        wait_for(lambda: scan(client, scan_id)["cloud"]["state"] == "graded", 20, "graded")
        wait_for(lambda: scan(client, "refused-pd")["cloud"]["state"] == "rejected", 20, "refused")
        status = scan(client, scan_id)
        pages = [json.dumps(status), client.get("/status").text, client.get("/metrics").text]
    assert status["patient_ref"] == Pseudonymiser(SITE_KEY).patient(PATIENT)
    assert "patient_id" not in status
    for page in pages:
        assert PATIENT not in page
    assert caplog.records, "the gateway logged nothing: the check below would prove nothing"
    assert PATIENT not in caplog.text
    for record in caplog.records:
        assert PATIENT not in record.getMessage()


def test_a_short_site_key_is_refused_at_construction(tmp_path):
    config = ClinicGatewayConfig(site_id="c", data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"EDGEWARD_SITE_KEY is 16 bytes.*at least 32"):
        ClinicGateway(
            config, StandInPipeline(), site_key=b"0123456789abcdef", api_tokens=API_TOKENS
        )


def test_retention_removes_old_finished_scans_raw_data_and_old_done_files(gateway, cloud, tmp_path):
    watch = tmp_path / "inbox"
    (watch / "done").mkdir(parents=True)
    service = gateway(watch_dir=watch)
    with http(service) as client:
        finished = post(client, sample_jpeg(7), **{"X-Patient-Id": PATIENT}).json()["scan_id"]
        wait_for(lambda: scan(client, finished)["cloud"]["state"] == "graded", 20, "graded")
        cloud.stop()
        waiting = post(client, sample_jpeg(8), **{"X-Patient-Id": PATIENT}).json()["scan_id"]
        wait_for(lambda: scan(client, waiting)["cloud"]["state"] == "queued", 20, "queued")
    old, new = watch / "done" / "old.jpg", watch / "done" / "new.jpg"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    month = 31 * 86_400
    os.utime(old, (time.time() - month, time.time() - month))
    with sqlite3.connect(Path(service.config.data_dir) / "gateway.db") as conn:
        conn.execute("UPDATE scans SET received_at = received_at - ?", (month,))
    purged = service.retention.run_once()
    assert (purged.scans, purged.done_files) == (1, 1)
    assert not old.exists() and new.exists()
    assert rows(service, "SELECT scan_id FROM scan_images") == [(waiting,)]  # still owed
    record = rows(
        service, "SELECT metadata, outcome, purged_at FROM scans WHERE scan_id = ?", finished
    )
    assert PATIENT not in record[0][0] + record[0][1] and record[0][2] is not None
    assert PATIENT in rows(service, "SELECT metadata FROM scans WHERE scan_id = ?", waiting)[0][0]
    with http(service) as client:  # the verdicts stay readable
        assert scan(client, finished)["cloud"]["result"]["verdict"] == "refer"
    assert service.retention.run_once().scans == 0  # once only
