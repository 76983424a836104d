"""View policies: which wrist angle to look from next, and when to stop.

Every policy answers two questions after each view: ``next_view(views)`` (a wrist angle, or None to stop)
and ``early_decision(views)`` (PASS / DIVERT when the evidence already settles it, REVIEW when the view
budget ran out undecided, or None to leave the decision to the fused score and threshold).

- ``fixed``: N views at configured angles; the threshold decides.
- ``sequential``: Wald's sequential probability ratio test on per-view evidence: stop as soon as the summed
  log-likelihood ratio crosses a bound derived from the target false-divert and miss rates; REVIEW when the
  budget runs out in between.
- ``nbv`` (next-best-view): the same stopping rule, but each next angle is the reachable one that shows the
  most surface not yet seen well, weighted towards surface near suspicious views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from damage_perception.core.verdict import Decision, ViewResult


class ViewPolicy(Protocol):
    """Chooses the next wrist angle (rad) from the views so far, or None to stop."""

    name: str

    def next_view(self, views: Sequence[ViewResult]) -> float | None: ...

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None: ...


@dataclass(frozen=True)
class ViewEvidence:
    """Log-likelihood ratio of "damaged" vs "pristine" given one view's score: a logistic model.

    llr(score) = slope * (score - midpoint). Fit it on labelled views with :func:`fit_view_evidence`; the
    defaults suit the geometric score (pristine views score ~0, damaged views of the damaged side > 0.5).
    """

    slope: float = 12.0
    midpoint: float = 0.35
    clip: float = 6.0   # one view never carries more than this much evidence either way

    def llr(self, score: float) -> float:
        """Evidence of one view (positive: damaged)."""
        return float(np.clip(self.slope * (score - self.midpoint), -self.clip, self.clip))


def fit_view_evidence(pristine_scores: Sequence[float], damaged_scores: Sequence[float],
                      iterations: int = 50) -> ViewEvidence:
    """Fit the logistic view-evidence model by Newton's method on labelled per-view scores.

    With balanced classes the fitted logit is the per-view log-likelihood ratio (the prior cancels).
    """
    x = np.concatenate([np.asarray(pristine_scores, float), np.asarray(damaged_scores, float)])
    y = np.concatenate([np.zeros(len(pristine_scores)), np.ones(len(damaged_scores))])
    weights = np.where(y == 1, len(x) / (2 * max(len(damaged_scores), 1)),
                       len(x) / (2 * max(len(pristine_scores), 1)))  # balance the classes
    design = np.column_stack([x, np.ones_like(x)])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        gradient = design.T @ (weights * (y - p))
        hessian = design.T @ (design * (weights * p * (1 - p) + 1e-6)[:, None])
        beta += np.linalg.solve(hessian + 1e-6 * np.eye(2), gradient)
    slope = max(float(beta[0]), 1e-6)
    return ViewEvidence(slope=slope, midpoint=float(-beta[1] / slope))


@dataclass(frozen=True)
class StoppingRule:
    """Wald's SPRT bounds from target error rates; the view budget is the policy's."""

    false_divert_rate: float = 0.001   # alpha: pristine items diverted
    miss_rate: float = 0.05            # beta: damaged items passed
    min_views: int = 2
    evidence: ViewEvidence = field(default_factory=ViewEvidence)

    @property
    def divert_bound(self) -> float:
        """Divert once the summed evidence reaches log((1 - beta) / alpha)."""
        return math.log((1 - self.miss_rate) / self.false_divert_rate)

    @property
    def pass_bound(self) -> float:
        """Pass once the summed evidence falls to log(beta / (1 - alpha))."""
        return math.log(self.miss_rate / (1 - self.false_divert_rate))

    def total_evidence(self, views: Sequence[ViewResult]) -> float:
        """Summed log-likelihood ratio of the views that saw the item."""
        return sum(self.evidence.llr(view.score) for view in views if view.found)

    def decide(self, views: Sequence[ViewResult], max_views: int) -> Decision | None:
        """DIVERT / PASS when a bound is crossed, REVIEW at the budget, else None (keep looking)."""
        seen = sum(view.found for view in views)
        evidence = self.total_evidence(views)
        if seen >= self.min_views and evidence >= self.divert_bound:
            return Decision.DIVERT
        if seen >= self.min_views and evidence <= self.pass_bound:
            return Decision.PASS
        if len(views) >= max_views:
            return Decision.REVIEW
        return None


class FixedViewPolicy:
    """N views at configured wrist angles, in order; the fused score and threshold decide."""

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

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None:
        return None


def spread_order(num_angles: int) -> list[float]:
    """Angles of a full turn ordered so each prefix is spread out: 0, 180, 90, 270, 45, 225, ..."""
    fractions, seen = [], set()
    step = 1
    while len(fractions) < num_angles:
        for k in range(step):
            fraction = k / step
            if fraction not in seen and len(fractions) < num_angles:
                seen.add(fraction)
                fractions.append(fraction)
        step *= 2
    return [2.0 * math.pi * fraction for fraction in fractions]


class SequentialPolicy:
    """SPRT early stop over views taken in a spread-out order."""

    name = "sequential"

    def __init__(self, max_views: int, rule: StoppingRule = StoppingRule()):
        self.rule = rule
        self.max_views = max_views
        self.angles = spread_order(max_views)

    def next_view(self, views: Sequence[ViewResult]) -> float | None:
        if self.early_decision(views) is not None:
            return None
        return self.angles[len(views)]

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None:
        return self.rule.decide(views, self.max_views)


class NextBestViewPolicy:
    """Chooses the reachable angle that adds the most not-yet-well-seen surface; SPRT stopping.

    The item's surface is modelled by its azimuth around the wrist axis (the camera sees azimuths within
    ``field_of_view`` of the viewing direction, best head-on). Azimuths near a suspicious view (evidence
    above zero) count extra, so the next view looks at a suspicious region from a new angle.
    """

    name = "nbv"

    def __init__(self, max_views: int, rule: StoppingRule = StoppingRule(),
                 reachable: tuple[float, float] = (-math.pi, math.pi), field_of_view: float = math.radians(70),
                 resolution_deg: float = 5.0):
        self.rule = rule
        self.max_views = max_views
        self.reachable = reachable
        self.field_of_view = field_of_view
        self.azimuths = np.radians(np.arange(0.0, 360.0, resolution_deg))
        self.candidates = self.azimuths[self._within_reach(self.azimuths)]
        if self.candidates.size == 0:
            raise ValueError(f"no wrist angle is reachable within {reachable}")

    def _within_reach(self, angles: np.ndarray) -> np.ndarray:
        low, high = self.reachable
        wrapped = (angles - low) % (2 * math.pi)
        return wrapped <= (high - low) + 1e-9

    def _visibility(self, angle: float) -> np.ndarray:
        """How well a view at ``angle`` sees each azimuth (1 head-on, 0 beyond the field of view)."""
        offset = np.abs(np.angle(np.exp(1j * (self.azimuths - angle))))
        return np.clip(np.cos(offset * (math.pi / 2) / self.field_of_view), 0.0, 1.0) * (offset < self.field_of_view)

    def gain(self, angle: float, views: Sequence[ViewResult]) -> float:
        """Expected information of a view at ``angle``: weighted surface it would add."""
        seen = np.zeros_like(self.azimuths)
        interest = np.ones_like(self.azimuths)
        for view in views:
            visibility = self._visibility(view.wrist_angle)
            seen = np.maximum(seen, visibility)
            if view.found and self.rule.evidence.llr(view.score) > 0:
                interest += 2.0 * visibility  # look again at suspicious surface, from another side
        return float(np.sum(interest * np.maximum(self._visibility(angle) - seen, 0.0)))

    def next_view(self, views: Sequence[ViewResult]) -> float | None:
        if self.early_decision(views) is not None:
            return None
        if not views:
            return float(self.candidates[0])
        gains = [self.gain(float(angle), views) for angle in self.candidates]
        return float(self.candidates[int(np.argmax(gains))])

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None:
        return self.rule.decide(views, self.max_views)


POLICIES = ("fixed", "sequential", "nbv")


def make_policy(name: str, num_views: int, rule: StoppingRule = StoppingRule(),
                reachable: tuple[float, float] = (-math.pi, math.pi)) -> ViewPolicy:
    """The policy called ``name``; ``num_views`` is the fixed count or the others' view budget."""
    if name in ("", "fixed"):
        return FixedViewPolicy.evenly_spaced(num_views)
    if name == "sequential":
        return SequentialPolicy(num_views, rule)
    if name == "nbv":
        return NextBestViewPolicy(num_views, rule, reachable)
    raise ValueError(f"unknown view policy {name!r}; available: {', '.join(POLICIES)}")
