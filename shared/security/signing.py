"""Ed25519 keys for model manifests: the registry signs on promotion, gateways and replicas verify.

The private key stays where models are promoted (the build host, the cloud); every other
process holds only the public key. Both are found through the environment, so no tier needs a
config change to take part: EDGEWARD_MODEL_SIGNING_KEY and EDGEWARD_MODEL_PUBLIC_KEY name PEM files.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import ConfigError
from shared.security.pki import PkiError

SIGNING_KEY_ENV = "EDGEWARD_MODEL_SIGNING_KEY"
PUBLIC_KEY_ENV = "EDGEWARD_MODEL_PUBLIC_KEY"
PRIVATE_NAME = "model-signing.key"
PUBLIC_NAME = "model-signing.pub"


def make_keypair(directory: Path, force: bool = False) -> tuple[Path, Path]:
    """A new Ed25519 key pair: `model-signing.key` (0600) and `model-signing.pub`."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if not force and (private.exists() or public.exists()):
        raise PkiError(
            f"a model signing key already exists in {directory}; pass --force to replace it "
            "(every gateway then needs the new public key) or use another --dir"
        )
    key = Ed25519PrivateKey.generate()
    private.unlink(missing_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model signing key {path} is unreadable: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"model signing key {path} is not an Ed25519 key; make one with "
            "`edgeward certs model-key`"
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model public key {path} is unreadable: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(
            f"model public key {path} is not an Ed25519 key; use the model-signing.pub "
            "made by `edgeward certs model-key`"
        )
    return key


def private_key_from_env() -> Ed25519PrivateKey | None:
    value = os.environ.get(SIGNING_KEY_ENV)
    return load_private_key(Path(value)) if value else None


def public_key_from_env() -> Ed25519PublicKey | None:
    value = os.environ.get(PUBLIC_KEY_ENV)
    return load_public_key(Path(value)) if value else None


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode()


def verify(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
