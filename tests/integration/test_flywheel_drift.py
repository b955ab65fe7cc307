"""Drift on real scenario scans through the real triage model (ONNX Runtime), both directions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import pytest

from cloud.monitor.alerts import alert_for, publish_alert
from cloud.monitor.metrics import DriftMetrics
from cloud.monitor.report import render_report
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import DriftAlert, decode
from shared.monitoring.check import DriftCheck, build_reference, check_drift
from shared.monitoring.prediction_log import PredictionLog
from shared.registry import Registry
from sim.flywheel.scenarios import feed
from tests.integration.support.mqtt_collector import Collector
from tests.waiting import wait_for

TRIAGE = "fundus-triage"
N = 120
COLOUR = {"red_green_ratio", "blue_green_ratio"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def logs(quick_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, seed in (("same", 101), ("new-camera", 202)):
        path = tmp_path_factory.mktemp(name) / "log.db"
        log = PredictionLog(path, b"test-key")
        assert feed(log, quick_registry, TRIAGE, name, n=N, seed=seed) == N
        log.close()
        out[name] = path
    return out


def _check(quick_registry: Path, path: Path) -> DriftCheck:
    rows = PredictionLog(path, b"test-key").rows(TRIAGE)
    manifest = Registry(quick_registry).champion(TRIAGE)
    assert manifest is not None
    ref = build_reference(manifest.extra, rows, baseline=0)  # manifest reference only
    return check_drift(TRIAGE, rows, ref, window=N)


def test_same_distribution_raises_no_drift(quick_registry: Path, logs: dict[str, Path]) -> None:
    check = _check(quick_registry, logs["same"])
    assert {r.feature for r in check.results} >= COLOUR | {"brightness", "confidence"}
    assert all(r.method == "ks" and r.n == N for r in check.results)
    assert check.drifted == [], [r.detail for r in check.drifted]
    assert alert_for(check, f"{TRIAGE}:1", "cloud") is None


def test_new_camera_with_colour_cast_raises_drift(
    quick_registry: Path, logs: dict[str, Path]
) -> None:
    check = _check(quick_registry, logs["new-camera"])
    drifted = {r.feature for r in check.drifted}
    assert drifted >= COLOUR | {"brightness"}, [r.detail for r in check.results]
    metrics = DriftMetrics()
    metrics.update(check)
    text = metrics.exposition().decode()
    assert 'edgeward_drift_detected{feature="red_green_ratio",model="fundus-triage"} 1.0' in text


@pytest.mark.mqtt
def test_drift_alert_reaches_subscribers_over_mqtt(
    quick_registry: Path, logs: dict[str, Path], broker: MosquittoBroker
) -> None:
    settings = MqttSettings(host=broker.host, port=broker.port)
    collector = Collector(settings, topics.alert("drift")).start()
    try:
        alert = alert_for(_check(quick_registry, logs["new-camera"]), f"{TRIAGE}:1", "gw-1")
        assert alert is not None
        publish_alert(settings, alert)
        wait_for(lambda: collector.on(topics.alert("drift")), what="drift alert delivered")
        got = decode(bytes(collector.on(topics.alert("drift"))[0].payload), DriftAlert)
    finally:
        collector.stop()
    assert got.model == TRIAGE and got.scope == "gw-1" and got.window == N
    assert {f.feature for f in got.findings} >= COLOUR


def test_drift_report_renders_charts_for_the_shift(
    quick_registry: Path, logs: dict[str, Path], tmp_path: Path
) -> None:
    log = PredictionLog(logs["new-camera"], b"test-key")
    report = render_report(log, Registry(quick_registry), TRIAGE, tmp_path / "r", window=60)
    page = report.html.read_text()
    assert "DRIFT DETECTED" in page
    assert {p.name for p in report.charts} >= {"histograms.png", "drift_over_time.png"}
    for chart in report.charts:
        assert chart.name in page
        image = cv2.imread(str(chart))
        assert image is not None and image.shape[0] > 100


def test_monitor_report_command_prints_the_verdict_and_writes_the_page(
    quick_registry: Path, logs: dict[str, Path], tmp_path: Path
) -> None:
    cmd = [str(REPO / ".venv/bin/edgeward"), "monitor", "report", "--log", str(logs["same"]),
           "--registry", str(quick_registry), "--model", TRIAGE,
           "--out", str(tmp_path / "r")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "fundus-triage: no drift over the last 120" in done.stdout
    assert (tmp_path / "r" / "index.html").exists()


def test_monitor_report_on_a_missing_log_says_what_to_give(tmp_path: Path) -> None:
    cmd = [str(REPO / ".venv/bin/edgeward"), "monitor", "report", "--log", str(tmp_path / "x.db"),
           "--model", TRIAGE, "--out", str(tmp_path / "r")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert f"prediction log {tmp_path / 'x.db'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
