"""The demo's trust setup: the production broker with a certificate per identity, and the
cloud ingress's API keys (the same code `edgeward certs` runs)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from shared.broker import CLOUD_IDENTITY, MosquittoBroker
from shared.security.apikeys import new_key
from sim.demo.facts import Check


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
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            answer = str(resp.status)
    except urllib.error.HTTPError as exc:
        answer = str(exc.code)
    except OSError as exc:
        answer = f"nothing ({exc})"
    return Check(
        "cloud ingress refuses a request without an API key",
        answer == "401",
        f"GET /v1/review without a key answered {answer}; the console reads it with its "
        "reviewer key",
    )
