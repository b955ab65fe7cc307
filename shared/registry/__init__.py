"""The model registry's manifest schema, verification and stage changes (no torch needed)."""

from shared.registry.manifest import STAGES, Artifact, Manifest, Stage, StageChange
from shared.registry.store import (
    Registry,
    VerifiedModel,
    artifact_for,
    sha256_file,
    utc_now,
    write_json_atomic,
)

__all__ = [
    "STAGES",
    "Artifact",
    "Manifest",
    "Registry",
    "Stage",
    "StageChange",
    "VerifiedModel",
    "artifact_for",
    "sha256_file",
    "utc_now",
    "write_json_atomic",
]
