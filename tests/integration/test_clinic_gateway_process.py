"""`edgeward edge clinic` as a real process: starts, serves, dies, comes back, stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import GatewayStatus, decode
from tests.integration.support.clinic_gateway import AUTH, TOKEN
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.mqtt_collector import Collector
from tests.integration.support.standin_pipeline import fundus_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt

EDGEWARD = Path(sys.executable).with_name("edgeward")


@pytest.fixture
def config_file(tmp_path: Path, broker: MosquittoBroker, quick_registry: Path) -> Path:
    cloud_port = GradingServer().port  # nobody listens: the uplink just waits
    config = {
        "role": "clinic_gateway",
        "site_id": "clinic-proc",
        "gateway_id": "gw-proc",
        "data_dir": str(tmp_path / "data"),
        "watch_dir": str(tmp_path / "inbox"),
        "watch_poll_s": 0.1,
        "registry_dir": str(quick_registry),
        "backend": "onnx-cpu",
        "http": {"host": "127.0.0.1", "port": 0},
        "grpc_port": 0,
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive_s": 5},
        "cloud": {"grpc_target": f"127.0.0.1:{cloud_port}", "backoff_max_s": 1},
    }
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Gateway:
    """One `edgeward edge clinic` process and what it wrote about its ports."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.info_path = config.parent / "data" / "gateway.json"
        self.proc = subprocess.Popen(
            [str(EDGEWARD), "edge", "clinic", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            assert self.proc.poll() is None, self.output()
            return (
                self.info_path.exists()
                and json.loads(self.info_path.read_text())["pid"] == self.proc.pid
            )

        wait_for(ready, 60, "gateway process ready")
        self.http_port = json.loads(self.info_path.read_text())["http_port"]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10, headers=AUTH)

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""

    def kill(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(30)


@pytest.fixture
def env() -> dict[str, str]:
    return {
        **os.environ,
        "EDGEWARD_SITE_KEY": "process-test-key-of-at-least-32-bytes",
        "EDGEWARD_GATEWAY_TOKEN": f"camera-test={TOKEN}",
    }


@pytest.fixture
def gateways(config_file: Path, env: dict[str, str]) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gw in started:
        if gw.proc.poll() is None:
            gw.proc.kill()
            gw.proc.wait(10)


def test_gateway_process_serves_survives_a_crash_and_stops_cleanly(
    config_file, env, gateways, broker
):
    status_topic = topics.gateway_status("clinic", "gw-proc")
    collector = Collector(MqttSettings(host=broker.host, port=broker.port), status_topic).start()

    def state() -> str | None:
        msgs = collector.on(status_topic)
        return decode(bytes(msgs[-1].payload), GatewayStatus).state if msgs else None

    try:
        first = Gateway(config_file, env)
        gateways.append(first)
        wait_for(lambda: state() == "online", 20, "online status")
        with first.client() as client:
            good = client.post("/scans", content=fundus_jpeg(1), headers={"X-Laterality": "OS"})
            bad = client.post("/scans", content=b"%PDF-1.4 not a scan")
            assert (good.status_code, bad.status_code) == (202, 202)
            good_id, bad_id = good.json()["scan_id"], bad.json()["scan_id"]

            def judged() -> bool:  # the worker judges them in turn: the bad one after the good
                verdicts = [client.get(f"/scans/{i}").json()["verdict"] for i in (good_id, bad_id)]
                return "pending" not in verdicts

            wait_for(judged, 30, "both scans judged")
            verdict = client.get(f"/scans/{good_id}").json()["verdict"]
            assert client.get(f"/scans/{bad_id}").json()["verdict"] == "rejected"
            assert (
                'edgeward_clinic_stage_seconds_count{stage="quality"}'
                in client.get("/metrics").text
            )
        assert first.kill(signal.SIGKILL) == -signal.SIGKILL
        wait_for(lambda: state() == "offline", 20, "Last Will: offline")

        second = Gateway(config_file, env)
        gateways.append(second)
        # Up again: `degraded` too, since the scan in its outbox finds no cloud listening.
        wait_for(lambda: state() in ("online", "degraded"), 30, "up again after the crash")
        with second.client() as client:
            # Records made before the crash are still there, judged once.
            assert client.get(f"/scans/{good_id}").json()["verdict"] == verdict
            assert client.get("/healthz").json()["scans"]["judged"] == 2
        assert second.kill(signal.SIGTERM) == 0
        wait_for(lambda: state() == "offline", 20, "offline on SIGTERM")
        last = decode(bytes(collector.on(status_topic)[-1].payload), GatewayStatus)
        assert last.detail == "stopped"
    finally:
        collector.stop()


def test_gateway_without_site_key_refuses_to_start_and_says_which_variable(config_file, env):
    env = {k: v for k, v in env.items() if k != "EDGEWARD_SITE_KEY"}
    done = subprocess.run(
        [str(EDGEWARD), "edge", "clinic", "--config", str(config_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "EDGEWARD_SITE_KEY" in done.stderr
    assert "Traceback" not in done.stderr
