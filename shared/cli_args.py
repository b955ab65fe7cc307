"""Argument types for the `edgeward` sub-commands: numbers checked at parse time, with messages."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def number(
    kind: type[int] | type[float],
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
) -> Callable[[str], int | float]:
    """An argparse `type=` that parses `kind` and checks low <= value <= high (or value > above)."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be more than {above}, got {text}")
        if low is not None and high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}-{high}, got {text}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {high} or less, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value" fallbacks
    return parse


positive_int = number(int, low=1)
positive_float = number(float, above=0.0)
