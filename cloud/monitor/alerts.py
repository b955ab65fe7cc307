"""Drift alerts over MQTT (`topics.alert("drift")`, QoS 1)."""

from __future__ import annotations

import threading
import uuid

from shared import topics
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.messages import DriftAlert, DriftFinding
from shared.monitoring.check import DriftCheck
from shared.mqtt import QOS, connect, make_client


def alert_for(check: DriftCheck, model_version: str, scope: str) -> DriftAlert | None:
    """The alert a check warrants; None when nothing drifted."""
    if not check.alarm:
        return None
    findings = [
        DriftFinding(feature=r.feature, method=r.method, statistic=r.statistic, detail=r.detail)
        for r in check.drifted
    ]
    if check.concept.drifted:
        findings.append(
            DriftFinding(
                feature="reviewer_accuracy",
                method="accuracy",
                statistic=float(check.concept.recent_accuracy or 0.0),
                detail=check.concept.detail,
            )
        )
    return DriftAlert(
        sender=f"monitor-{scope}",
        model=check.model,
        model_version=model_version,
        scope=scope,
        window=max(1, check.n),
        findings=findings,
        concept_drift=check.concept.drifted,
        notes=check.notes,
    )


def publish_alert(settings: MqttSettings, alert: DriftAlert, timeout: float = 10.0) -> None:
    """Connect, publish one alert with QoS 1, wait for the broker's ack, disconnect."""
    client = make_client(settings, f"edgeward-monitor-{uuid.uuid4().hex[:8]}")
    ready = threading.Event()
    client.on_connect = lambda *_a: ready.set()
    connect(client, settings, persistent=False)
    try:
        if not ready.wait(timeout):
            raise EdgewardError(
                f"drift alert: no broker at {settings.host}:{settings.port} within "
                f"{timeout:.0f}s; start mosquitto or fix mqtt.host/port"
            )
        info = client.publish(topics.alert("drift"), alert.encode(), qos=QOS)
        info.wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
