"""The reviewed list of equivalent mutants of the traffic safety core: keys that survive edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import mutation_equivalents as me

SOURCE = "x = 1\nif x == 1:\n    y = x == 1\nif x == 1:\n    pass\n"


def test_a_mutant_is_keyed_by_its_line_text_and_which_identical_line_it_is() -> None:
    mutants = [
        ("job-b", "core/Eq_NotEq", 4, 5, 2),
        ("job-a", "core/Eq_NotEq", 2, 5, 0),
        ("job-c", "core/Eq_NotEq", 3, 8, 1),
    ]
    keys = me.keys_of("m.py", SOURCE, mutants)
    assert keys["job-a"] == me.MutantKey("m.py", "core/Eq_NotEq", "if x == 1:", 0)
    assert keys["job-b"] == me.MutantKey("m.py", "core/Eq_NotEq", "if x == 1:", 1)
    assert keys["job-c"] == me.MutantKey("m.py", "core/Eq_NotEq", "y = x == 1", 0)
    # a line added above moves every line number and changes no key
    shifted = me.keys_of(
        "m.py", "import os\n" + SOURCE, [(j, o, r + 1, c, n) for j, o, r, c, n in mutants]
    )
    assert shifted == keys


def test_an_entry_without_its_reason_is_refused_naming_it(tmp_path: Path) -> None:
    listing = tmp_path / "eq.toml"
    listing.write_text('[[equivalent]]\nmodule = "m.py"\noperator = "core/X"\nsource = "a"\n')
    with pytest.raises(me.EquivalentsError, match=r"entry 0 \(core/X in m.py\) lacks reason"):
        me.load(listing)


def test_the_reviewed_list_in_the_repository_reads_and_every_entry_has_a_reason() -> None:
    entries = me.load()
    assert entries
    assert all(e.reason.strip() for e in entries.values())


def test_a_mutant_that_is_not_python_is_stillborn_and_a_valid_one_is_not() -> None:
    source = "def f(a, *, b):\n    return a + b\n"
    mutants = [
        ("star", "core/ReplaceBinaryOperator_Mul_Add", 1, 9, 0),  # `*,` -> `+,`
        ("plus", "core/ReplaceBinaryOperator_Add_Sub", 2, 13, 0),  # a + b -> a - b
    ]
    assert me.stillborn(source, mutants) == {"star"}
