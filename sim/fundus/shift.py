"""A data-shift scenario for the drift flywheel: the clinic population or camera changes."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import EdgewardError


@dataclass(frozen=True)
class ShiftSpec:
    """What differs from the training population; the defaults mean "no shift"."""

    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # BGR gains on the final image
    grade_weights: tuple[float, ...] | None = None  # ICDR 0-4 weights, e.g. more advanced disease
    new_camera: str | None = None  # every scan comes from this camera (may be unseen in training)

    def __post_init__(self) -> None:
        if len(self.colour_cast) != 3 or not all(0.0 < g <= 4.0 for g in self.colour_cast):
            raise EdgewardError(
                f"ShiftSpec.colour_cast is {self.colour_cast}; give three BGR gains in (0, 4]"
            )
        if self.grade_weights is not None:
            w = self.grade_weights
            if len(w) != 5 or any(x < 0 for x in w) or sum(w) <= 0:
                raise EdgewardError(
                    f"ShiftSpec.grade_weights is {w}; give five non-negative weights for ICDR "
                    "grades 0-4 with a positive sum"
                )
