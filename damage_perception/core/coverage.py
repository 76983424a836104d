"""A PASS needs evidence: unusable views are retried, and short coverage never passes.

A view is *unusable* when the pipeline found no item in it (nothing segmented, item cut off by the image
edge, depth without readings) or when the source could not give one at all (``ViewUnavailable``: TF missing,
no frame in time). :func:`take_views` retries an unusable view at the same wrist angle with a fresh frame, at
most ``retries`` times, and shows the policy one result per angle (the usable one, else the last attempt).
:func:`require_coverage` then holds the verdict to the policy's coverage rule
(``ViewPolicy.coverage_shortfall``; fixed: every planned angle usable; sequential / nbv: the stopping rule's
pass evidence from usable views only): a PASS without it becomes REVIEW with the reason, and an item with
no usable view at all is an ERROR.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.policies import ViewPolicy
from damage_perception.core.verdict import Decision, ItemVerdict, ViewResult


class InspectionError(Exception):
    """An inspection cannot go on; the message becomes the ERROR verdict's reason."""


class ViewUnavailable(InspectionError):
    """The source could not give a view at this angle (TF missing, no frame in time); worth a retry."""


@dataclass(frozen=True)
class UnusableView:
    """One attempt at a view that could not be used, and why."""

    wrist_angle: float
    reason: str
    frame_index: int = -1    # index of the frame it came from among the frames taken; -1: no frame


@dataclass
class TakenViews:
    """An inspection's views: one result per wrist angle the policy asked for, and every unusable attempt."""

    views: list[ViewResult] = field(default_factory=list)
    unusable: list[UnusableView] = field(default_factory=list)
    frames_taken: int = 0


def take_views(policy: ViewPolicy, take_view: Callable[[int, float], ViewResult], retries: int = 0) -> TakenViews:
    """Take the views ``policy`` asks for; ``take_view(frame_index, angle)`` takes the next frame as a view
    (``frame_index`` counts frames taken) or raises ViewUnavailable. An unusable view is tried again at the same
    angle up to ``retries`` times. Nothing usable in the first angle (an empty gripper) ends the inspection."""
    taken = TakenViews()
    while (angle := policy.next_view(taken.views)) is not None:
        taken.views.append(_view_at(angle, len(taken.views), take_view, retries, taken))
        if not any(view.found for view in taken.views):
            break
    return taken


def _view_at(angle: float, view_index: int, take_view: Callable[[int, float], ViewResult], retries: int,
             taken: TakenViews) -> ViewResult:
    result = ViewResult(view_index, angle, False, reason="no view taken")
    for _ in range(1 + max(retries, 0)):
        try:
            result = take_view(taken.frames_taken, angle)
        except ViewUnavailable as problem:
            result = ViewResult(view_index, angle, False, reason=str(problem))
            taken.unusable.append(UnusableView(angle, result.reason))
            continue
        taken.frames_taken += 1
        if result.found:
            return result
        taken.unusable.append(UnusableView(angle, result.reason or "no item found", taken.frames_taken - 1))
    return result


def require_coverage(verdict: ItemVerdict, policy: ViewPolicy, unusable: list[UnusableView]) -> ItemVerdict:
    """``verdict`` held to the coverage rule: ERROR when no view was usable, REVIEW instead of a PASS that the
    usable views do not cover; the unusable attempts are listed on it either way."""
    verdict = dataclasses.replace(verdict, unusable_views=list(unusable))
    if not any(view.found for view in verdict.views):
        if verdict.decision == Decision.ERROR:
            return verdict
        return dataclasses.replace(verdict, decision=Decision.ERROR, damage_location=None,
                                   type_scores=dict.fromkeys(DAMAGE_TYPES, 0.0),
                                   reason=f"no usable view: {summarise(unusable)}")
    if verdict.decision != Decision.PASS:
        return verdict
    shortfall = policy.coverage_shortfall(verdict.views)
    if not shortfall:
        return verdict
    return dataclasses.replace(verdict, decision=Decision.REVIEW, damage_location=None,
                               reason=f"coverage short: {shortfall}; unusable: {summarise(unusable)} "
                                      f"(was PASS: {verdict.reason})")


def summarise(unusable: list[UnusableView], limit: int = 3) -> str:
    """The distinct reasons for unusable views, most frequent first, with counts."""
    if not unusable:
        return "none"
    counts: dict[str, int] = {}
    for view in unusable:
        counts[view.reason] = counts.get(view.reason, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    text = "; ".join(f"{reason} (x{count})" if count > 1 else reason for reason, count in ordered[:limit])
    return text + (f"; {len(ordered) - limit} more reasons" if len(ordered) > limit else "")
