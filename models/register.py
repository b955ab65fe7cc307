"""Registry writes: copy artifacts into a fresh version directory and write the manifest."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.errors import EdgewardError
from shared.registry import Manifest, Registry, artifact_for, utc_now

ArtifactSource = Path | tuple[Path, dict[str, Any]]


def _claim_version(registry: Registry, name: str) -> tuple[str, Path]:
    """Create the next version directory; mkdir is atomic, so parallel builds never share one."""
    for _ in range(100):
        version = registry.next_version(name)
        directory = registry.version_dir(name, version)
        try:
            directory.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return version, directory
    raise EdgewardError(f"could not claim a new version directory for {name!r} in {registry.root}")


def register_model(
    registry: Registry,
    name: str,
    task: str,
    files: Mapping[str, ArtifactSource],
    manifest_fields: Mapping[str, Any],
) -> Manifest:
    """Register a new candidate version of `name` and return its manifest.

    `files` maps artifact kind (onnx, pytorch, onnx_int8, ...) to a file, or to (file, meta);
    each is copied into `<registry>/<name>/<version>/` and recorded with its sha256.
    `manifest_fields` holds every other Manifest field (preprocess, labels, metrics, ...);
    `preprocess_hash` and `created_at` are filled in when absent.
    """
    fields = dict(manifest_fields)
    if "preprocess" in fields and "preprocess_hash" not in fields:
        fields["preprocess_hash"] = fields["preprocess"].content_hash()
    fields.setdefault("created_at", utc_now())
    version, directory = _claim_version(registry, name)
    try:
        artifacts = {}
        for kind, source in files.items():
            src, meta = source if isinstance(source, tuple) else (source, {})
            if not src.is_file():
                raise EdgewardError(f"cannot register {name}: {kind} file {src} does not exist")
            dest = directory / f"{src.name}"
            if dest.exists():
                dest = directory / f"{kind}-{src.name}"
            shutil.copyfile(src, dest)
            artifacts[kind] = artifact_for(dest, directory, **meta)
        manifest = Manifest(
            name=name, version=version, task=task, artifacts=artifacts, stage="candidate", **fields
        )
    except (EdgewardError, ValidationError, OSError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, ValidationError):
            raise EdgewardError(f"cannot register {name}: manifest is invalid: {exc}") from None
        raise
    registry.save(manifest)
    return manifest
