"""The layout tells the architecture: edge never imports torch, ray or cloud; shared no tier."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "edge": {
        "torch",
        "torchvision",
        "ray",
        "pytorch_grad_cam",
        "cloud",
        "models",
        "sim",
        "fastapi",
    },
    "shared": {"edge", "cloud", "models", "sim", "benchmarks", "torch", "torchvision", "ray"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("tier", sorted(FORBIDDEN))
def test_tier_imports_only_what_it_may(tier: str) -> None:
    offences = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / tier).rglob("*.py"))
        for name in sorted(_imports(path) & FORBIDDEN[tier])
    ]
    assert offences == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import torch.nn\nfrom cloud.app import build\nfrom . import local\n")
    assert _imports(sample) == {"torch", "cloud"}


def test_top_level_layout_is_as_the_brief_fixes_it() -> None:
    for name in ("edge", "cloud", "models", "shared", "sim", "tests", "benchmarks", "deploy"):
        assert (REPO / name).is_dir(), name
    assert (REPO / "README.md").read_text().splitlines()[0] == "# edgeward"
