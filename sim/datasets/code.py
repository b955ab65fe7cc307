"""A hash of a generator's own source, so changed drawing code never reuses old data."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"cannot find the source of {module}")
    return Path(spec.origin)


def _sim_imports(path: Path) -> set[str]:
    """The sim.* modules a file imports (a `from pkg import mod` counts mod when it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sim.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("sim."):
                continue
            found.add(node.module)
            found |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if _is_module(f"{node.module}.{a.name}")
            }
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def source_key(*modules: str) -> str:
    """sha256 (16 hex) of these modules' source and every sim module they import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _sim_imports(_source(name))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode())
        digest.update(_source(name).read_bytes())
    return digest.hexdigest()[:16]
