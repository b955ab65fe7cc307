"""Model updates over MQTT: verify the signature, the checksum and a trial run before the swap.

The cloud publishes a `ModelUpdate` (manifest + ONNX bytes) on `topics.model_update("clinic", gw)`
for a canary, a promotion or a rollback. The manifest must carry the registry's Ed25519
signature for the artifact, checked against the gateway's trusted key (EDGEWARD_MODEL_PUBLIC_KEY)
before anything is written; the checksum in the same message proves nothing on its own. The
gateway refuses anything that fails and keeps serving the model it had; it answers every update
with a `ModelUpdateAck`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from pydantic import ValidationError

from edge.backends import Prediction, ServedModel, create_backend
from shared import topics
from shared.config.base import MqttSettings
from shared.errors import EdgewardError, ModelRefusedError, SchemaError
from shared.messages import ModelUpdate, ModelUpdateAck, decode
from shared.mqtt import QOS, connect, make_client
from shared.preprocess import verify_spec_hash
from shared.registry import Manifest, Registry, VerifiedModel
from shared.registry.calibration import calibration_problems
from shared.security.signing import PUBLIC_KEY_ENV

log = logging.getLogger(__name__)


class UpdateRefusedError(EdgewardError):
    """A model update that failed verification; the old model keeps serving."""


class ModelSlot:
    """The serving version of one model; swapped atomically, so a scan never sees half a swap."""

    def __init__(self, registry: Registry, name: str, backend: str = "onnx-cpu") -> None:
        self.registry = registry
        self.name = name
        self.backend = backend
        self._lock = threading.Lock()
        self._served = ServedModel(registry, name, backend)

    @property
    def model_id(self) -> str:
        return self._served.model_id

    def predict(self, batch: np.ndarray) -> list[Prediction]:
        with self._lock:
            served = self._served
        return served.predict(batch)

    def reload(self) -> str:
        """Serve the registry's current serving version; returns its model id."""
        fresh = ServedModel(self.registry, self.name, self.backend)
        with self._lock:
            old, self._served = self._served, fresh
        old.close()
        return fresh.model_id

    def close(self) -> None:
        self._served.close()


def _trial_run(model: VerifiedModel) -> None:
    """Load on ONNX Runtime and run one blank batch: a model that cannot run never swaps."""
    backend = create_backend("onnx-cpu", model)
    try:
        shape = [1, *(int(d) for d in model.manifest.input_shape[1:])]
        out = backend.run(np.zeros(shape, dtype=np.float32))
        logits = out.get("logits")
        if logits is None or not np.all(np.isfinite(logits)):
            raise UpdateRefusedError(
                f"model {model.manifest.model_id}: trial run gave no finite `logits` output"
            )
    finally:
        backend.close()


