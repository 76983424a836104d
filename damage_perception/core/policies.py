"""View policies: which wrist angle to look from next, and when to stop.

Every policy answers two questions after each view: ``next_view(views)`` (a wrist angle, or None to stop)
and ``early_decision(views)`` (PASS / DIVERT when the evidence already settles it, REVIEW when the view
budget ran out undecided, or None to leave the decision to the fused score and threshold; ``core.verdict.decide``
diverts an item whose fused score reaches the threshold whatever the policy decided).

- ``fixed``: N views at configured angles; the threshold decides.
- ``sequential``: a sequential probability ratio test for local damage (:class:`StoppingRule`): divert as
  soon as one view's evidence crosses a bound derived from the target false-divert and miss rates, pass
  once the surface has been seen clean often enough; REVIEW when the budget runs out in between.
- ``nbv`` (next-best-view): the same stopping rule, but each next angle is the reachable one that shows the
  most surface not yet seen well, weighted towards surface near suspicious views.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from damage_perception.core.verdict import Decision, ViewResult


class ViewPolicy(Protocol):
    """Chooses the next wrist angle (rad) from the views so far, or None to stop."""

    name: str

    def next_view(self, views: Sequence[ViewResult]) -> float | None: ...

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None: ...

    def coverage_shortfall(self, views: Sequence[ViewResult]) -> str:
        """Why the usable views (``found``) do not yet cover what a PASS needs; "" when they do."""
        ...


@dataclass(frozen=True)
class ViewEvidence:
    """Log-likelihood ratio of "this view shows damage" vs "it shows pristine surface", given its score
    (the model's view log-odds when a model scored it, see ``evidence_input``).

    llr(score) = slope * (score - midpoint), a logistic model: fit it on labelled views with
    :func:`fit_view_evidence`. The defaults suit the geometric score (clean views score ~0, views facing
    damage mostly > 0.5).
    """

    slope: float = 12.0
    midpoint: float = 0.35
    clip: float = 10.0   # no single view carries more evidence than this either way

    def llr(self, score: float) -> float:
        """Evidence of one view (positive: damage seen)."""
        return float(np.clip(self.slope * (score - self.midpoint), -self.clip, self.clip))

    def of_view(self, view: ViewResult) -> float:
        """Evidence of a view from its ``evidence_input``."""
        return self.llr(evidence_input(view))


def evidence_input(view: ViewResult) -> float:
    """What the view evidence is a function of: the damage model's view log-odds when a model scored the
    view (unbounded, so one clear view can reach the divert bound), else the geometric score in [0, 1]."""
    return view.logit if math.isfinite(view.logit) else view.score


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


AZIMUTHS = np.radians(np.arange(0.0, 360.0, 5.0))  # the item's surface, by azimuth about the wrist axis


def visibility(angle: float, field_of_view: float) -> np.ndarray:
    """How well a view at wrist ``angle`` sees each azimuth: 1 head-on, falling to 0 at ``field_of_view``."""
    offset = np.abs(np.angle(np.exp(1j * (AZIMUTHS - angle))))
    return np.cos(offset * (math.pi / 2) / field_of_view) * (offset < field_of_view)


@dataclass(frozen=True)
class StoppingRule:
    """A sequential probability ratio test for damage that is local: seen from some angles only.

    Damage shows in the views that face it, so the test has two sides. DIVERT once one view's evidence
    reaches log((1 - beta) / alpha). PASS once damage anywhere would most likely have been seen: with
    damage equally likely at any azimuth and each clean look at it missing it with ``view_miss_rate``,
    P(all clean | damaged) = mean over azimuths of view_miss_rate ** (clean looks there), and the item passes
    when log of that falls to log(beta / (1 - alpha)). A clean view therefore says little about the far side,
    and a suspicious view (evidence > 0) is not a clean look. In between, look again; REVIEW at the budget.
    """

    false_divert_rate: float = 0.001   # alpha: pristine items diverted
    miss_rate: float = 0.05            # beta: damaged items passed
    view_miss_rate: float = 0.05       # a view facing the damage scores it clean (fit on labelled views)
    field_of_view_deg: float = 70.0    # a view judges surface up to this far from head-on
    evidence: ViewEvidence = field(default_factory=ViewEvidence)

    @property
    def divert_bound(self) -> float:
        """DIVERT once a view's evidence reaches log((1 - beta) / alpha)."""
        return math.log((1 - self.miss_rate) / self.false_divert_rate)

    @property
    def pass_bound(self) -> float:
        """PASS once the clean evidence falls to log(beta / (1 - alpha))."""
        return math.log(self.miss_rate / (1 - self.false_divert_rate))

    def damage_evidence(self, views: Sequence[ViewResult]) -> float:
        """The strongest single view's evidence of damage (0 without views of the item)."""
        return max((self.evidence.of_view(view) for view in views if view.found), default=0.0)

    def clean_evidence(self, views: Sequence[ViewResult]) -> float:
        """log P(every view looks clean | damaged) under uniform damage placement (0: no clean look yet)."""
        looks = np.zeros_like(AZIMUTHS)
        for view in views:
            if view.found and self.evidence.of_view(view) < 0:
                looks += visibility(view.wrist_angle, math.radians(self.field_of_view_deg)) > 0.5
        return float(np.log(np.mean(self.view_miss_rate ** looks)))

    def pass_shortfall(self, views: Sequence[ViewResult]) -> str:
        """Why the usable views' clean evidence does not reach the pass bound; "" when it does."""
        clean = self.clean_evidence(views)
        if clean <= self.pass_bound:
            return ""
        usable = sum(view.found for view in views)
        return (f"clean evidence {clean:.2f} from {usable} usable views does not reach the pass bound "
                f"{self.pass_bound:.2f}")

    def decide(self, views: Sequence[ViewResult], max_views: int) -> Decision | None:
        """DIVERT / PASS when a bound is crossed, REVIEW at the budget, else None (keep looking)."""
        if self.damage_evidence(views) >= self.divert_bound:
            return Decision.DIVERT
        if self.clean_evidence(views) <= self.pass_bound:
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
    def evenly_spaced(cls, num_views: int) -> FixedViewPolicy:
        """``num_views`` angles spread over a full turn."""
        return cls([2.0 * math.pi * i / num_views for i in range(num_views)])

    def next_view(self, views: Sequence[ViewResult]) -> float | None:
        return self.angles[len(views)] if len(views) < len(self.angles) else None

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None:
        return None

    def coverage_shortfall(self, views: Sequence[ViewResult]) -> str:
        """Every planned angle needs a usable view."""
        usable = {view.wrist_angle for view in views if view.found}
        missing = [angle for angle in self.angles if angle not in usable]
        if not missing:
            return ""
        return (f"{len(self.angles) - len(missing)} of {len(self.angles)} planned views usable (none at "
                f"{', '.join(f'{math.degrees(angle):.0f}' for angle in missing)} deg)")


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

    def coverage_shortfall(self, views: Sequence[ViewResult]) -> str:
        """The stopping rule's pass evidence, from usable views only."""
        return self.rule.pass_shortfall(views)


class NextBestViewPolicy:
    """Chooses the reachable angle that adds the most not-yet-well-seen surface; the same stopping rule.

    Surface is modelled by its azimuth around the wrist axis (:func:`visibility`). Azimuths near a
    suspicious view (evidence above zero) count extra, so the next view looks at a suspicious region from a
    new angle.
    """

    name = "nbv"

    def __init__(self, max_views: int, rule: StoppingRule = StoppingRule(),
                 reachable: tuple[float, float] = (-math.pi, math.pi)):
        self.rule = rule
        self.max_views = max_views
        self.field_of_view = math.radians(rule.field_of_view_deg)
        low, high = reachable
        self.candidates = AZIMUTHS[(AZIMUTHS - low) % (2 * math.pi) <= (high - low) + 1e-9]
        if self.candidates.size == 0:
            raise ValueError(f"no wrist angle is reachable within {reachable}")
        self._candidate_visibility = np.stack([visibility(angle, self.field_of_view) for angle in self.candidates])

    def gains(self, views: Sequence[ViewResult]) -> np.ndarray:
        """Expected information of a view at each candidate angle: the weighted surface it would add."""
        seen = np.zeros_like(AZIMUTHS)
        interest = np.ones_like(AZIMUTHS)
        for view in views:
            view_visibility = visibility(view.wrist_angle, self.field_of_view)
            seen = np.maximum(seen, view_visibility)
            if view.found and self.rule.evidence.of_view(view) > 0:
                interest += 2.0 * view_visibility  # look again at suspicious surface, from another side
        return np.maximum(self._candidate_visibility - seen, 0.0) @ interest

    def next_view(self, views: Sequence[ViewResult]) -> float | None:
        if self.early_decision(views) is not None:
            return None
        if not views:
            return float(self.candidates[0])
        return float(self.candidates[int(np.argmax(self.gains(views)))])

    def early_decision(self, views: Sequence[ViewResult]) -> Decision | None:
        return self.rule.decide(views, self.max_views)

    def coverage_shortfall(self, views: Sequence[ViewResult]) -> str:
        """The stopping rule's pass evidence, from usable views only."""
        return self.rule.pass_shortfall(views)


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

