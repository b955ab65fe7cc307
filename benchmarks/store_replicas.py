"""Two (or more) cloud replicas on one database under concurrent load: is any review case lost?

    .venv/bin/python -m benchmarks.store_replicas [--replicas 2] [--scans 300] [--threads 4]
        [--database sqlite|postgresql|URL]

Each replica is its own process running the ingress's grading flow (`cloud.service.
GradingService`, the code a Serve ingress replica runs) on its own `CloudStore` connected to the
SAME database: an SQLite file in WAL mode, or a PostgreSQL (`postgresql` starts a throwaway
cluster on a loopback port, as the tests do). The grader call is a fixed, uncertain answer, so
every scan needs review and the database, not the model, is what is loaded. Every replica sends
its own scans and, interleaved, a shared set of "contended" scan ids that every replica sends too
(a gateway retrying against another replica). Expected: one result and one review case per
distinct scan id. Prints JSON: cases expected, found, lost, duplicated; errors; scans/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class ReplicaLoad:
    replica: int
    url: str
    data_dir: str
    own_scans: int
    contended_scans: int
    threads: int


def _body() -> bytes:
    img = np.random.default_rng(3).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("cv2 could not encode the benchmark's PNG")
    return buf.tobytes()


def _replica(load: ReplicaLoad, out: Any) -> None:
    """One replica process: its own store and service, `threads` concurrent callers."""
    from cloud.grader import GradeJob
    from cloud.grading import Grading
    from cloud.service import GradeInput, GradingService
    from cloud.store import CloudStore

    async def uncertain(job: GradeJob) -> Grading:
        return Grading([0.2, 0.3, 0.3, 0.1, 0.1], 0.5, 1, "bench:1", {"referable": 0.5})

    store = CloudStore(load.data_dir, url=load.url)
    service = GradingService(store, uncertain, (0.3, 0.7), "bench")
    body = _body()
    # own scans, with the contended ones interleaved so both replicas hit them at the same time
    ids = [f"r{load.replica}-{i}" for i in range(load.own_scans)]
    for i in range(load.contended_scans):
        ids.insert(min(len(ids), 1 + i * max(1, len(ids) // max(1, load.contended_scans))), f"c{i}")
    errors: list[str] = []
    created = 0
    lock = threading.Lock()

    def caller(k: int) -> None:
        nonlocal created
        for scan_id in ids[k :: load.threads]:
            inp = GradeInput(scan_id, body, "image/png", site_id=f"site-{load.replica}")
            try:
                _, replayed = asyncio.run(service.grade(inp, "bench"))
            except Exception as exc:  # counted and reported: a lost case shows up as an error
                with lock:
                    errors.append(f"{scan_id}: {type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                created += 0 if replayed else 1

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(load.threads)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    store.close()
    out.put(
        {
            "replica": load.replica,
            "sent": len(ids),
            "created": created,
            "errors": errors,
            "wall_s": wall,
        }
    )


def _count(url: str, data_dir: str) -> dict[str, int]:
    from sqlalchemy import text

    from cloud.store import CloudStore

    store = CloudStore(data_dir, url=url)
    try:
        with store.engine.connect() as conn:
            cases = conn.execute(
                text("SELECT scan_id, COUNT(*) FROM review_cases GROUP BY scan_id")
            ).all()
            results = conn.execute(text("SELECT COUNT(*) FROM results")).scalar_one()
    finally:
        store.close()
    return {
        "case_rows": sum(int(n) for _, n in cases),
        "distinct_case_scans": len(cases),
        "results": int(results),
    }


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A database URL every replica can open: `sqlite`, `postgresql` (a throwaway cluster) or
    a URL as given."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'cloud.sqlite3'}"
    elif kind == "postgresql":
        from tests.postgres_support import postgres_cluster

        with postgres_cluster() as cluster:
            yield cluster.new_database()
    else:
        yield kind


def run(
    *,
    database_kind: str = "sqlite",
    replicas: int = 2,
    scans: int = 300,
    threads: int = 4,
    contended: int = 40,
) -> dict[str, Any]:
    """Start `replicas` processes on one database, wait, count review cases against expected."""
    if replicas < 2:
        raise ValueError(f"replicas {replicas}: the question needs at least 2 on one database")
    load_avg = [os.getloadavg()[0]]
    with (
        tempfile.TemporaryDirectory(prefix="edgeward-replicas-") as tmp,
        database(database_kind, Path(tmp)) as url,
    ):
        ctx = mp.get_context("spawn")  # a fresh interpreter per replica, as Serve's processes
        _count(url, tmp)  # opening the store migrates it once: the replicas then race on rows only
        out = ctx.Queue()
        loads = [
            ReplicaLoad(r, url, tmp, scans // replicas, contended, threads) for r in range(replicas)
        ]
        procs = [ctx.Process(target=_replica, args=(ld, out)) for ld in loads]
        began = time.perf_counter()
        for p in procs:
            p.start()
        reports = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        wall = time.perf_counter() - began
        counted = _count(url, tmp)
    load_avg.append(os.getloadavg()[0])
    expected = sum(ld.own_scans for ld in loads) + contended
    sent = sum(r["sent"] for r in reports)
    errors = [e for r in reports for e in r["errors"]]
    return {
        "database": url.split(":", 1)[0]
        if database_kind not in {"sqlite", "postgresql"}
        else database_kind,
        "replicas": replicas,
        "threads_per_replica": threads,
        "host": {"cpus": os.cpu_count(), "load_avg_1m": load_avg},
        "requests_sent": sent,
        "cases_expected": expected,
        "cases_found": counted["distinct_case_scans"],
        "cases_lost": expected - counted["distinct_case_scans"],
        "cases_duplicated": counted["case_rows"] - counted["distinct_case_scans"],
        "results_stored": counted["results"],
        "created_reported": sum(r["created"] for r in reports),
        "errors": len(errors),
        "error_samples": errors[:5],
        # from the replicas' own clocks: process start and imports are not the database's time
        "requests_per_s": sent / max(r["wall_s"] for r in reports),
        "wall_s_with_start": wall,
        "per_replica": [
            {k: v for k, v in asdict(ld).items() if k not in {"url", "data_dir"}}
            | {"sent": r["sent"], "created": r["created"], "errors": len(r["errors"])}
            for ld, r in zip(loads, sorted(reports, key=lambda r: r["replica"]), strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, postgresql or a URL")
    parser.add_argument("--replicas", type=int, default=2, help="replica processes (>= 2)")
    parser.add_argument("--scans", type=int, default=300, help="own scans, split among replicas")
    parser.add_argument("--contended", type=int, default=40, help="scan ids every replica sends")
    parser.add_argument("--threads", type=int, default=4, help="concurrent callers per replica")
    args = parser.parse_args()
    figures = run(
        database_kind=args.database,
        replicas=args.replicas,
        scans=args.scans,
        threads=args.threads,
        contended=args.contended,
    )
    print(json.dumps(figures, indent=2))
    raise SystemExit(1 if figures["cases_lost"] or figures["cases_duplicated"] else 0)


if __name__ == "__main__":
    main()
