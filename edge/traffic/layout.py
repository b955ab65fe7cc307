"""Which signal links belong to which approach of a junction: the gateway's view of its junction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError
from shared.traffic.demand import green_share


@dataclass(frozen=True)
class ApproachLayout:
    approach_id: str
    link_indices: tuple[int, ...]
    lanes: int = 1


@dataclass(frozen=True)
class JunctionLayout:
    junction_id: str
    approaches: tuple[ApproachLayout, ...]

    def served(self, state: str) -> dict[str, float]:
        """Share (0..1) of each approach's links that a signal state lets go."""
        return {a.approach_id: green_share(state, a.link_indices) for a in self.approaches}

    def to_dict(self) -> dict[str, object]:
        return {
            "junction_id": self.junction_id,
            "approaches": [
                {
                    "approach_id": a.approach_id,
                    "link_indices": list(a.link_indices),
                    "lanes": a.lanes,
                }
                for a in self.approaches
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> JunctionLayout:
        try:
            approaches = data["approaches"]
            assert isinstance(approaches, list)
            return cls(
                junction_id=str(data["junction_id"]),
                approaches=tuple(
                    ApproachLayout(
                        str(a["approach_id"]),
                        tuple(int(i) for i in a["link_indices"]),
                        int(a.get("lanes", 1)),
                    )
                    for a in approaches
                ),
            )
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise ConfigError(
                f"junction layout is malformed ({type(exc).__name__}: {exc}); expected "
                '{"junction_id": ..., "approaches": [{"approach_id", "link_indices", "lanes"}]}'
            ) from None

    @classmethod
    def load(cls, path: Path) -> JunctionLayout:
        if not path.is_file():
            raise ConfigError(f"junction layout {path} does not exist; write it with the twin")
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"junction layout {path} is not JSON: {exc}") from None
        return cls.from_dict(data)
