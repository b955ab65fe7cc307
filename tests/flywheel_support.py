"""Helpers the flywheel tests share: registry copies with a challenger version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from shared.registry import Manifest, Registry


def registry_copy(source: Path, dest: Path, names: tuple[str, ...]) -> Registry:
    """A registry holding only each model's champion, renumbered as version 1."""
    src = Registry(source)
    for name in names:
        champ = src.champion(name)
        assert champ is not None, f"{name} has no champion in {source}"
        target = dest / name / "1"
        shutil.copytree(src.version_dir(name, champ.version), target)
        data = json.loads((target / "manifest.json").read_text())
        data["version"] = "1"
        (target / "manifest.json").write_text(json.dumps(data))
    return Registry(dest)


def add_version(
    registry: Registry, name: str, stage: str = "challenger", **changes: Any
) -> Manifest:
    """A new version of `name` (the champion's artifacts, `changes` applied to the manifest)."""
    champ = registry.champion(name)
    assert champ is not None
    version = registry.next_version(name)
    src, dst = registry.version_dir(name, champ.version), registry.version_dir(name, version)
    shutil.copytree(src, dst)
    data = json.loads((dst / "manifest.json").read_text())
    data.update(version=version, stage=stage, history=[], **changes)
    (dst / "manifest.json").write_text(json.dumps(data))
    return registry.manifest(name, version)
