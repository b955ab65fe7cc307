"""The reviewed list of equivalent mutants: mutants no test can kill, each with the reason why.

A mutant is keyed by what it changes, not by where the file happens to put it: the module, the
cosmic-ray operator, the source line's text and which of that operator's mutants on an identical
line it is (0 for the first). Editing other lines leaves every key valid; editing the line
itself makes its entries stale, and a stale entry is reported and counts for nothing, so a
reason never outlives the code it was written about.
"""

from __future__ import annotations

import ast
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import tomllib

LIST = Path(__file__).with_name("mutation_equivalents.toml")


@dataclass(frozen=True)
class MutantKey:
    module: str
    operator: str
    source: str  # the line as written, stripped
    nth: int  # which of this operator's mutants on an identical line


@dataclass(frozen=True)
class Equivalent:
    key: MutantKey
    reason: str


class EquivalentsError(ValueError):
    """The reviewed list cannot be read."""


def load(path: Path = LIST) -> dict[MutantKey, Equivalent]:
    """Every reviewed equivalent in `path`; an entry without a reason is refused."""
    if not path.exists():
        return {}
    try:
        entries = tomllib.loads(path.read_text()).get("equivalent", [])
    except tomllib.TOMLDecodeError as bad:
        raise EquivalentsError(f"{path}: not valid TOML ({bad}); fix the file") from bad
    out: dict[MutantKey, Equivalent] = {}
    for i, e in enumerate(entries):
        missing = [f for f in ("module", "operator", "source", "reason") if not e.get(f)]
        if missing:
            raise EquivalentsError(
                f"{path}: entry {i} ({e.get('operator', '?')} in {e.get('module', '?')}) lacks "
                f"{', '.join(missing)}; every equivalent needs its key and the reason no test "
                "can kill it"
            )
        key = MutantKey(e["module"], e["operator"], str(e["source"]).strip(), int(e.get("nth", 0)))
        if key in out:
            raise EquivalentsError(f"{path}: entry {i} repeats {key}; keep one")
        out[key] = Equivalent(key, str(e["reason"]))
    return out


def keys_of(
    module: str, source: str, mutants: list[tuple[str, str, int, int, int]]
) -> dict[str, MutantKey]:
    """job id -> stable key, for `mutants` as (job id, operator, line, column, occurrence)."""
    lines = source.splitlines()
    seen: Counter[tuple[str, str]] = Counter()
    out: dict[str, MutantKey] = {}
    # job ids are random: order by position (then cosmic-ray's occurrence, which tells apart
    # two mutants of one operator at one place, e.g. a number +1 and -1)
    for job, operator, line, _, _ in sorted(mutants, key=lambda m: (m[2], m[3], m[1], m[4])):
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        out[job] = MutantKey(module, operator, text, seen[(operator, text)])
        seen[(operator, text)] += 1
    return out


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every annotation, when the module never evaluates them.

    Under `from __future__ import annotations` an annotation is a string no code reads, so a
    mutant inside one (`A | None` -> `A & None`) cannot change behaviour: it is equivalent, and
    counting it as a survivor would blame the tests for what no test can see.
    """
    tree = ast.parse(source)
    lazy = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    if not lazy:
        return []
    nodes: list[ast.expr] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.returns is not None:
            nodes.append(n.returns)
        elif isinstance(n, ast.arg | ast.AnnAssign) and n.annotation is not None:
            nodes.append(n.annotation)
    return [
        ((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0)) for a in nodes
    ]


def inside(pos: tuple[int, int], spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    return any(start <= pos < end for start, end in spans)


def stillborn(source: str, mutants: list[tuple[str, str, int, int, int]]) -> set[str]:
    """Job ids of mutants that are not even Python (`*,` -> `+,`): their "kill" is a SyntaxError.

    cosmic-ray reports them killed, since the tests fail to import the module; no test caught
    anything, so they count as incompetent, not as kills.
    """
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    out = set()
    for job, operator, _, _, occurrence in mutants:
        code = mutate_code(source, get_operator(operator)(), occurrence)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # `is "green"`: valid, if odd
            try:
                compile(code or source, "<mutant>", "exec")
            except SyntaxError:
                out.add(job)
    return out
