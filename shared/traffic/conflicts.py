"""Which links of a traffic light may never be released together: the network's foe matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConflictMatrix:
    """Link pairs whose paths cross or merge (SUMO's junction `foes`), and pedestrian crossings.

    Taken from the network (the junction's request table), never from the phase order: a
    program that releases two foes together is exactly what the matrix must catch.
    """

    n_links: int
    foes: frozenset[tuple[int, int]] = frozenset()  # unordered pairs stored as (low, high)
    crossings: frozenset[int] = frozenset()  # links that are pedestrian crossings
    _by_link: tuple[frozenset[int], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_link: list[set[int]] = [set() for _ in range(self.n_links)]
        for a, b in self.foes:
            if not (0 <= a < self.n_links and 0 <= b < self.n_links) or a == b:
                raise ValueError(
                    f"conflict pair ({a}, {b}) is not two distinct links of 0..{self.n_links - 1}"
                )
            by_link[a].add(b)
            by_link[b].add(a)
        object.__setattr__(self, "_by_link", tuple(frozenset(s) for s in by_link))

    @classmethod
    def of(
        cls, n_links: int, pairs: Iterable[tuple[int, int]], crossings: Iterable[int] = ()
    ) -> ConflictMatrix:
        """From pairs in any order; duplicates and (b, a) twins collapse."""
        return cls(
            n_links,
            frozenset((min(a, b), max(a, b)) for a, b in pairs),
            frozenset(crossings),
        )

    def are_foes(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self.foes

    def foes_of(self, link: int) -> frozenset[int]:
        return self._by_link[link] if link < len(self._by_link) else frozenset()
