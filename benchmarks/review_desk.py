"""Review-desk page latency with a full queue: `python -m benchmarks.review_desk`.

Serves the desk (uvicorn, one thread, SQLite cloud store) over N synthetic open cases, logs in
over HTTP and times each page a reviewer uses: the queue (first and last page), a case, its
scan and Grad-CAM images, the JSON queue, and a decision followed by the next case. Prints
p50/p95/max per page in ms and writes them as JSON. Target (issue 16): p95 < 200 ms at 1,000.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from cloud.review_desk.samples import fill_queue
from cloud.review_desk.server import DeskServer
from cloud.store import CloudStore

PASSWORD = "benchmark password"


class _Client:
    """One keep-alive connection with the session cookie, like a browser tab."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.base = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, self.base + path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";")[0].strip('"')
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:200]!r}")
        is_text = resp.getheader("content-type", "").startswith(("text", "application/json"))
        return resp.status, data.decode() if is_text else ""


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    if match is None:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(0.95 * len(ordered)) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def run(cases: int, repeat: int, decisions: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = CloudStore(tmp)
        queued = fill_queue(store, cases)
        with DeskServer(store) as server:
            server.desk.accounts.add("bench", "reviewer", PASSWORD)
            client = _Client(server.url)
            _, login_page = client.request("GET", "/login")
            client.request(
                "POST",
                "/login",
                {"csrf": _csrf(login_page), "name": "bench", "password": PASSWORD},
            )
            case_id = queued[len(queued) // 2].case_id
            last = max(1, -(-cases // 50))
            pages: dict[str, Callable[[], object]] = {
                "queue page 1": lambda: client.request("GET", "/"),
                f"queue page {last} (last)": lambda: client.request("GET", f"/?page_no={last}"),
                "case page": lambda: client.request("GET", f"/cases/{case_id}"),
                "scan image": lambda: client.request("GET", f"/cases/{case_id}/scan"),
                "grad-cam image": lambda: client.request("GET", f"/cases/{case_id}/gradcam.png"),
                "queue JSON": lambda: client.request("GET", "/api/queue"),
            }
            results = {name: _summary(_time(fn, repeat)) for name, fn in pages.items()}

            # a decision is a POST answered by a redirect to /next (then the case page above)
            samples = []
            for _ in range(decisions):
                _, html = client.request("GET", "/")
                match = re.search(r'href="[^"]*/cases/([0-9a-f]{32})"', html)
                assert match is not None
                cid = match.group(1)
                _, page = client.request("GET", f"/cases/{cid}")
                form = {"csrf": _csrf(page), "outcome": "no_referable", "note": ""}
                t0 = time.perf_counter()
                client.request("POST", f"/cases/{cid}/decision", form)
                client.request("GET", "/next")
                samples.append((time.perf_counter() - t0) * 1000)
            results["decision POST + /next"] = _summary(samples)
        store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=1000, help="open cases in the queue")
    p.add_argument("--repeat", type=int, default=100, help="requests per page")
    p.add_argument("--decisions", type=int, default=50, help="decisions timed")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    results = run(args.cases, args.repeat, args.decisions)
    print(f"review desk, {args.cases} open cases, {args.repeat} requests per page:")
    for name, s in results.items():
        print(f"  {name:28s} p50 {s['p50_ms']:7.2f} ms  p95 {s['p95_ms']:7.2f} ms  "
              f"max {s['max_ms']:7.2f} ms")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"cases": args.cases, "pages": results}, indent=2))
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
