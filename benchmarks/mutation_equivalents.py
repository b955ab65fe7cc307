"""The reviewed list of equivalent mutants: mutants no test can kill, each with the reason why.

A mutant is keyed by what it changes, not by where the file happens to put it: the module, the
cosmic-ray operator, the source line's text and which of that operator's mutants on an identical
line it is (0 for the first). Editing other lines leaves every key valid; editing the line
itself makes its entries stale, and a stale entry is reported and counts for nothing, so a
reason never outlives the code it was written about.
"""

from __future__ import annotations

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
