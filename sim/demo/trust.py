"""The demo's trust setup (the same code `edgeward certs` runs): the production broker with a
certificate per identity, the cloud ingress's API keys, the gateways' mTLS uplink through
`edgeward grpc-tls`; and the probes whose checks in the report show each defence is on."""

from __future__ import annotations

import atexit
import queue
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from shared import topics
from shared.broker import CLOUD_IDENTITY, MosquittoBroker, free_port
from shared.mqtt import QOS, connect, make_client
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from shared.security.apikeys import new_key
from shared.security.grpc_tls import TlsFiles
from shared.security.pki import CA_CERT, init_ca, issue_device, issue_server
from sim.demo.clinics import ClinicHandle
from sim.demo.facts import Check
from sim.demo.supervisor import Process, Supervisor, edgeward_cmd, wait_output


def pki_dir(out: Path) -> Path:
    return out / "mosquitto" / "pki"


def production_broker(out: Path, clinics: int, junctions: list[str]) -> MosquittoBroker:
    """deploy/mosquitto's broker with a fresh CA and one certificate per identity (the cloud,
    each clinic gateway pinned to its site, each junction) under out/mosquitto/pki."""
    sites = {f"gw-clinic-{i + 1}": f"clinic-{i + 1}" for i in range(clinics)}
    broker = MosquittoBroker.with_production_config(
        out / "mosquitto", [CLOUD_IDENTITY, *junctions], clinic_sites=sites
    )
    assert broker.production is not None and broker.production.pki_dir == pki_dir(out)
    return broker


