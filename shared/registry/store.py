"""A directory registry: `<root>/<name>/<version>/manifest.json` beside the artifacts.

Read side and stage changes only; needs no torch, so gateways use it as is. Writes are atomic
(temp file + rename) and stage changes hold a file lock, so a reader never sees half a manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from shared.errors import EdgewardError, ModelRefusedError
from shared.preprocess import verify_spec_hash
from shared.registry.calibration import calibration_problems
from shared.registry.manifest import Artifact, Manifest, Stage, StageChange
from shared.security.signing import private_key_from_env, public_key_from_env, sign, verify

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_for(path: Path, version_dir: Path, **meta: object) -> Artifact:
    """Describe a file inside a version directory with its checksum."""
    return Artifact(
        path=str(path.relative_to(version_dir)),
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        meta=dict(meta),
    )


def write_json_atomic(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    # mkstemp makes it owner-only; a manifest is not secret, and the service that serves the
    # registry (a container's user, a mounted volume) is often not the user who built it
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class VerifiedModel:
    """A manifest whose artifacts passed their checksums and preprocessing check."""

    manifest: Manifest
    directory: Path

    def path(self, kind: str = "onnx") -> Path:
        if kind not in self.manifest.artifacts:
            raise ModelRefusedError(
                f"model {self.manifest.model_id} has no {kind!r} artifact; "
                f"it has {sorted(self.manifest.artifacts)}"
            )
        return self.directory / self.manifest.artifacts[kind].path


SIGNED_STAGES: tuple[Stage, ...] = ("challenger", "champion")


class Registry:
    """A registry directory; with `trusted_key`, only versions signed by its key are served.

    Keys default to the environment (shared.security.signing): a process with
    EDGEWARD_MODEL_PUBLIC_KEY set refuses unsigned or tampered versions; one with
    EDGEWARD_MODEL_SIGNING_KEY set signs each version it promotes to challenger or champion.
    """

    def __init__(
        self,
        root: Path | str,
        trusted_key: Ed25519PublicKey | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        use_env: bool = True,
    ) -> None:
        self.root = Path(root)
        self.trusted_key = trusted_key or (public_key_from_env() if use_env else None)
        self.signing_key = signing_key or (private_key_from_env() if use_env else None)

    # ---- reading ----
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name[0] != ".")

    def versions(self, name: str) -> list[Manifest]:
        base = self.root / name
        if not base.is_dir():
            return []
        found = []
        for d in base.iterdir():
            if d.is_dir() and d.name.isdigit() and (d / MANIFEST).exists():
                with contextlib.suppress(EdgewardError):
                    found.append(self.manifest(name, d.name))
        return sorted(found, key=lambda m: int(m.version))

    def manifest(self, name: str, version: str) -> Manifest:
        path = self.root / name / version / MANIFEST
        try:
            return Manifest.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            known = ", ".join(m.version for m in self.versions(name)) or "none"
            raise EdgewardError(
                f"model {name}:{version} is not in registry {self.root} (versions: {known})"
            ) from None
        except ValidationError as exc:
            raise ModelRefusedError(f"{path}: manifest is malformed: {exc}") from None

    def champion(self, name: str) -> Manifest | None:
        champs = [m for m in self.versions(name) if m.stage == "champion"]
        return champs[-1] if champs else None

    def version_dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    # ---- verification ----
    def problems(self, manifest: Manifest) -> list[str]:
        """Every reason this version must not be served; empty when it verifies."""
        found: list[str] = []
        directory = self.version_dir(manifest.name, manifest.version)
        for kind, art in manifest.artifacts.items():
            path = directory / art.path
            if not path.exists():
                found.append(f"{kind} artifact {path} is missing")
                continue
            actual = sha256_file(path)
            if actual != art.sha256:
                found.append(
                    f"{kind} artifact {path} fails its checksum "
                    f"(sha256 {actual[:12]}…, manifest says {art.sha256[:12]}…)"
                )
        found += self.signature_problems(manifest)
        found += calibration_problems(manifest.calibration, len(manifest.labels), manifest.model_id)
        try:
            verify_spec_hash(manifest.preprocess, manifest.preprocess_hash, manifest.model_id)
        except ModelRefusedError as exc:
            found.append(str(exc))
        return found

    def signature_problems(self, manifest: Manifest) -> list[str]:
        """Why the manifest's signatures fail against the trusted key (none configured: [])."""
        if self.trusted_key is None:
            return []
        found = []
        for kind, art in manifest.artifacts.items():
            signature = manifest.signatures.get(kind)
            if signature is None:
                # A TensorRT engine compiled on this device from a signed ONNX file cannot carry
                # the registry's signature; its source's signature stands for it.
                source = art.meta.get("built_from")
                if any(
                    a.path == source and k in manifest.signatures and k != kind
                    for k, a in manifest.artifacts.items()
                ):
                    continue
                found.append(
                    f"{kind} artifact of {manifest.model_id} is not signed; promote it where "
                    "EDGEWARD_MODEL_SIGNING_KEY is set, or sign it with `edgeward certs sign-model`"
                )
            elif not verify(self.trusted_key, manifest.signed_bytes(kind), signature):
                found.append(
                    f"{kind} signature of {manifest.model_id} does not verify against the "
                    "trusted model key: the manifest or its artifact list was altered, or it was "
                    "signed by another key"
                )
        if not manifest.artifacts:
            found.append(f"{manifest.model_id} lists no artifacts; nothing to verify")
        return found

    def sign(self, manifest: Manifest) -> Manifest:
        """The manifest with a fresh signature for each of its artifacts, saved."""
        if self.signing_key is None:
            raise EdgewardError(
                f"cannot sign {manifest.model_id}: no signing key (set EDGEWARD_MODEL_SIGNING_KEY "
                "to the file made by `edgeward certs model-key`)"
            )
        key = self.signing_key
        signatures = {kind: sign(key, manifest.signed_bytes(kind)) for kind in manifest.artifacts}
        signed = manifest.model_copy(update={"signatures": signatures})
        self.save(signed)
        return signed

    def load(self, name: str, version: str | None = None) -> VerifiedModel:
        """The given version (default: champion), verified; ModelRefusedError says why not."""
        if version is None:
            champ = self.champion(name)
            if champ is None:
                raise EdgewardError(
                    f"no champion for model {name!r} in registry {self.root}; "
                    "build one with `edgeward models build` or promote a version"
                )
            manifest = champ
        else:
            manifest = self.manifest(name, version)
        problems = self.problems(manifest)
        if problems:
            raise ModelRefusedError(f"model {manifest.model_id} refused: " + "; ".join(problems))
        return VerifiedModel(manifest, self.version_dir(manifest.name, manifest.version))

    def load_serving(self, name: str) -> VerifiedModel:
        """The champion if it verifies, else the newest former champion that does.

        A corrupt or tampered champion must not take a working model out of service.
        """
        refusals: list[str] = []
        candidates = [m for m in reversed(self.versions(name)) if m.stage == "champion"]
        candidates += [
            m
            for m in reversed(self.versions(name))
            if m.stage == "archived" and any(h.stage == "champion" for h in m.history)
        ]
        for manifest in candidates:
            try:
                model = self.load(name, manifest.version)
            except ModelRefusedError as exc:
                refusals.append(str(exc))
                log.error("%s", exc)
                continue
            if refusals:
                log.warning("serving %s instead: %s", model.manifest.model_id, refusals[0])
            return model
        reason = "; ".join(refusals) or "no champion has ever been promoted"
        raise ModelRefusedError(f"no servable version of {name!r}: {reason}")

    # ---- writing ----
    def next_version(self, name: str) -> str:
        versions = [int(m.version) for m in self.versions(name)]
        base = self.root / name
        if base.is_dir():
            versions += [int(d.name) for d in base.iterdir() if d.name.isdigit()]
        return str(max(versions, default=0) + 1)

    def save(self, manifest: Manifest) -> Path:
        directory = self.version_dir(manifest.name, manifest.version)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MANIFEST
        write_json_atomic(path, manifest.model_dump(mode="json"))
        return path

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        with (self.root / name / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def set_stage(self, name: str, version: str, stage: Stage, reason: str = "") -> Manifest:
        """Move a version to `stage`; a new champion archives the old one (one per name)."""
        with self._lock(name):
            manifest = self.manifest(name, version)
            if stage in SIGNED_STAGES and self.signing_key is not None:
                manifest = self.sign(manifest)
            if stage == "champion":
                missing = manifest.missing_for_promotion()
                if missing:
                    raise EdgewardError(
                        f"cannot promote {manifest.model_id}: manifest incomplete "
                        f"(missing {', '.join(missing)})"
                    )
                problems = self.problems(manifest)
                if problems:
                    raise ModelRefusedError(
                        f"cannot promote {manifest.model_id}: " + "; ".join(problems)
                    )
                for other in self.versions(name):
                    if other.stage == "champion" and other.version != version:
                        self._write_stage(other, "archived", f"replaced by {manifest.model_id}")
            return self._write_stage(manifest, stage, reason)

    def _write_stage(self, manifest: Manifest, stage: Stage, reason: str) -> Manifest:
        history = [*manifest.history, StageChange(stage=stage, at=utc_now(), reason=reason)]
        updated = manifest.model_copy(update={"stage": stage, "history": history})
        self.save(updated)
        return updated
