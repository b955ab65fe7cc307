"""Numbers on the command line are checked when parsed, with a message that says what is allowed."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from shared.cli_args import number, positive_float, positive_int


def _parse(kind: Callable[[str], object], text: str) -> object:
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--x", type=kind)
    return p.parse_args(["--x", text]).x


def test_positive_numbers_parse_to_their_kind() -> None:
    assert _parse(positive_int, "3") == 3 and isinstance(_parse(positive_int, "3"), int)
    assert _parse(positive_float, "0.5") == 0.5


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (positive_int, "0", "must be 1 or more, got 0"),
        (positive_int, "2.5", "must be a whole number, got '2.5'"),
        (positive_float, "0", "must be more than 0.0, got 0"),
        (positive_float, "-2.5", "must be more than 0.0, got -2.5"),
        (positive_float, "fast", "must be a number, got 'fast'"),
        (number(float, low=0.0, high=1.0), "1.5", "must be within 0.0-1.0, got 1.5"),
        (number(int, high=10), "11", "must be 10 or less, got 11"),
    ],
)
def test_out_of_range_or_malformed_numbers_are_refused_with_the_rule(
    kind: Callable[[str], object], text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentError, match=message):
        _parse(kind, text)
