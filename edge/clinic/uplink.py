"""Send gradable scans to the cloud grader in order, retrying with backoff, and store the result.

The head of the cloud outbox blocks the rest (FIFO): a scan is retried until the cloud answers
or rejects it for good. The cloud dedupes on the pseudonymous scan id, so a retry after a lost
answer grades nothing twice; the gateway records each result once (the outbox row goes away in
the same transaction that stores it).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import grpc

from edge.outbox import CLOUD, Outbox, OutboxItem
from shared.config.clinic import CloudUplink as CloudSettings
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from shared.security.grpc_tls import TlsFiles

log = logging.getLogger(__name__)

# The cloud understood the request and refuses it: retrying the same bytes cannot help. Every
# other code is retried: FAILED_PRECONDITION too, since the cloud uses it for "model not
# loaded yet", which passes.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}
MAX_MESSAGE = 256 * 1024 * 1024
PATIENT_REF_HEADER = "edgeward-patient-ref"

OnResult = Callable[[OutboxItem, pb.GradeResult], None]
OnRejected = Callable[[OutboxItem, str], None]


def call_metadata(item: OutboxItem) -> list[tuple[str, str]]:
    """gRPC metadata for one grading call: the patient's pseudonym lets the cloud relate
    scans of one patient (review, audits) without ever learning who it is."""
    ref = item.meta.get("patient_ref")
    return [(PATIENT_REF_HEADER, str(ref))] if ref else []


def backoff_delay(attempts: int, settings: CloudSettings) -> float:
    """Exponential backoff with jitter: initial * 2^(n-1), capped, +-20 %."""
    base = min(settings.backoff_max_s, settings.backoff_initial_s * 2 ** max(attempts - 1, 0))
    return float(base * random.uniform(0.8, 1.2))


class CloudUplink:
    def __init__(
        self,
        settings: CloudSettings,
        outbox: Outbox,
        on_result: OnResult,
        on_rejected: OnRejected,
        tls: TlsFiles | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self._on_result = on_result
        self._on_rejected = on_rejected
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.failing_since: float | None = None
        self.last_error = ""
        ms = int(settings.backoff_initial_s * 1000)
        # gRPC's own reconnect backoff would otherwise keep failing fast for up to 2 min after
        # the cloud is back; tie it to ours.
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.initial_reconnect_backoff_ms", ms),
            ("grpc.min_reconnect_backoff_ms", ms),
            ("grpc.max_reconnect_backoff_ms", int(settings.backoff_max_s * 1000)),
        ]
        # With `tls`, retinal images cross the network encrypted and the gateway's certificate
        # (CN = its site id) is its identity at the cloud; without, only for a loopback cloud.
        self._channel = (
            grpc.secure_channel(settings.grpc_target, tls.channel_credentials(), options=options)
            if tls is not None
            else grpc.insecure_channel(settings.grpc_target, options=options)
        )
        self._stub = pb_grpc.CloudGraderStub(self._channel)
        self._thread = threading.Thread(target=self._run, name="clinic-uplink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._channel.close()

    def get_result(self, scan_id: str) -> pb.GradeResult:
        """The cloud's stored result (with the reviewer's decision once made); raises
        grpc.RpcError (NOT_FOUND, UNAVAILABLE, ...) for the caller to retry later."""
        result: pb.GradeResult = self._stub.GetResult(
            pb.ResultQuery(scan_id=scan_id), timeout=self.settings.timeout_s
        )
        return result

    @property
    def healthy(self) -> bool:
        return self.failing_since is None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                head = self.outbox.peek(CLOUD, limit=1)
                if not head:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self._send(head[0])
            except Exception:  # keep the uplink alive whatever one item does
                log.exception("cloud uplink: unexpected error; retrying")
                self._stop.wait(1.0)

    def _send(self, item: OutboxItem) -> None:
        request = pb.GradeRequest.FromString(item.payload)
        try:
            result: pb.GradeResult = self._stub.Grade(
                request, timeout=self.settings.timeout_s, metadata=call_metadata(item)
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            message = f"{code.name}: {detail}"
            if code in PERMANENT:
                log.error("cloud rejected scan %s for good: %s", request.scan_id, message)
                self._on_rejected(item, message)
                return
            self._failed(item, message)
            return
        if result.scan_id and result.scan_id != request.scan_id:
            self._failed(
                item, f"cloud answered for scan {result.scan_id!r}, sent {request.scan_id!r}"
            )
            return
        self.failing_since, self.last_error = None, ""
        self._on_result(item, result)

    def _failed(self, item: OutboxItem, message: str) -> None:
        attempts = self.outbox.note_failure(item, message)
        delay = backoff_delay(attempts, self.settings)
        if self.failing_since is None:
            self.failing_since = time.time()
        self.last_error = message
        log.warning(
            "cloud %s: %s (attempt %d); scan %s waits, retry in %.1fs",
            self.settings.grpc_target,
            message,
            attempts,
            item.key,
            delay,
        )
        self._stop.wait(delay)
