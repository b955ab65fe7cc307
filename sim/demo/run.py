"""`edgeward demo`: both cases end to end on one machine, a cloud outage in the middle, a report.

Everything runs as real processes: mosquitto with the production config (deploy/mosquitto: TLS,
a certificate per gateway and junction, topic ACLs), the Ray Serve cloud tier
(`edgeward cloud up`), one `edgeward edge clinic` per clinic fed over HTTP, and the SUMO twin
whose gateways talk to the cloud coordinator through the same broker. Partway through, the cloud
tier is stopped and later started again; the report shows what each side did meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from shared.broker import MosquittoBroker, free_port
from shared.errors import EdgewardError
from shared.security.apikeys import KEY_FILE_ENV
from sim.demo import configs, desk, hold, trust
from sim.demo import dicom as demo_dicom
from sim.demo import traffic as demo_traffic
from sim.demo.clinics import ClinicHandle, Feeder, backlog, clinic_status, describe, refresh
from sim.demo.configs import REVIEW_SAMPLE
from sim.demo.console import Console, waiting
from sim.demo.facts import Check, ScanRecord, check_scans
from sim.demo.feeder import scan_stream
from sim.demo.models import ensure_models
from sim.demo.report import DemoData, cloud_stage_seconds, render, traffic_checks
from sim.demo.settings import DemoSettings
from sim.demo.supervisor import (
    Process,
    Supervisor,
    edgeward_cmd,
    start_with_fresh_ports,
    wait_http,
)
from sim.pacs import Orthanc

log = logging.getLogger(__name__)


class Demo:
    def __init__(self, settings: DemoSettings, hold: bool = False) -> None:
        self.s = settings
        self.hold = hold  # keep everything up for a person at the end (sim/demo/hold.py)
        self.reviewers: list[desk.Reviewer] = []
        self.t0 = time.monotonic()
        self.t0_epoch = time.time()
        self.say = Console(self.t0)
        self.out = settings.out.resolve()
        # The gateways' upload API takes a bearer token per client; the demo's feeder is one.
        self.gateway_token = secrets.token_hex(32)
        self.env = {
            **os.environ,
            "EDGEWARD_GATEWAY_TOKEN": f"demo-feeder={self.gateway_token}",
            # The cloud's HTTP ingress takes API keys (only their hashes are on disk).
            KEY_FILE_ENV: str(self.out / "config" / "cloud-api-keys"),
            "EDGEWARD_SITE_KEY": secrets.token_hex(32),
            "PYTHONUNBUFFERED": "1",
        }
        self.cloud_http = free_port()
        self.cloud_grpc = free_port()
        # The gateways reach the cloud's gRPC through an mTLS front, each with its certificate.
        self.uplink = trust.Uplink(settings.clinics)
        self.backlog: list[tuple[float, str, int]] = []
        self.outage: tuple[float, float] | None = None
        self.notes: list[str] = []
        self.checks: list[Check] = []
        self.orthanc: Orthanc | None = None
        self.dicom_port: int | None = None
        self.reviewer_key = ""

    @property
    def cloud_data(self) -> Path:
        return self.out / "cloud"

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ---- the parts ----
    def start_cloud(self, sup: Supervisor, config: Path) -> None:
        def launch(attempt: int) -> Process:
            if attempt > 1:  # the ports were free when picked and taken since: fresh ones
                self.cloud_http, self.cloud_grpc = free_port(), free_port()
                configs.set_cloud_ports(config, self.cloud_http, self.cloud_grpc)
            self.uplink.start_front(sup, self.cloud_grpc, self.cloud_data)
            return sup.start("cloud", edgeward_cmd("cloud", "up", "--config", str(config)))

        def ready(proc: Process) -> None:
            wait_http(f"http://127.0.0.1:{self.cloud_http}/readyz", proc, 300, "cloud tier")

        with self.say.during(waiting("cloud: still starting Ray Serve", time.monotonic())):
            start_with_fresh_ports(launch, ready, "cloud tier")

    def open_review_desk(self, config: Path) -> None:
        """Two demo reviewers (a second opinion goes to the other), passwords printed once."""
        names = ("demo-reviewer", "demo-second-reader")
        self.reviewers, problems = desk.make_reviewers(str(config), self.env, names)
        self.notes += problems
        for r in self.reviewers:
            self.say(f"review desk: {self.desk_url}/ login {r.name} password {r.password}")

    @property
    def desk_url(self) -> str:
        return f"http://127.0.0.1:{self.cloud_http}/desk"

    # ---- the run ----
    def run(self) -> Path:
        # httpx logs every request at INFO: the desk and Orthanc checks would flood the console
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        # The build draws its own progress bars; a heartbeat line would break them.
        ensure_models(self.s, self.say)
        self.reviewer_key, n = trust.write_api_keys(Path(self.env[KEY_FILE_ENV]), self.s.clinics)
        self.say(f"cloud: API keys on ({n} keys, hashes only, in {self.env[KEY_FILE_ENV]})")
        with self.say.heartbeat():
            traffic_plan = None
            if self.s.traffic:
                traffic_plan = demo_traffic.prepare(self.s, self.out, self.cloud_data, self.say)
            junctions = demo_traffic.junction_ids(traffic_plan) if traffic_plan else []
            broker = trust.production_broker(self.out, self.s.clinics, junctions)
            self.say(
                f"broker: CA and {self.s.clinics + len(junctions) + 1} client certificates in "
                f"{trust.pki_dir(self.out)} (cloud, {self.s.clinics} clinic gateways, "
                f"{len(junctions)} junctions)"
            )
        with (
            self.say.heartbeat(),
            broker,
            Supervisor(self.out / "logs", self.env) as sup,
        ):
            self.say(
                f"broker: mosquitto on 127.0.0.1:{broker.port} with deploy/mosquitto's config: "
                "TLS, a client certificate per identity, topic ACLs"
            )
            cloud_cfg = configs.cloud_config(
                self.out,
                data_dir=self.cloud_data,
                registry=self.s.registry.resolve(),
                http_port=self.cloud_http,
                grpc_port=self.cloud_grpc,
                broker=broker,
            )
            self.say(
                "cloud: starting Ray Serve (grader + Grad-CAM, coordinator, MQTT bridge); "
                f"review_sample {REVIEW_SAMPLE}: that share of confident results also goes to "
                "the review desk as a quality-assurance sample"
            )
            self.start_cloud(sup, cloud_cfg)
            self.say(f"cloud: ready on http://127.0.0.1:{self.cloud_http}")
            self.notes.append(trust.summary(broker.port, self.uplink, n, self.cloud_http))
            self.say(self.notes[-1])
            self.open_review_desk(cloud_cfg)

            if self.s.clinics:  # clinic-1 is the one that sends by C-STORE
                self.start_pacs()
            clinics = self.start_clinics(sup, broker)
            runs: dict[str, Process] = {}
            if traffic_plan is not None:
                runs = demo_traffic.start(
                    traffic_plan, sup, broker, trust.pki_dir(self.out), self.say
                )
                demo_traffic.wait_coordinated(runs, 120.0, self.say)
            try:
                scans = self.drive(sup, clinics, cloud_cfg)
                self.check_pacs(clinics)
                if not self.hold:  # a person decides their own cases; unattended, we do one
                    self.check_desk_decision(scans)
                traffic_results = []
                if traffic_plan is not None:
                    traffic_results = demo_traffic.finish(
                        traffic_plan, runs, self.outage, self.t0_epoch, self.say
                    )
                review = self.review_cases()
                self.checks.append(trust.probe_api_keys(self.cloud_http))
                self.checks += trust.probe_links(self.uplink, broker, junctions, clinics)
                failures = traffic_plan.failures if traffic_plan is not None else []
                path = self.report(scans, traffic_results, review, failures)
                if self.hold:
                    self.hold_open(path, scans)
            finally:
                if self.orthanc is not None:
                    self.orthanc.stop()
        return path

    def check_desk_decision(self, scans: list[ScanRecord]) -> None:
        if self.orthanc is None or not self.reviewers:
            return
        with self.say.during(waiting("review desk: waiting for the SR", time.monotonic())):
            check = desk.check_decision_reaches_pacs(
                self.desk_url,
                self.reviewers[-1],
                [(r, study) for r in scans if (study := demo_dicom.study_of(r))],
                self.open_case,
                self.orthanc,
                say=self.say,
            )
        if check is None:
            self.notes.append(desk.NOTHING_TO_DECIDE)
            self.say(f"review desk: {desk.NOTHING_TO_DECIDE}")
            return
        self.say(f"review desk: {check.detail}")
        self.checks.append(check)

    def open_case(self, scan_id: str) -> str | None:
        """The open review case of a (cloud) scan id, if the queue holds one."""
        cases = desk.review_cases(self.cloud_http, self.reviewer_key)
        return next(
            (str(c["case_id"]) for c in cases if c["scan_id"] == scan_id and c["status"] == "open"),
            None,
        )

    def hold_open(self, report: Path, scans: list[ScanRecord]) -> None:
        def decided() -> int:
            cases = desk.review_cases(self.cloud_http, self.reviewer_key)
            return sum(c.get("status") == "decided" for c in cases)

        dicom = [
            f"scan {r.scan_id} (cloud id {r.cloud['scan_id']}), study {study}"
            for r in scans
            if (study := demo_dicom.study_of(r)) and r.cloud and r.cloud.get("needs_review")
        ]
        info = hold.HoldInfo(self.desk_url, self.reviewers, self.orthanc, report, dicom)
        hold.hold(info, self.say, decided)

    def start_pacs(self) -> None:
        """An Orthanc for the first clinic's SR and PDF results (storescu must be present)."""
        demo_dicom.storescu_binary()
        self.orthanc = Orthanc(self.out / "pacs").start()
        self.dicom_port = free_port()
        self.say(
            f"pacs: Orthanc at {self.orthanc.url}/app/explorer.html "
            f"(DICOM 127.0.0.1:{self.orthanc.dicom_port}, AE {demo_dicom.AET}); clinic-1's "
            f"camera sends by C-STORE (storescu) to its gateway on port {self.dicom_port}"
        )

    def check_pacs(self, clinics: list[ClinicHandle]) -> None:
        if self.orthanc is not None:
            records = [r for c in clinics for r in c.records if r.study_uid]
            check, notes = demo_dicom.check_studies(self.orthanc, records, self.say)
            self.checks.append(check)
            self.notes += notes

    def start_clinics(self, sup: Supervisor, broker: MosquittoBroker) -> list[ClinicHandle]:
        clinics = []
        for i in range(self.s.clinics):
            port = free_port()
            name = f"clinic-{i + 1}"
            cfg = configs.clinic_config(
                self.out,
                i,
                registry=self.s.registry.resolve(),
                port=port,
                broker=broker,
                uplink=self.uplink,
                orthanc=self.orthanc if i == 0 else None,  # clinic-1's camera sends by C-STORE
                dicom_port=self.dicom_port,
            )
            proc = sup.start(name, edgeward_cmd("edge", "clinic", "--config", str(cfg)))
            url = f"http://127.0.0.1:{port}"
            self.say(f"{name}: generating {self.s.scans_per_clinic} scans")
            scans = scan_stream(i, self.s.scans_per_clinic, self.s.seed)
            with self.say.during(waiting(f"{name}: gateway still starting", time.monotonic())):
                wait_http(f"{url}/healthz", proc, 120, name)
            handle = ClinicHandle(name, url, scans, self.gateway_token)
            if i == 0 and self.dicom_port is not None:
                handle.dicom_port, handle.spool = self.dicom_port, self.out / name / "camera"
            clinics.append(handle)
            self.say(f"{name}: gateway up at {url}")
        return clinics

    def drive(
        self, sup: Supervisor, clinics: list[ClinicHandle], cloud_cfg: Path
    ) -> list[ScanRecord]:
        start = time.monotonic()
        feeders = [Feeder(c, self.s.scan_interval_s, self.t0, self.say) for c in clinics]
        for f in feeders:
            f.start()
        outage = threading.Thread(
            target=self.outage_cycle, args=(sup, cloud_cfg, start), name="outage", daemon=True
        )
        outage.start()
        with self.say.during(lambda: clinic_status(clinics)):
            self._watch(clinics, feeders, outage)
        for f in feeders:
            f.join(timeout=5)
        return [r for c in clinics for r in c.records]

    def _watch(
        self, clinics: list[ClinicHandle], feeders: list[Feeder], outage: threading.Thread
    ) -> None:
        """Print verdicts as they come until every scan is judged (or the drain times out)."""
        drain_deadline: float | None = None
        while True:
            now = time.monotonic()
            for c in clinics:
                for r in list(c.records):
                    if refresh(c, r):
                        self.say(describe(r))
                depth = backlog(c)
                if depth is not None:
                    self.backlog.append((self.now(), c.name, depth))
            feeding = any(f.is_alive() for f in feeders)
            if not feeding and not outage.is_alive():
                pending = [
                    r
                    for c in clinics
                    for r in c.records
                    if r.edge_verdict is None or (r.gradable and r.cloud is None)
                ]
                if not pending:
                    break
                drain_deadline = drain_deadline or now + self.s.drain_timeout_s
                if now > drain_deadline:
                    self.notes.append(f"{len(pending)} scans still pending when the demo ended")
                    break
            time.sleep(1.0)

    def outage_cycle(self, sup: Supervisor, cloud_cfg: Path, start: float) -> None:
        """Stop the cloud tier partway through and bring it back; the loop keeps watching."""
        time.sleep(max(0.0, start + self.s.outage_at_s - time.monotonic()))
        self.say("OUTAGE: stopping the cloud tier")
        began = self.now()
        sup.stop("cloud")
        self.say("cloud tier stopped: gateways keep giving local verdicts and queue uploads")
        time.sleep(max(0.0, began + self.s.outage_s - self.now()))
        self.say("OUTAGE over: starting the cloud tier again")
        try:
            self.start_cloud(sup, cloud_cfg)
        except EdgewardError as exc:
            self.outage = (began, self.now())
            self.notes.append(f"the cloud tier did not come back: {exc}")
            self.say(f"cloud did not come back: {exc}")
            return
        # The cloud is back when it answers again, not when the restart was asked for.
        self.outage = (began, self.now())
        self.say("cloud: back; gateways drain their outboxes")

    def review_cases(self) -> list[dict[str, Any]]:
        try:
            return desk.review_cases(self.cloud_http, self.reviewer_key)
        except OSError as exc:
            self.notes.append(f"review queue not readable: {exc}")
            return []

    def report(
        self,
        scans: list[ScanRecord],
        traffic: list[Any],
        review: list[dict[str, Any]],
        traffic_failures: list[str],
    ) -> Path:
        gradable = [s for s in scans if s.gradable]
        checks = check_scans(scans, len(gradable), sum(s.cloud is not None for s in gradable))
        checks += self.checks
        checks += traffic_checks(traffic, traffic_failures, self.s.traffic)
        data = DemoData(
            scans=scans,
            checks=checks,
            outage=self.outage,
            backlog=self.backlog,
            review_cases=review,
            traffic=traffic,
            cloud_stage_seconds=cloud_stage_seconds(scans),
            duration_s=self.now(),
            notes=self.notes,
        )
        path = render(data, self.out / "report")
        (self.out / "report" / "scans.json").write_text(
            json.dumps([s.__dict__ for s in scans], default=str, indent=1)
        )
        return path