def install_update(registry: Registry, update: ModelUpdate) -> Manifest:
    """Verify `update` and make it the serving version in `registry`; raises UpdateRefusedError.

    Order matters: checksum of the bytes, manifest agreement, preprocessing hash, trial run,
    and only then the rename into the registry and the stage change.
    """
    model_id = f"{update.name}:{update.version}"
    try:
        manifest = Manifest.model_validate_json(update.manifest_json)
    except ValidationError as exc:
        raise UpdateRefusedError(f"update {model_id}: manifest is malformed: {exc}") from None
    if (manifest.name, manifest.version) != (update.name, update.version):
        raise UpdateRefusedError(
            f"update {model_id}: manifest is for {manifest.model_id}; refusing a mislabelled update"
        )
    _check_signature(registry, manifest, update.artifact, model_id)
    try:
        payload = base64.b64decode(update.payload_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UpdateRefusedError(f"update {model_id}: payload is not base64 ({exc})") from None
    actual = hashlib.sha256(payload).hexdigest()
    declared = manifest.artifacts.get(update.artifact)
    if actual != update.sha256:
        raise UpdateRefusedError(
            f"update {model_id}: {update.artifact} checksum mismatch (payload sha256 "
            f"{actual[:12]}…, update says {update.sha256[:12]}…); the transfer is corrupt or "
            "tampered — resend it"
        )
    if declared is None or declared.sha256 != actual:
        said = "no such artifact" if declared is None else f"sha256 {declared.sha256[:12]}…"
        raise UpdateRefusedError(
            f"update {model_id}: {update.artifact} sha256 {actual[:12]}… does not match the "
            f"manifest ({said}); resend the version's own artifact"
        )
    existing = {m.version: m for m in registry.versions(update.name)}
    if update.version in existing and existing[update.version].artifacts.get(update.artifact):
        have = existing[update.version].artifacts[update.artifact].sha256
        if have != actual:
            raise UpdateRefusedError(
                f"update {model_id}: this gateway already holds {model_id} with a different "
                f"{update.artifact} (sha256 {have[:12]}…); versions are immutable"
            )
        return _serve(registry, existing[update.version], update.reason)
    manifest = manifest.model_copy(
        update={
            "artifacts": {update.artifact: declared},
            "signatures": {update.artifact: manifest.signatures[update.artifact]},
            "stage": "candidate",
            "history": [],
        }
    )
    # The gateway names its staging directory itself: nothing in the message becomes a path
    # (a crafted message id once made a second update delete the registry's models).
    (registry.root / update.name).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.root / update.name))
    try:
        (staging / declared.path).write_bytes(payload)
        (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        problems = _problems_at(registry, manifest, staging)
        if problems:
            raise UpdateRefusedError(f"update {model_id} refused: " + "; ".join(problems))
        _trial_run(VerifiedModel(manifest, staging))
        target = registry.version_dir(update.name, update.version)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _serve(registry, manifest, update.reason)


def _check_signature(registry: Registry, manifest: Manifest, kind: str, model_id: str) -> None:
    """Refuse unless the registry's key signed this manifest's `kind` artifact, before any write."""
    if registry.trusted_key is None:
        raise UpdateRefusedError(
            f"update {model_id}: this gateway has no trusted model key, so it cannot tell a "
            f"signed update from a forged one; set {PUBLIC_KEY_ENV} to the registry's "
            "model-signing.pub"
        )
    if kind not in manifest.artifacts:
        raise UpdateRefusedError(
            f"update {model_id}: the manifest lists no {kind!r} artifact "
            f"(it lists {sorted(manifest.artifacts)}); resend the version's own manifest"
        )
    problems = registry.signature_problems(
        manifest.model_copy(update={"artifacts": {kind: manifest.artifacts[kind]}})
    )
    if problems:
        raise UpdateRefusedError(f"update {model_id} refused: " + "; ".join(problems))


def _problems_at(registry: Registry, manifest: Manifest, directory: Path) -> list[str]:
    """Registry.problems for a manifest that still sits in a staging directory."""
    found = []
    for kind, art in manifest.artifacts.items():
        path = directory / art.path
        if not path.exists():
            found.append(f"{kind} artifact {path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != art.sha256:
            found.append(f"{kind} artifact {path} fails its checksum after writing")
    found += registry.signature_problems(manifest)
    found += calibration_problems(manifest.calibration, len(manifest.labels), manifest.model_id)
    try:
        verify_spec_hash(manifest.preprocess, manifest.preprocess_hash, manifest.model_id)
    except ModelRefusedError as exc:
        found.append(str(exc))
    return found


def _serve(registry: Registry, manifest: Manifest, reason: str) -> Manifest:
    return registry.set_stage(
        manifest.name, manifest.version, "champion", reason=reason or "model update over MQTT"
    )


class ModelUpdater:
    """Listens for model updates addressed to this gateway and applies the ones that verify."""

    def __init__(
        self,
        registry: Registry,
        gateway_id: str,
        settings: MqttSettings,
        on_swap: Callable[[str], object],
        kind: str = "clinic",
    ) -> None:
        self.registry = registry
        self.gateway_id = gateway_id
        self.kind = kind
        self.on_swap = on_swap
        self._settings = settings
        self.topic = topics.model_update(kind, gateway_id)
        self.ack_topic = topics.model_update_ack(kind, gateway_id)
        self.client = make_client(settings, f"edgeward-model-update-{gateway_id}")
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.client.on_subscribe = self._subscribed
        self.subscribed = threading.Event()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        connect(self.client, self._settings, persistent=True)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("gateway %s: broker refused connection: %s", self.gateway_id, reason)
            return
        client.subscribe(self.topic, qos=QOS)

    def _subscribed(self, *_: Any) -> None:
        self.subscribed.set()

    def _message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        ack = self.handle(bytes(msg.payload))
        if ack is not None:
            self.client.publish(self.ack_topic, ack.encode(), qos=QOS)

    def handle(self, payload: bytes) -> ModelUpdateAck | None:
        """Apply one update payload; None for a duplicate delivery (same message id)."""
        try:
            update = decode(payload, ModelUpdate)
        except SchemaError as exc:
            log.error("gateway %s: unreadable model update: %s", self.gateway_id, exc)
            return ModelUpdateAck(
                sender=self.gateway_id, update_id="unknown", gateway_id=self.gateway_id,
                name="unknown", version="0", status="refused", serving="", reason=str(exc),
            )  # fmt: skip
        with self._lock:
            if update.message_id in self._seen:
                return None
            self._seen.add(update.message_id)
            try:
                manifest = install_update(self.registry, update)
                self.on_swap(update.name)
            except EdgewardError as exc:
                log.error("gateway %s: %s", self.gateway_id, exc)
                status, reason = "refused", str(exc)
            else:
                log.info("gateway %s: now serving %s", self.gateway_id, manifest.model_id)
                status, reason = "applied", update.reason
        serving = self.registry.champion(update.name)
        return ModelUpdateAck(
            sender=self.gateway_id,
            update_id=update.message_id,
            gateway_id=self.gateway_id,
            name=update.name,
            version=update.version,
            status=status,
            serving=serving.model_id if serving else "",
            reason=reason,
        )