def write_api_keys(path: Path, clinics: int) -> tuple[str, int]:
    """The cloud ingress's key file, as `edgeward certs api-key ROLE NAME` makes it (hashes
    only): the console reads the review queue as a reviewer; each clinic site has its own key.
    Returns the console's key and how many keys the file holds."""
    reviewer_key, line = new_key("reviewer", "demo-console")
    lines = [line] + [new_key("site", f"clinic-{i + 1}")[1] for i in range(clinics)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return reviewer_key, len(lines)


def probe_api_keys(cloud_http: int) -> Check:
    """The ingress must refuse a request that carries no key."""
    url = f"http://127.0.0.1:{cloud_http}/v1/review?status=all"
    answer = _status_of(url)
    return Check(
        "cloud ingress refuses a request without an API key",
        answer == "401",
        f"GET /v1/review without a key answered {answer}; the console reads it with its "
        "reviewer key",
    )


# ---- the gateway -> cloud uplink: gRPC over mutual TLS ----


class Uplink:
    """A CA, the cloud's server certificate and one client certificate per clinic site (CN =
    site id), made with `edgeward certs`' code in a private temp dir removed when the demo
    exits, and the `edgeward grpc-tls` front the gateways dial instead of Ray Serve's plain
    gRPC port. The front keeps its port across cloud restarts, so the gateways never move."""

    SERVER = "cloud"

    def __init__(self, clinics: int) -> None:
        self.pki = Path(tempfile.mkdtemp(prefix="edgeward-demo-uplink-pki-"))
        atexit.register(shutil.rmtree, self.pki, True)  # private keys leave with the demo
        init_ca(self.pki)
        issue_server(self.pki, self.SERVER, dns=["localhost"], ips=["127.0.0.1"])
        self.sites = [f"clinic-{i + 1}" for i in range(clinics)]
        for site in self.sites:
            issue_device(self.pki, site)
        self.port = free_port()
        self.upstream: int | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tls(self, site: str) -> TlsFiles:
        return TlsFiles(self.pki / CA_CERT, self.pki / f"{site}.crt", self.pki / f"{site}.key")

    def clinic_settings(self, site: str) -> dict[str, Any]:
        """The `cloud:` block of a clinic gateway's config (grpc_target and tls)."""
        files = self.tls(site)
        return {
            "grpc_target": self.target,
            "tls": {
                "ca_file": str(files.ca_file),
                "cert_file": str(files.cert_file),
                "key_file": str(files.key_file),
            },
        }

    def start_front(self, sup: Supervisor, upstream_grpc: int, cloud_data: Path) -> Process:
        """(Re)start the front when it is not running towards `upstream_grpc` yet."""
        running = sup.children.get(FRONT)
        if running is not None and running.alive and self.upstream == upstream_grpc:
            return running
        sup.stop(FRONT)
        server = self.tls(self.SERVER)
        proc = sup.start(
            FRONT,
            edgeward_cmd(
                "grpc-tls",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--upstream",
                f"127.0.0.1:{upstream_grpc}",
                "--ca",
                str(server.ca_file),
                "--cert",
                str(server.cert_file),
                "--key",
                str(server.key_file),
                "--data-dir",
                str(cloud_data),
            ),
        )
        wait_output(proc, "gRPC mTLS front on", 60.0, "gRPC mTLS front")
        self.upstream = upstream_grpc
        return proc

    def probe(self) -> list[Check]:
        """Without a client certificate no call gets in, while one with a certificate does
        (so the refusal is the front's, not a dead port); and a site cannot act as another."""
        me = self.sites[0]
        no_cert = grpc.ssl_channel_credentials(root_certificates=(self.pki / CA_CERT).read_bytes())
        refused = _grpc_code(grpc.secure_channel(self.target, no_cert), "")
        mine = self.tls(me).channel_credentials()
        answered = _grpc_code(grpc.secure_channel(self.target, mine), me)
        checks = [
            Check(
                "gateway->cloud gRPC is mutual TLS: no client certificate, no call",
                refused == "UNAVAILABLE" and answered != "UNAVAILABLE",
                f"at {self.target}, a TLS call without a client certificate ended {refused} "
                f"(handshake refused); the same call with {me}'s certificate was answered "
                f"({answered})",
            )
        ]
        if len(self.sites) > 1:
            other = self.sites[1]
            as_other = _grpc_code(grpc.secure_channel(self.target, mine), other)
            checks.append(
                Check(
                    "a clinic's certificate cannot grade as another site",
                    as_other == "PERMISSION_DENIED",
                    f"{me}'s certificate sending site_id {other} got {as_other}",
                )
            )
        return checks


FRONT = "grpc-tls"


def _grpc_code(channel: grpc.Channel, site: str) -> str:
    """The status code a Grade call over `channel` ends with (OK when it was answered). The
    body is empty: a cloud that gets the call refuses it without grading or keeping anything."""
    stub = pb_grpc.CloudGraderStub(channel)
    request = pb.GradeRequest(scan_id="trust-probe", content_type="image/png", site_id=site)
    try:
        stub.Grade(request, timeout=10)
    except grpc.RpcError as exc:
        return exc.code().name if isinstance(exc, grpc.Call) else type(exc).__name__
    finally:
        channel.close()
    return "OK"


# ---- the broker's ACL and the gateways' tokens, seen from outside ----


def probe_broker_acl(broker: MosquittoBroker, junctions: list[str]) -> Check | None:
    """A junction's certificate publishes a plan for another junction; the other junction
    (listening with its own certificate, which may read its plan) must never receive it."""
    if len(junctions) < 2:
        return None
    forger, victim = junctions[0], junctions[1]
    topic = topics.traffic_plan(victim)
    forged = f"forged by {forger}: not a plan".encode()  # no harm even if delivered
    got: queue.Queue[bytes] = queue.Queue()
    granted: queue.Queue[bool] = queue.Queue()
    listener = make_client(broker.client_settings(victim), f"acl-probe-{victim}", will=None)
    listener.on_connect = lambda c, *_: c.subscribe(topic, QOS)
    listener.on_subscribe = lambda c, u, mid, codes, props: granted.put(
        not any(code.is_failure for code in codes)
    )
    listener.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
    sender = make_client(broker.client_settings(forger), f"acl-probe-{forger}", will=None)
    try:
        connect(listener, broker.client_settings(victim), persistent=False)
        connect(sender, broker.client_settings(forger), persistent=False)
        may_read = granted.get(timeout=10)
        deadline = time.monotonic() + 10
        while not sender.is_connected() and time.monotonic() < deadline:
            time.sleep(0.1)
        sender.publish(topic, forged, qos=QOS).wait_for_publish(timeout=5)
        time.sleep(3.0)  # a forged plan the broker let through would be here by now
        received = []
        while not got.empty():
            received.append(got.get())
    except (OSError, RuntimeError, ValueError, queue.Empty) as exc:
        return Check("the broker's ACL refuses a forged plan", False, f"probe failed: {exc}")
    finally:
        for client in (listener, sender):
            client.loop_stop()
            client.disconnect()
    leaked = forged in received
    return Check(
        "a junction's certificate cannot publish another junction's plan (deploy/mosquitto ACL)",
        may_read and not leaked,
        f"{forger} published on {topic}; {victim}, subscribed with its own certificate "
        f"(granted: {may_read}), received {len(received)} message(s), the forged one "
        f"{'INCLUDED' if leaked else 'not among them'}",
    )


def probe_gateway_token(url: str) -> Check:
    """A clinic gateway's upload API must refuse a scan without its bearer token."""
    req = urllib.request.Request(
        f"{url}/scans", data=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"}
    )
    answer = _status_of(req)
    return Check(
        "a clinic gateway refuses an upload without a token",
        answer == "401",
        f"POST {url}/scans without a token answered {answer}; the feeder sends its token",
    )


def summary(broker_port: int, uplink: Uplink, keys: int, cloud_http: int) -> str:
    """One line for the console and the report: what protects each link in this run."""
    return (
        f"trust on: MQTT TLS-only on 127.0.0.1:{broker_port} with a certificate per identity and "
        f"deploy/mosquitto's ACL; gateway->cloud gRPC over mutual TLS via `edgeward grpc-tls` on "
        f"{uplink.target} (certificate CN = site id; Ray Serve's plain gRPC stays on loopback "
        f"behind it); cloud HTTP on port {cloud_http} with API keys ({keys} keys, hashes only); "
        "clinic upload APIs on loopback with bearer tokens"
    )


def probe_links(
    uplink: Uplink, broker: MosquittoBroker, junctions: list[str], clinics: list[ClinicHandle]
) -> list[Check]:
    """The report's checks that each link refuses what it should, asked from outside."""
    checks = uplink.probe()
    acl = probe_broker_acl(broker, junctions)
    if acl is not None:
        checks.append(acl)
    if clinics:
        checks.append(probe_gateway_token(clinics[0].base_url))
    return checks


def _status_of(request: str | urllib.request.Request) -> str:
    """The HTTP status a request got, as text, or what went wrong when there was no answer."""
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except OSError as exc:
        return f"nothing ({exc})"
