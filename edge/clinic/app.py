"""The clinic gateway's one composition root: build the parts, hand each adapter what it needs.

Order of work for one scan: intake records it (bytes included) -> judging runs the pipeline
-> verdict, cloud outbox row and MQTT event commit in one transaction -> uplink and event
publisher drain their outboxes -> results take the cloud's answer. A restart resumes every
stage from the database. No part imports this module.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge.clinic.auth import ApiTokens
from edge.clinic.database import Database
from edge.clinic.delivery import CloudOutbox, DeadLetters
from edge.clinic.events import EventPublisher
from edge.clinic.intake import Intake
from edge.clinic.judging import Judging, Pipeline, prediction_log_path
from edge.clinic.metrics import GatewayMetrics
from edge.clinic.outcome import ScanOutcome
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.results import Results
from edge.clinic.retention import Retention
from edge.clinic.review_follow import ReviewFollower
from edge.clinic.store import ScanStore
from edge.clinic.uplink import CloudUplink
from edge.outbox import CLOUD, EVENTS, Outbox
from shared.config.base import secret_from_env
from shared.config.clinic import ClinicGatewayConfig
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog
from shared.security.grpc_tls import TlsFiles

if TYPE_CHECKING:
    from edge.clinic.model_update import ModelUpdater
    from edge.clinic.reports.worker import ReportWorker

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self) -> None: ...


class PipelineSlot:
    """The real pipeline, loaded at `start()` and swapped whole when a model update lands.

    A scan is judged by one pipeline from start to end: a swap waits for the scan in hand.
    """

    def __init__(self, config: ClinicGatewayConfig) -> None:
        self.config = config
        self.loaded: Pipeline | None = None
        self._lock = threading.Lock()

    def _build(self) -> Pipeline:
        try:
            from edge.clinic.pipeline import ClinicPipeline
        except ImportError as exc:
            raise EdgewardError(f"clinic pipeline unavailable: {exc}") from exc
        return ClinicPipeline(self.config)

    def load(self) -> None:
        self.loaded = self._build()

    def reload(self) -> None:
        fresh = self._build()  # models load outside the lock: judging goes on meanwhile
        with self._lock:
            old, self.loaded = self.loaded, fresh
        if old is not None:
            old.close()

    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome:
        with self._lock:
            if self.loaded is None:
                raise EdgewardError("clinic pipeline used before the gateway started")
            return self.loaded.process(data, filename, content_type, metadata)

    def close(self) -> None:
        with self._lock:
            if self.loaded is not None:
                self.loaded.close()


class ClinicGateway:
    """One gateway in this process: `start()` opens its sockets, `stop()` closes everything."""

    def __init__(
        self,
        config: ClinicGatewayConfig,
        pipeline: Pipeline | None = None,
        site_key: bytes | None = None,
        api_tokens: ApiTokens | None = None,
    ) -> None:
        self.config = config
        self.api_tokens = api_tokens
        key = site_key or secret_from_env(
            config.site_key_env, "pseudonymising patient ids before upload"
        )
        data_dir = Path(config.data_dir)
        self.pseudonyms = Pseudonymiser(key, config.site_key_env)
        self.db = Database(data_dir / "gateway.db")
        # Every edge verdict, for drift checks on the gateway itself (keyed like the pseudonyms).
        self.predictions = PredictionLog(prediction_log_path(data_dir), key)
        self.store = ScanStore(self.db)
        self.metrics = GatewayMetrics()
        self.outbox: Outbox = CloudOutbox(
            self.db,
            config.cloud,
            on_buried=lambda: self.metrics.cloud_calls.labels(result="dead_letter").inc(),
        )
        self.dead_letters = DeadLetters(self.outbox)
        self.metrics.watch_depth(CLOUD, lambda: self.outbox.depth(CLOUD))
        self.metrics.watch_dead_letters(lambda: self.outbox.dead_count(CLOUD))
        self.metrics.watch_depth(EVENTS, lambda: self.outbox.depth(EVENTS))
        self.events = EventPublisher(
            config.mqtt,
            self.outbox,
            site_id=config.site_id,
            gateway_id=config.gateway_id,
            status=self._status,
        )
        self.results = Results(
            db=self.db,
            store=self.store,
            events=self.events,
            metrics=self.metrics,
            site_id=config.site_id,
            gateway_id=config.gateway_id,
            pseudonyms=self.pseudonyms,
        )
        tls = config.cloud.tls
        self.uplink = CloudUplink(
            config.cloud,
            self.outbox,
            self.results.cloud_result,
            self.results.cloud_rejected,
            tls=None if tls is None else TlsFiles(tls.ca_file, tls.cert_file, tls.key_file),
        )
        self._slot: PipelineSlot | None = None
        if pipeline is None:
            pipeline = self._slot = PipelineSlot(config)
        self.judging = Judging(
            config=config,
            pipeline=pipeline,
            db=self.db,
            store=self.store,
            pseudonyms=self.pseudonyms,
            events=self.events,
            metrics=self.metrics,
            predictions=self.predictions,
            cloud_notify=self.uplink.notify,
        )
        self.intake = Intake(
            self.store,
            self.pseudonyms,
            self.metrics,
            config.limits.max_upload_bytes,
            self.judging.put,
            data_dir=data_dir,
            min_free_bytes=config.limits.min_free_bytes,
        )
        self.adapters: list[Stoppable] = []
        self.reports: ReportWorker | None = None
        if config.dicom.pacs is not None or config.dicom.fhir is not None:
            from edge.clinic.reports.worker import ReportWorker

            self.reports = ReportWorker(
                self.db,
                self.store,
                self.outbox,
                config.dicom,
                pseudonyms=self.pseudonyms,
            )
            self.judging.on_judged(self.reports.notify)
        # Every scan the cloud sends to its desk is followed to the reviewer's decision.
        self.review_follower = ReviewFollower(
            self.db,
            self.uplink.get_result,
            record=self.results.reviewer_decided,
            on_decided=self._review_decided,
        )
        watch = Path(config.watch_dir) if config.watch_dir is not None else None
        self.retention = Retention(self.db, config.retention_days, watch, config.retention_check_s)
        self.updater: ModelUpdater | None = None
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self.dicom_port: int | None = None
        self.started = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, serve: bool = True) -> ClinicGateway:
        """Load the models, resume unfinished work, then open the ingest paths."""
        if serve and self.api_tokens is None:  # refuse before any work starts
            self.api_tokens = ApiTokens.from_env(self.config.http.token_env)
        if self._slot is not None and self._slot.loaded is None:
            self._slot.load()
        self.judging.start()
        self.uplink.start()
        self.review_follower.start()
        self.events.start()
        if serve:
            self._serve_apis()
        if self.config.watch_dir is not None:
            from edge.clinic.watcher import FolderWatcher

            watcher = FolderWatcher(
                self.intake, self.store, Path(self.config.watch_dir), self.config.watch_poll_s
            )
            self.judging.on_judged(watcher.judged)
            watcher.start()
            self.adapters.append(watcher)
        if self.config.dicom.scp is not None:
            from edge.clinic.dicom_scp import DicomScp

            scp = DicomScp(self.intake, self.config.dicom.scp).start()
            self.dicom_port = scp.port
            self.adapters.append(scp)
        if self.reports is not None:
            self.adapters.append(self.reports.start())
        if self.config.model_updates:
            self._start_model_updates()
        self.adapters.append(self.retention.start())
        self.started = True
        self._write_ports()
        log.info(
            "clinic gateway %s/%s ready: http port %s, grpc port %s, watching %s",
            self.config.site_id,
            self.config.gateway_id,
            self.http_port,
            self.grpc_port,
            self.config.watch_dir or "no folder",
        )
        return self

    def _serve_apis(self) -> None:
        from edge.clinic.grpc_api import serve_grpc
        from edge.clinic.http_api import serve_http

        settings = self.config.http
        tokens = self.api_tokens
        assert tokens is not None  # start() resolved them
        if settings.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "upload APIs bind %s: reachable beyond this box (every request still needs a "
                "token); set http.host: 127.0.0.1 to keep them local",
                settings.host,
            )
        http = serve_http(
            self.intake,
            self.results,
            self,
            settings.host,
            settings.port,
            tokens=tokens,
            max_connections=settings.max_connections,
        )
        self.adapters.append(http)
        self.http_port = http.server_port
        grpc_server, self.grpc_port = serve_grpc(
            self.intake,
            self.results,
            settings.host,
            self.config.grpc_port,
            tokens=tokens,
            max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        )
        self.adapters.append(grpc_server)

    def _start_model_updates(self) -> None:
        """Listen for verified model updates; each one that lands reloads the pipeline."""
        from edge.clinic.model_update import ModelUpdater
        from shared.registry import Registry

        updater = ModelUpdater(
            Registry(self.config.registry_dir),
            self.config.gateway_id,
            self.config.mqtt,
            on_swap=self._model_swapped,
        )
        updater.start()
        self.updater = updater
        self.adapters.append(updater)

    def _model_swapped(self, name: str) -> None:
        if name not in (self.config.quality_model, self.config.triage_model):
            log.info("model update for %s: not a model this gateway judges with", name)
        elif self._slot is None:
            log.warning(
                "model update for %s: this gateway was given its pipeline; restart it", name
            )
        else:
            self._slot.reload()
            log.info("model update for %s: pipeline reloaded", name)

    def _write_ports(self) -> None:
        info = {
            "pid": os.getpid(),
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "dicom_port": self.dicom_port,
            "started_at": time.time(),
        }
        path = Path(self.config.data_dir) / "gateway.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(path)

    def _review_decided(self) -> None:
        self.events.notify()
        if self.reports is not None:
            self.reports.notify()

    def stop(self) -> None:
        for adapter in reversed(self.adapters):
            adapter.stop()
        self.adapters.clear()
        self.judging.stop()
        self.judging.pipeline.close()
        self.review_follower.stop()
        self.uplink.stop()
        self.events.stop()
        self.db.close()
        self.predictions.close()
        self.started = False

    def __enter__(self) -> ClinicGateway:
        return self.start() if not self.started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- health ----------------------------------------------------------------------------------

    def _status(self) -> tuple[str, int, str]:
        depth = self.outbox.depth(CLOUD)
        if not self.uplink.healthy:
            return "degraded", depth, f"cloud unreachable: {self.uplink.last_error}"[:200]
        return "online", depth, ""

    def health(self) -> dict[str, Any]:
        degraded = not (self.events.connected and self.uplink.healthy)
        return {
            "status": "degraded" if degraded else "ok",
            "site_id": self.config.site_id,
            "gateway_id": self.config.gateway_id,
            "broker_connected": self.events.connected,
            "cloud_healthy": self.uplink.healthy,
            "outbox": {CLOUD: self.outbox.depth(CLOUD), EVENTS: self.outbox.depth(EVENTS)},
            "scans": self.store.counts(),
        }

    def status(self) -> dict[str, Any]:
        """Health plus what needs an operator: the scans the uplink gave up on."""
        return {**self.health(), "dead_letters": self.dead_letters.listing()}

    def metrics_page(self) -> tuple[bytes, str]:
        return self.metrics.render(), self.metrics.content_type
