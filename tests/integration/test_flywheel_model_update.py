"""Edge model updates over a real mosquitto: checksum verified before the swap."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cloud.flywheel.delivery import ModelDelivery, make_update
from cloud.flywheel.edge_rollout import rollback_edge, start_edge_canary
from edge.clinic.model_update import ModelSlot, ModelUpdater
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.mqtt import QOS
from shared.registry import Registry
from tests.flywheel_support import add_version, registry_copy
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
TRIAGE = "fundus-triage"


@pytest.fixture
def setup(
    quick_registry: Path, broker: MosquittoBroker, tmp_path: Path
) -> Iterator[tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater]]:
    cloud = registry_copy(quick_registry, tmp_path / "cloud", (TRIAGE,))
    add_version(cloud, TRIAGE)  # version 2, the challenger the canary sends out
    gateway = registry_copy(quick_registry, tmp_path / "gateway", (TRIAGE,))
    settings = MqttSettings(host=broker.host, port=broker.port)
    slot = ModelSlot(gateway, TRIAGE)
    updater = ModelUpdater(gateway, "gw-1", settings, on_swap=lambda _name: slot.reload())
    updater.start()
    assert updater.subscribed.wait(10), "gateway did not subscribe to its model-update topic"
    delivery = ModelDelivery(settings).start()
    yield cloud, gateway, slot, delivery, updater
    delivery.stop()
    updater.stop()
    slot.close()


def _batch(slot: ModelSlot) -> np.ndarray:
    size = int(slot._served.manifest.input_shape[-1])
    return np.random.default_rng(0).random((2, 3, size, size), dtype=np.float32)


def test_update_with_bad_checksum_is_refused_and_old_model_keeps_serving(
    setup: tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater],
) -> None:
    cloud, gateway, slot, delivery, _ = setup
    before = slot.predict(_batch(slot))
    update = make_update(cloud, TRIAGE, "2", reason="canary")
    payload = bytearray(base64.b64decode(update.payload_b64))
    payload[len(payload) // 2] ^= 0xFF  # one flipped byte in transit
    corrupt = update.model_copy(update={"payload_b64": base64.b64encode(payload).decode()})
    delivery.client.publish(topics.model_update("clinic", "gw-1"), corrupt.encode(), qos=QOS)

    acks = delivery.wait(corrupt.message_id, ["gw-1"], timeout=20)
    ack = acks["gw-1"]
    assert ack.status == "refused"
    assert "checksum mismatch" in ack.reason
    assert ack.serving == f"{TRIAGE}:1"
    assert slot.model_id == f"{TRIAGE}:1"
    after = slot.predict(_batch(slot))
    assert np.allclose(before[0].probabilities, after[0].probabilities)
    assert not gateway.version_dir(TRIAGE, "2").exists()


def test_verified_update_swaps_the_serving_model(
    setup: tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater],
) -> None:
    cloud, gateway, slot, delivery, _ = setup
    update_id = delivery.send(cloud, TRIAGE, "2", ["gw-1"], reason="canary on gw-1")
    ack = delivery.wait(update_id, ["gw-1"], timeout=30)["gw-1"]
    assert ack.status == "applied", ack.reason
    wait_for(lambda: slot.model_id == f"{TRIAGE}:2", what="gateway serving version 2")
    champ = gateway.champion(TRIAGE)
    assert champ is not None and champ.version == "2"
    assert champ.history[-1].reason == "canary on gw-1"
    assert gateway.manifest(TRIAGE, "1").stage == "archived"
    assert len(slot.predict(_batch(slot))) == 2


def test_edge_canary_goes_to_its_gateway_and_rolls_back_to_the_champion(
    setup: tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater],
) -> None:
    cloud, gateway, slot, delivery, _ = setup
    started = start_edge_canary(delivery, cloud, TRIAGE, ["gw-1"])
    assert started.applied == ["gw-1"] and started.model_id == f"{TRIAGE}:2"
    wait_for(lambda: slot.model_id == f"{TRIAGE}:2", what="canary model serving")
    back = rollback_edge(delivery, cloud, TRIAGE, ["gw-1"], reason="disagreement 30%")
    assert back.applied == ["gw-1"] and back.model_id == f"{TRIAGE}:1"
    wait_for(lambda: slot.model_id == f"{TRIAGE}:1", what="champion serving again")
    assert gateway.manifest(TRIAGE, "2").stage == "archived"
    champ = gateway.champion(TRIAGE)
    assert champ is not None and champ.history[-1].reason == "rollback: disagreement 30%"
