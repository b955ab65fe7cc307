"""Closed-loop HTTP load that costs the host little: one kept-alive `http.client` connection
per client thread.

On a 2-core host the load generator shares the cores with what it measures, so its own CPU per
request is taken from the server's throughput. httpx spent ~5 ms of CPU per grade request here
(`benchmarks.cloud_profile`'s load-client line), a third of a grade; the standard library's
client spends a fraction of that. Every path the cloud bench compares (Serve, the naive peer)
is driven by this one client, so the comparison stays fair.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from benchmarks.cloud_ceiling import run_clients

# (status, body) of one answered request, its latency in seconds
OnAnswer = Callable[[int, bytes, float], None]


def post_scans(
    url: str,
    scans: list[bytes],
    clients: int,
    per_client: int,
    on_answer: OnAnswer,
    *,
    timeout_s: float = 300.0,
) -> tuple[float, list[str]]:
    """`clients` threads each POST `per_client` JPEG scans in turn, each with a fresh scan id.

    Returns the wall time and the errors (a connection that fails is reopened for the next
    request). `on_answer` sees every answer, whatever its status.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"{url}: the load client speaks plain http://host:port/path")
    host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
    errors: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            for i in range(per_client):
                body = scans[(k + i) % len(scans)]
                headers = {"Content-Type": "image/jpeg", "X-Scan-Id": uuid.uuid4().hex}
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request opens a fresh connection
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                on_answer(resp.status, data, time.perf_counter() - t0)
        finally:
            conn.close()

    return run_clients(client, clients), errors
