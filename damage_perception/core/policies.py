"""View policies: which wrist angle to look from next, and when to stop."""
from __future__ import annotations

import math
from typing import Protocol, Sequence

from damage_perception.core.verdict import ViewResult


class ViewPolicy(Protocol):
    """Chooses the next wrist angle (rad) from the views so far, or None to stop."""

    name: str

    def next_view(self, views: Sequence[ViewResult]) -> float | None: ...


class FixedViewPolicy:
    """N views at configured wrist angles, in order."""

    name = "fixed"

    def __init__(self, angles_rad: Sequence[float]):
        if not angles_rad:
            raise ValueError("the fixed policy needs at least one wrist angle")
        self.angles = [float(angle) for angle in angles_rad]

    @classmethod
    def evenly_spaced(cls, num_views: int) -> "FixedViewPolicy":
        """``num_views`` angles spread over a full turn."""
        return cls([2.0 * math.pi * i / num_views for i in range(num_views)])

    def next_view(self, views: Sequence[ViewResult]) -> float | None:
        return self.angles[len(views)] if len(views) < len(self.angles) else None


def make_policy(name: str, num_views: int) -> ViewPolicy:
    """The policy called ``name`` (only ``fixed`` so far)."""
    if name in ("", "fixed"):
        return FixedViewPolicy.evenly_spaced(num_views)
    raise ValueError(f"unknown view policy {name!r}; available: fixed")
