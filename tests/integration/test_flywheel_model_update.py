"""Edge model updates over a real mosquitto: signature and checksum verified before the swap."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cloud.flywheel.delivery import ModelDelivery, make_update
from cloud.flywheel.edge_rollout import rollback_edge, start_edge_canary
from edge.clinic.model_update import ModelSlot, ModelUpdater, UpdateRefusedError, install_update
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import ModelUpdate
from shared.mqtt import QOS
from shared.registry import Manifest, Registry
from shared.security.signing import load_private_key, load_public_key, make_keypair, sign
from tests.flywheel_support import add_version, registry_copy
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
TRIAGE = "fundus-triage"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private, public = make_keypair(tmp_path / "keys")
    return load_private_key(private), load_public_key(public)


@pytest.fixture
def setup(
    quick_registry: Path,
    broker: MosquittoBroker,
    tmp_path: Path,
    keys: tuple[Ed25519PrivateKey, Ed25519PublicKey],
) -> Iterator[tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater]]:
    signer, public = keys
    registry_copy(quick_registry, tmp_path / "cloud", (TRIAGE,))
    cloud = Registry(tmp_path / "cloud", trusted_key=public, signing_key=signer, use_env=False)
    add_version(cloud, TRIAGE)  # version 2, the challenger the canary sends out
    for manifest in cloud.versions(TRIAGE):  # as the registry's promotions would have
        cloud.sign(manifest)
    registry_copy(quick_registry, tmp_path / "gateway", (TRIAGE,))
    # The gateway's first model came signed too; from now on it only holds the public key.
    signing = Registry(tmp_path / "gateway", signing_key=signer, use_env=False)
    signing.sign(signing.manifest(TRIAGE, "1"))
    gateway = Registry(tmp_path / "gateway", trusted_key=public, use_env=False)
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


# ---- forged updates: each is refused and touches nothing outside the gateway's registry ----


def _resigned(manifest: Manifest, key: Ed25519PrivateKey) -> str:
    sigs = {kind: sign(key, manifest.signed_bytes(kind)) for kind in manifest.artifacts}
    return manifest.model_copy(update={"signatures": sigs}).model_dump_json()


def _tampered_manifest(update: ModelUpdate, _: Ed25519PrivateKey) -> ModelUpdate:
    data = json.loads(update.manifest_json)
    data["thresholds"] = {k: 0.99 for k in data["thresholds"]}  # refer almost nobody
    return update.model_copy(update={"manifest_json": json.dumps(data)})


def _tampered_artifact(update: ModelUpdate, _: Ed25519PrivateKey) -> ModelUpdate:
    """Other bytes, with every checksum in the message recomputed to match them."""
    payload = bytearray(base64.b64decode(update.payload_b64))
    payload[len(payload) // 2] ^= 0xFF
    digest = hashlib.sha256(payload).hexdigest()
    data = json.loads(update.manifest_json)
    data["artifacts"]["onnx"]["sha256"] = digest
    return update.model_copy(
        update={
            "manifest_json": json.dumps(data),
            "sha256": digest,
            "payload_b64": base64.b64encode(payload).decode(),
        }
    )


def _wrong_key(update: ModelUpdate, _: Ed25519PrivateKey) -> ModelUpdate:
    other = Ed25519PrivateKey.generate()
    manifest = Manifest.model_validate_json(update.manifest_json)
    return update.model_copy(update={"manifest_json": _resigned(manifest, other)})


def _path_traversal(update: ModelUpdate, key: Ed25519PrivateKey) -> ModelUpdate:
    """Even correctly signed, an artifact path that leaves the version directory is refused."""
    data = json.loads(update.manifest_json)
    data["artifacts"]["onnx"]["path"] = "../../../escaped.onnx"
    data.pop("signatures")
    # Signed over the raw JSON (the attacker's own tooling need not validate the path).
    sigs = {"onnx": sign(key, _raw_signed_bytes(data))}
    return update.model_copy(update={"manifest_json": json.dumps({**data, "signatures": sigs})})


def _raw_signed_bytes(data: dict) -> bytes:
    body = {k: v for k, v in data.items() if k not in {"stage", "history", "artifacts"}}
    body["artifact"] = {"kind": "onnx", **data["artifacts"]["onnx"]}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _files(root: Path, skip: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and skip not in p.parents
    }


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (_tampered_manifest, "does not verify against the trusted model key"),
        (_tampered_artifact, "does not verify against the trusted model key"),
        (_wrong_key, "does not verify against the trusted model key"),
        (_path_traversal, "manifest is malformed"),
    ],
    ids=["tampered-manifest", "tampered-artifact", "wrong-key", "path-traversal"],
)
def test_forged_update_is_refused_and_nothing_on_disk_changes(
    setup: tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater],
    keys: tuple[Ed25519PrivateKey, Ed25519PublicKey],
    tmp_path: Path,
    forge: Callable[[ModelUpdate, Ed25519PrivateKey], ModelUpdate],
    reason: str,
) -> None:
    cloud, _, slot, delivery, _ = setup
    before = _files(tmp_path, tmp_path / "mqtt")
    good = make_update(cloud, TRIAGE, "2", reason="canary")
    # A message id shaped like a path: the gateway must never use it as one.
    forged = forge(good, keys[0]).model_copy(update={"message_id": f"../../../{TRIAGE}/1"})
    delivery.client.publish(topics.model_update("clinic", "gw-1"), forged.encode(), qos=QOS)
    ack = delivery.wait(forged.message_id, ["gw-1"], timeout=20)["gw-1"]
    assert ack.status == "refused"
    assert reason in ack.reason
    assert ack.serving == f"{TRIAGE}:1" and slot.model_id == f"{TRIAGE}:1"
    assert _files(tmp_path, tmp_path / "mqtt") == before
    assert not list((tmp_path / "gateway" / TRIAGE).glob(".staging-*"))
    # The genuine update still goes through afterwards.
    update_id = delivery.send(cloud, TRIAGE, "2", ["gw-1"], reason="canary")
    assert delivery.wait(update_id, ["gw-1"], timeout=30)["gw-1"].status == "applied"


def test_a_gateway_without_a_trusted_key_refuses_every_update(
    setup: tuple[Registry, Registry, ModelSlot, ModelDelivery, ModelUpdater], tmp_path: Path
) -> None:
    cloud = setup[0]
    keyless = Registry(tmp_path / "gateway", use_env=False)
    with pytest.raises(UpdateRefusedError, match="no trusted model key"):
        install_update(keyless, make_update(cloud, TRIAGE, "2"))
    assert not keyless.version_dir(TRIAGE, "2").exists()
