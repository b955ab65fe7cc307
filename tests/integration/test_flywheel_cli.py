"""`edgeward cloud flywheel`: retraining and edge rollout have an operator's entry point."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml

from shared import topics
from shared.broker import MosquittoBroker
from shared.cli import main
from shared.messages import ModelUpdate, decode
from shared.mqtt import QOS
from tests.flywheel_support import add_version, registry_copy

TRIAGE = "fundus-triage"


def _cloud_config(tmp: Path, broker: MosquittoBroker | None, gateways: list[str]) -> Path:
    config: dict[str, object] = {"role": "cloud", "data_dir": str(tmp / "cloud")}
    if broker is not None:
        config["mqtt"] = {"host": broker.host, "port": broker.port}
    if gateways:
        config["grader"] = {"canary": {"gateways": gateways}}
    path = tmp / "cloud.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_edge_canary_without_gateways_says_where_to_name_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cloud_config(tmp_path, None, [])
    code = main(["cloud", "flywheel", "edge-canary", "--config", str(config), "--model", TRIAGE])
    assert code == 2
    assert "grader.canary.gateways" in capsys.readouterr().err


def test_retrain_waits_for_its_trigger_and_starts_nothing(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (TRIAGE,))
    config = _cloud_config(tmp_path, None, [])
    args = ["cloud", "flywheel", "retrain", "--config", str(config), "--model", TRIAGE]
    code = main([*args, "--registry", str(reg.root)])
    assert code == 0
    assert "not retraining (no drift and 0/200 new labels)" in capsys.readouterr().out
    assert [m.version for m in reg.versions(TRIAGE)] == ["1"]  # no challenger appeared


@pytest.mark.mqtt
def test_edge_canary_sends_the_challenger_to_the_configured_gateways(
    quick_registry: Path, tmp_path: Path, broker: MosquittoBroker
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (TRIAGE,))
    challenger = add_version(reg, TRIAGE)
    got: list[ModelUpdate] = []
    subscribed, received = threading.Event(), threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="gw-listener")
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got.append(decode(bytes(msg.payload), ModelUpdate))
        received.set()

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(topics.model_update("clinic", "clinic-a-gw1"), qos=QOS)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        config = _cloud_config(tmp_path, broker, ["clinic-a-gw1"])
        code = main(
            [
                "cloud", "flywheel", "edge-canary", "--config", str(config),
                "--registry", str(reg.root), "--model", TRIAGE, "--timeout", "1",
            ]
        )  # fmt: skip
        assert received.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    assert code == 0  # silent, not refused: an offline gateway gets it when it reconnects
    assert [(u.name, u.version, u.reason) for u in got] == [(TRIAGE, challenger.version, "canary")]
