"""The review desk as a person uses it, over HTTP: log in, open a case, decide it by the form
(session cookie, CSRF token); and the demo's check that such a decision reaches the PACS as the
reviewer's SR in the scan's study."""

from __future__ import annotations

import io
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pydicom

from sim.demo.dicom import COMPREHENSIVE_SR
from sim.demo.facts import Check, ScanRecord
from sim.demo.supervisor import edgeward_cmd, http_json
from sim.pacs import Orthanc

CHECK_NAME = "a desk decision (login, CSRF form) reaches the PACS as the reviewer's SR"
NOTHING_TO_DECIDE = (
    "no scan of clinic-1 (the clinic with a PACS) went to review this run, so the demo decided "
    "no case itself; tests/integration/test_review_desk_sr.py covers a desk decision reaching "
    "Orthanc as the reviewer's SR"
)


@dataclass(frozen=True)
class Reviewer:
    name: str
    password: str


def make_reviewers(
    cloud_config: str, env: dict[str, str], names: tuple[str, ...]
) -> tuple[list[Reviewer], list[str]]:
    """Desk accounts with random passwords, made with the admin CLI the way an operator would;
    (the accounts made, what went wrong)."""
    made, problems = [], []
    for name in names:
        password = secrets.token_urlsafe(12)
        done = subprocess.run(
            edgeward_cmd("cloud", "users", "add", name, "--config", cloud_config),
            check=False,
            env={**env, "EDGEWARD_DESK_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            problems.append(f"review desk account {name} not made: {done.stderr.strip()}")
        else:
            made.append(Reviewer(name, password))
    return made, problems


def review_cases(cloud_http: int, reviewer_key: str) -> list[dict[str, Any]]:
    """Every case of the cloud's review queue (its JSON API, as a reviewer); raises OSError."""
    data = http_json(
        f"http://127.0.0.1:{cloud_http}/v1/review?status=all",
        headers={"Authorization": f"Bearer {reviewer_key}"},
    )
    if not isinstance(data, dict):
        raise OSError(f"review queue: expected a JSON object, got {type(data).__name__}")
    return list(data.get("cases", []))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    if match is None:
        raise OSError("review desk: no CSRF field on the page; is this the desk?")
    return match.group(1)


class DeskClient:
    """One reviewer's browser session on the desk at `desk_url` (…/desk)."""

    def __init__(self, desk_url: str, timeout_s: float = 15.0) -> None:
        self.desk_url = desk_url.rstrip("/")
        self.origin = self.desk_url.rsplit("/desk", maxsplit=1)[0]
        self.http = httpx.Client(follow_redirects=False, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def login(self, who: Reviewer) -> None:
        form = self.http.get(f"{self.desk_url}/login")
        resp = self.http.post(
            f"{self.desk_url}/login",
            data={"csrf": csrf_of(form.text), "name": who.name, "password": who.password},
        )
        if resp.status_code != 303:
            raise OSError(f"review desk: login as {who.name} answered HTTP {resp.status_code}")

    def next_case(self) -> str | None:
        """The id of the most urgent open case this reviewer may take, if any."""
        target = self.http.get(f"{self.desk_url}/next").headers.get("location", "")
        return target.rsplit("/", 1)[-1] if "/cases/" in target else None

    def decide(self, case_id: str, outcome: str, note: str = "") -> None:
        page = self.http.get(f"{self.desk_url}/cases/{case_id}")
        resp = self.http.post(
            f"{self.desk_url}/cases/{case_id}/decision",
            data={"csrf": csrf_of(page.text), "outcome": outcome, "note": note, "grade": ""},
        )
        if resp.status_code != 303:
            raise OSError(
                f"review desk: deciding case {case_id} answered HTTP {resp.status_code}: "
                f"{resp.text[:200]}"
            )


def reviewed_sr(orthanc: Orthanc, study: str) -> pydicom.Dataset | None:
    """The study's SR verified by a reviewer, once it is in the PACS."""
    for data in orthanc.study_files(study):
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        if ds.SOPClassUID == COMPREHENSIVE_SR and ds.get("VerificationFlag") == "VERIFIED":
            return ds
    return None


def check_decision_reaches_pacs(
    desk_url: str,
    who: Reviewer,
    candidates: list[tuple[ScanRecord, str]],
    case_of: Callable[[str], str | None],
    orthanc: Orthanc,
    *,
    say: Callable[[str], None],
    timeout_s: float = 90.0,
) -> Check | None:
    """Decide one review case of a scan that has a study in the PACS (`candidates`: record,
    study UID) through the desk's form, as a person would, and wait for the reviewer's SR in
    that study. `case_of(cloud scan id)` finds its open case. None when no such scan went to
    review this run: the model decides which do, so there may be nothing to decide."""
    found: list[tuple[ScanRecord, str, str]] = []
    for r, study in candidates:
        if r.cloud and r.cloud.get("needs_review") is True:
            try:
                case_id = case_of(str(r.cloud["scan_id"]))
            except OSError as exc:
                return Check(CHECK_NAME, False, f"review queue unreadable: {exc}")
            if case_id:
                found.append((r, study, case_id))
    if not found:
        return None
    record, study, case_id = found[0]
    desk = DeskClient(desk_url)
    try:
        desk.login(who)
        desk.decide(case_id, "refer", "decided by the demo's own check")
    except (OSError, httpx.HTTPError) as exc:
        return Check(CHECK_NAME, False, f"case {case_id}: {exc}")
    finally:
        desk.close()
    say(f"review desk: {who.name} decided case {case_id} (scan {record.scan_id}) by the form")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            sr = reviewed_sr(orthanc, study)
        except (OSError, httpx.HTTPError, ValueError) as exc:
            say(f"pacs: {exc}")
            sr = None
        if sr is not None:
            observer = sr.VerifyingObserverSequence[0].VerifyingObserverName
            return Check(
                CHECK_NAME,
                observer.family_name == who.name,
                f"study {study}: SR verified by {observer.family_name} arrived "
                f"{timeout_s - (deadline - time.monotonic()):.0f} s after the decision",
            )
        time.sleep(1.0)
    return Check(CHECK_NAME, False, f"study {study}: no reviewer's SR within {timeout_s:.0f} s")
