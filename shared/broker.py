"""Run a real mosquitto on a free loopback port: for tests, the demo and local development."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.security.pki import init_ca, issue_device, issue_server

# The production config and ACL; `MosquittoBroker(production=...)` runs exactly these.
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
CLINIC_SITES_MARKER = "# --- clinic sites ---"
CLOUD_IDENTITY = "edgeward-cloud"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise EdgewardError(
            "mosquitto is not installed: run `make setup` or `apt-get install mosquitto`"
        )
    return found


class ProductionBroker:
    """What `deploy/mosquitto/` needs filled in for a local run: certificates and clinic sites.

    `pki_dir` holds `ca.crt` and `broker.crt`/`broker.key` valid for 127.0.0.1 (`make_pki`
    makes them); `clinic_sites` maps each clinic gateway id to its site for the ACL.
    """

    def __init__(self, pki_dir: Path, clinic_sites: dict[str, str] | None = None) -> None:
        self.pki_dir = pki_dir
        self.clinic_sites = clinic_sites or {}

    @staticmethod
    def make_pki(pki_dir: Path, identities: list[str]) -> Path:
        """A CA, a broker certificate for 127.0.0.1, and a client certificate per identity."""
        init_ca(pki_dir, "edgeward test CA")
        issue_server(pki_dir, "broker", dns=["localhost"], ips=["127.0.0.1"])
        for identity in identities:
            issue_device(pki_dir, identity)
        return pki_dir

    def render_acl(self) -> str:
        text = (DEPLOY_DIR / "edgeward.acl").read_text()
        head, found, _ = text.partition(CLINIC_SITES_MARKER)
        if not found:
            raise EdgewardError(
                f"{DEPLOY_DIR / 'edgeward.acl'} lacks the line {CLINIC_SITES_MARKER!r}; "
                "restore it above the per-clinic blocks"
            )
        blocks = [
            f"user {gw}\ntopic readwrite edgeward/v1/clinic/{site}/{gw}/verdict\n"
            for gw, site in sorted(self.clinic_sites.items())
        ]
        return head + found + "\n" + "\n".join(blocks)

    def render_conf(self, port: int, host: str, workdir: Path, persistence: bool) -> list[str]:
        """deploy/mosquitto/mosquitto.conf with only the port, address and paths rewritten."""
        acl = workdir / "edgeward.acl"
        acl.write_text(self.render_acl())
        local = {
            "listener": f"{port} {host}",
            "cafile": str(self.pki_dir / "ca.crt"),
            "certfile": str(self.pki_dir / "broker.crt"),
            "keyfile": str(self.pki_dir / "broker.key"),
            "acl_file": str(acl),
            "persistence": "true" if persistence else "false",
            "persistence_location": f"{workdir}/",
            "autosave_interval": "1",
        }
        lines = []
        for line in (DEPLOY_DIR / "mosquitto.conf").read_text().splitlines():
            key = line.split(" ", 1)[0]
            lines.append(f"{key} {local[key]}" if key in local else line)
        return lines


class MosquittoBroker:
    """A mosquitto process bound to 127.0.0.1; stop() and start() again keep the same port.

    With `users`, anonymous access is off and each user/password pair may connect; with
    `persistence`, queued QoS 1 messages for persistent sessions survive a restart. With
    `production`, it runs deploy/mosquitto/ (TLS, client certificates, the ACL) instead.
    """

    def __init__(
        self,
        port: int | None = None,
        users: dict[str, str] | None = None,
        persistence: bool = True,
        workdir: Path | None = None,
        production: ProductionBroker | None = None,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.users = users or {}
        self.persistence = persistence
        self.production = production
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="edgeward-mqtt-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        if self.production is not None:
            lines = self.production.render_conf(
                self.port, self.host, self.workdir, self.persistence
            )
            if os.geteuid() == 0:
                lines.append("user root")
            conf = self.workdir / "mosquitto.conf"
            conf.write_text("\n".join(lines) + "\n")
            return conf
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user `mosquitto`, who cannot read our private temp dir.
            lines.append("user root")
        if self.users:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("")
            pwfile.chmod(0o600)
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pwfile), user, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {pwfile}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    @classmethod
    def with_production_config(
        cls,
        workdir: Path,
        identities: list[str],
        clinic_sites: dict[str, str] | None = None,
        persistence: bool = True,
    ) -> MosquittoBroker:
        """deploy/mosquitto/ with a fresh CA under workdir/pki and a certificate per identity.

        `identities`: every client id that connects (CLOUD_IDENTITY, junction ids, clinic
        gateway ids); `clinic_sites`: clinic gateway id -> its site. Clients connect with
        `client_settings(identity)`.
        """
        sites = clinic_sites or {}
        wanted = sorted({CLOUD_IDENTITY, *identities, *sites})
        pki = ProductionBroker.make_pki(workdir / "pki", wanted)
        return cls(
            workdir=workdir / "mqtt",
            persistence=persistence,
            production=ProductionBroker(pki, clinic_sites=sites),
        )

    def client_settings(self, identity: str) -> MqttSettings:
        """How a client with this identity connects: its certificate in production mode."""
        if self.production is None:
            return MqttSettings(host=self.host, port=self.port)
        pki = self.production.pki_dir
        return MqttSettings(
            host=self.host,
            port=self.port,
            tls=True,
            ca_file=pki / "ca.crt",
            cert_file=pki / f"{identity}.crt",
            key_file=pki / f"{identity}.key",
        )

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        if self.running:
            return self
        conf = self._write_config()
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EdgewardError(
                    f"mosquitto exited with {self._proc.returncode} on port {self.port}: "
                    f"{self.log_path.read_text()[-500:]}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise EdgewardError(f"mosquitto did not open port {self.port} within {timeout}s")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the broker (SIGTERM lets it save persistent sessions)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
