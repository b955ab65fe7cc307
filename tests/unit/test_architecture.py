"""The layout tells the architecture: layers point one way and no module is part of a circle.

benchmarks > sim > cloud > {models, edge} > shared. A tier may import the tiers below it, never one
beside or above it; edge additionally never imports the heavy cloud frameworks it cannot run on a
Jetson gateway. Within the whole tree, no import circle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The rank of each tier: an import must go to a strictly lower rank (or stay in the tier).
RANK = {"shared": 0, "edge": 1, "models": 1, "cloud": 2, "sim": 3, "benchmarks": 4}
TIERS = tuple(RANK)

# Third-party frameworks a tier must not import, whatever the layering says.
FORBIDDEN_PACKAGES = {
    "edge": {"torch", "torchvision", "ray", "pytorch_grad_cam", "fastapi"},
    "shared": {"torch", "torchvision", "ray"},
}


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name a file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module a dotted name lives in, or None for a third-party name."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = REPO, tiers: Iterable[str] = TIERS) -> dict[str, set[str]]:
    """module -> the project modules it imports (lazy imports inside functions included)."""
    files = (p for tier in tiers for p in sorted((root / tier).rglob("*.py")))
    modules = {_module_name(p, root): p for p in files}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {_resolve(n, modules) for n in _imported_names(path, module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def upward_arrows(graph: Mapping[str, set[str]]) -> list[str]:
    arrows = []
    for module, targets in graph.items():
        source = module.split(".")[0]
        for target in targets:
            tier = target.split(".")[0]
            if tier != source and RANK[tier] >= RANK[source]:
                arrows.append(f"{module} -> {target}")
    return sorted(arrows)


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_import_points_down_the_layers(graph: dict[str, set[str]]) -> None:
    assert upward_arrows(graph) == []


def test_no_module_is_part_of_an_import_circle(graph: dict[str, set[str]]) -> None:
    assert circles(graph) == []


@pytest.mark.parametrize("tier", sorted(FORBIDDEN_PACKAGES))
def test_tier_imports_no_forbidden_framework(tier: str) -> None:
    offences = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / tier).rglob("*.py"))
        for name in sorted(
            {n.split(".")[0] for n in _imported_names(path, _module_name(path))}
            & FORBIDDEN_PACKAGES[tier]
        )
    ]
    assert offences == []


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_sees_an_upward_arrow_and_a_circle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "shared/__init__.py": "",
            "shared/a.py": "from edge.b import thing\n",
            "edge/__init__.py": "",
            "edge/b.py": "def f():\n    from . import c\n",
            "edge/c.py": "from edge import b\nimport numpy\n",
            "models/__init__.py": "",
            "models/d.py": "from edge.c import x\n",
        },
    )
    graph = import_graph(tmp_path, ("shared", "edge", "models"))
    assert upward_arrows(graph) == ["models.d -> edge.c", "shared.a -> edge.b"]
    assert circles(graph) == [["edge.b", "edge.c"]]


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    limit = 450  # "about 400 lines": a module past this is two modules
    long = {
        str(p.relative_to(REPO)): n
        for tier in (*TIERS, "tests")
        for p in (REPO / tier).rglob("*.py")
        if "_pb2" not in p.name and (n := len(p.read_text().splitlines())) > limit
    }
    assert long == {}


def test_top_level_layout_is_as_the_brief_fixes_it() -> None:
    for name in ("edge", "cloud", "models", "shared", "sim", "tests", "benchmarks", "deploy"):
        assert (REPO / name).is_dir(), name
    assert (REPO / "README.md").read_text().splitlines()[0] == "# edgeward"
