"""A real PostgreSQL for tests: its own cluster (initdb, pg_ctl) in a temp dir on a free port.

Debian's `postgresql` package provides the binaries (`make postgresql` installs it). initdb
refuses to run as root, so as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.broker import free_port

USER = "edgeward"


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed; run `make postgresql` "
            "(apt-get install postgresql) and rerun the tests"
        )
    return found


@dataclass(frozen=True)
class PgCluster:
    port: int
    directory: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this cluster: its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_cluster() -> Iterator[PgCluster]:
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = Path(tempfile.mkdtemp(prefix="edgeward-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(
            _binary("initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8"
        )
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            _binary("pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-o", options, "-w", "start"
        )
    except subprocess.CalledProcessError as exc:
        log = (tmp / "log").read_text() if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr}\n{log}") from None
    try:
        yield PgCluster(port, tmp)
    finally:
        subprocess.run(
            [*prefix, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,  # already stopped is fine; the folder goes either way
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(tmp, ignore_errors=True)
