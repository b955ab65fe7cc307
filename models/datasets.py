"""Training data on disk: drawn by a registered renderer (sim/datasets/), read by the factory.

A dataset is a folder `<kind>-<id>/` holding one `.npy` per array and `manifest.json`: the
kind, the render parameters, the generator that drew it (name, version and a hash of its code),
the id (a hash of those three, so changed code or parameters get a new folder) and each file's
sha256. The factory never imports the simulator: on a miss it asks the renderer registered for
the kind under the `edgeward.datasets` entry-point group, and says what to run if there is none.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shared.errors import EdgewardError
from shared.preprocess import PreprocessSpec
from shared.registry import write_json_atomic

log = logging.getLogger(__name__)

GROUP = "edgeward.datasets"
FORMAT = "2"  # bump when the folder layout changes; 1 was one .npz per view under .cache/
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DatasetRequest:
    """What to render: a kind (the entry-point name), its parameters, and any model views."""

    kind: str
    params: Mapping[str, Any]
    # Fundus data is stored as each input size's `resize_for_model` output; other kinds: none.
    views: tuple[PreprocessSpec, ...] = field(default=())


@runtime_checkable
class Renderer(Protocol):
    """What a plugin registered under `edgeward.datasets` provides (sim/datasets/ has them)."""

    def generator(self) -> dict[str, str]:
        """{"generator": name, "generator_version": version, "code": hash of its source}."""
        ...

    def render(self, request: DatasetRequest, *, workers: int) -> dict[str, np.ndarray]:
        """Every array of `request` (labels, and one per view in `request.views`), by name."""
        ...


def view_name(spec: PreprocessSpec) -> str:
    """The array name of one model view: input size plus the preprocessing's hash."""
    return f"view-{spec.size}-{spec.view().content_hash()}"


def find_renderer(kind: str, group: str = GROUP) -> Renderer | None:
    """The renderer installed for `kind` (an entry point named `kind` in `group`), if any."""
    for ep in entry_points(group=group, name=kind):
        renderer = ep.load()
        if not isinstance(renderer, Renderer):
            raise EdgewardError(
                f"entry point {ep.name!r} = {ep.value!r} in group {group!r} is a "
                f"{type(renderer).__name__}, not a dataset renderer (generator() and render()); "
                "fix the plugin's pyproject.toml"
            )
        return renderer
    return None


def dataset_id(request: DatasetRequest, generator: Mapping[str, str]) -> str:
    canonical = json.dumps(
        {
            "format": FORMAT,
            "kind": request.kind,
            "params": dict(request.params),
            "generator": dict(generator),
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """One rendered dataset folder; arrays are checked against the manifest as they load."""

    directory: Path
    manifest: dict[str, Any]
    rendered_now: bool = False  # False: found on disk

    @property
    def snapshot(self) -> dict[str, Any]:
        """The record models keep in `manifest.data_snapshot`: id, generator, parameters."""
        m = self.manifest
        return {"id": m["id"], **m["generator"], **m["params"]}

    def names(self) -> list[str]:
        return sorted(self.manifest["files"])

    def array(self, name: str) -> np.ndarray:
        files = self.manifest["files"]
        if name not in files:
            raise EdgewardError(
                f"dataset {self.directory}: no array {name!r} (has {self.names()}); "
                "delete the folder to render it again"
            )
        path = self.directory / f"{name}.npy"
        if not path.exists() or _sha256(path) != files[name]["sha256"]:
            raise EdgewardError(
                f"dataset {self.directory}: {path.name} is missing or fails its sha256; "
                "delete the folder and build again to re-render it"
            )
        return np.load(path, allow_pickle=False)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The folder's manifest if it is a complete dataset of this format, else None."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(manifest, dict) and manifest.get("format") == FORMAT
    return manifest if ok else None


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One renderer per folder at a time: parallel builds wait, then reuse what it wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(
    directory: Path,
    request: DatasetRequest,
    generator: Mapping[str, str],
    ident: str,
    arrays: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    old = read_manifest(directory) or {}
    files: dict[str, Any] = dict(old.get("files", {}))
    for name, array in arrays.items():
        if name in files:
            continue  # the same parameters and code draw the same arrays
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".npy")
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the data is not secret
        os.replace(tmp, directory / f"{name}.npy")
        files[name] = {
            "sha256": _sha256(directory / f"{name}.npy"),
            "shape": list(array.shape),
            "dtype": str(array.dtype),
        }
    views = sorted({*old.get("views", []), *(view_name(s) for s in request.views)})
    manifest = {
        "format": FORMAT,
        "kind": request.kind,
        "id": ident,
        "params": dict(request.params),
        "generator": dict(generator),
        "views": views,
        "files": files,
        "created_at": old.get("created_at")
        or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(directory / MANIFEST, manifest)
    return manifest


def _on_disk(request: DatasetRequest, cache_dir: Path) -> Dataset | None:
    """The newest complete dataset of `request`'s kind and parameters, whoever drew it."""
    wanted = {view_name(s) for s in request.views}
    found = []
    for path in cache_dir.glob(f"{request.kind}-*/{MANIFEST}"):
        m = read_manifest(path.parent)
        if m is None or m["kind"] != request.kind or m["params"] != dict(request.params):
            continue
        if wanted <= set(m["views"]):
            found.append(Dataset(path.parent, m))
    return max(found, key=lambda d: str(d.manifest["created_at"]), default=None)


def ensure(
    request: DatasetRequest,
    cache_dir: Path,
    *,
    renderer: Renderer | None = None,
    workers: int | None = None,
) -> Dataset:
    """The dataset of `request` from `cache_dir`, rendered first if it is not there yet.

    With no renderer given, the one registered for the kind is used; with none installed, a
    folder already rendered with the same parameters (by any generator version) is used.
    """
    renderer = renderer or find_renderer(request.kind)
    if renderer is None:
        found = _on_disk(request, cache_dir)
        if found is None:
            raise EdgewardError(
                f"no rendered {request.kind!r} dataset with {dict(request.params)} in "
                f"{cache_dir}, and no renderer for it is installed (entry-point group {GROUP!r}, "
                f"name {request.kind!r}). Render it with `edgeward sim datasets --out "
                f"{cache_dir}` (add --quick for the quick build) where sim/ is installed "
                "(`pip install -e '.[sim]'`), or copy a rendered folder there"
            )
        log.info("%s: using %s (no renderer installed)", request.kind, found.directory)
        return found
    generator = renderer.generator()
    ident = dataset_id(request, generator)
    directory = cache_dir / f"{request.kind}-{ident}"
    manifest = read_manifest(directory)
    if manifest is not None and {view_name(s) for s in request.views} <= set(manifest["views"]):
        return Dataset(directory, manifest)
    with _locked(directory):
        manifest = read_manifest(directory)
        have = set(manifest["views"]) if manifest else set()
        missing = tuple(s for s in request.views if view_name(s) not in have)
        if manifest is not None and not missing:
            return Dataset(directory, manifest)  # another process rendered it meanwhile
        todo = replace(request, views=missing)
        arrays = renderer.render(todo, workers=workers or min(2, os.cpu_count() or 1))
        manifest = _write(directory, todo, generator, ident, arrays)
    return Dataset(directory, manifest, rendered_now=True)
