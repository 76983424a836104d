"""Per-view results, their fusion over views and the item-level decision."""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from damage_perception.core.damage_types import DAMAGE_TYPES

if TYPE_CHECKING:
    from damage_perception.core.identification import ClaimCheck
    from damage_perception.core.registered_comparison import PosedCrop


class Decision(enum.IntEnum):
    """What the planner does with the item; values match DamageVerdict's constants."""

    PASS = 0
    DIVERT = 1
    REVIEW = 2
    ERROR = 3


@dataclass(frozen=True)
class DecisionConfig:
    """How view scores become a decision."""

    divert_threshold: float = 0.5   # fused score at or above: DIVERT
    review_band: float = 0.1        # fused score in [threshold - band, threshold): REVIEW
    fusion: str = "max"             # "max" or "noisy_or" over the views' scores, or "learned" (the damage
    #                                 model's fitted item fusion over its view log-odds; needs a model)
    min_views: int = 1              # fewer views with an item than this: ERROR (the policy's coverage rule,
    #                                 core.coverage, decides whether the usable views allow a PASS)


@dataclass
class ViewResult:
    """What one view says about the item."""

    index: int
    wrist_angle: float
    found: bool                     # was an item segmented in this view
    score: float = 0.0
    type_scores: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DAMAGE_TYPES, 0.0))
    damage_location: np.ndarray | None = None  # gripper frame
    num_points: int = 0
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    logit: float = float("nan")     # the damage model's fused view log-odds (NaN without a model)
    signals: dict[str, float] = field(default_factory=dict)  # the model's per-view signals
    heatmap: np.ndarray | None = None               # per-cell damage probability over the item crop
    crop_box: tuple[int, int, int, int] | None = None  # the crop's (row0, row1, col0, col1) in the image
    embedding: np.ndarray | None = None             # the view's product embedding (core.identification)
    patches: np.ndarray | None = None               # (n, D) item-cell patch features, kept for auto-enrolment
    cloud: np.ndarray | None = None                 # (N, 3) thinned item points (gripper frame), likewise
    posed: PosedCrop | None = None                  # the item crop and its camera (registered comparison), likewise


@dataclass
class ItemVerdict:
    """The fused, item-level outcome of an inspection."""

    decision: Decision
    fused_score: float
    threshold: float
    type_scores: dict[str, float]
    views: list[ViewResult]
    damage_location: np.ndarray | None
    reason: str
    damage_probability: float = float("nan")   # the classifier's, largest over views (NaN without a model)
    anomaly_score: float = float("nan")        # gallery anomaly, largest over views (NaN without a gallery)
    closest_sku: str = ""                      # product identification: the enrolled SKU the item looks most like
    sku_mismatch: bool = False                 # the item does not look like its claimed SKU
    unusable_views: list = field(default_factory=list)  # core.coverage.UnusableView: every failed attempt


def fuse_scores(scores: list[float], method: str) -> float:
    """Combine per-view damage scores in [0, 1] into one.

    ``max``: the item is as damaged as its worst view (damage is usually seen from few angles).
    ``noisy_or``: views are independent detectors; 1 - prod(1 - s).
    """
    if not scores:
        return 0.0
    scores_array = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    if method == "max":
        return float(scores_array.max())
    if method == "noisy_or":
        return float(1.0 - np.prod(1.0 - scores_array))
    raise ValueError(f"unknown fusion method {method!r}: use 'max' or 'noisy_or'")


def decide(views: list[ViewResult], config: DecisionConfig, policy_decision: Decision | None = None,
           fusion=None, has_gallery: bool = True, stale_gallery: str = "") -> ItemVerdict:
    """Fuse the views and judge the item against the configured threshold.

    A view policy that settled the item itself (a sequential test crossing a bound, or running out of
    views undecided: REVIEW) passes its ``policy_decision``, which then stands instead of the threshold's,
    except over an item whose fused score reaches the threshold: that item is diverted.
    With ``config.fusion == "learned"``, ``fusion`` (a ``core.fusion.FusionModel``) turns the views' log-odds
    into the item's probability; without a gallery for the SKU (``has_gallery`` False) the classifier alone
    may divert an item but never pass it: it goes to REVIEW. So does an item judged against a
    ``stale_gallery`` (why it is stale: its reference comparison is not the one the fusion was fitted on).
    """
    seen = [view for view in views if view.found]
    if len(seen) < config.min_views:
        reasons = sorted({view.reason for view in views if view.reason}) or ["no views were taken"]
        return ItemVerdict(Decision.ERROR, 0.0, config.divert_threshold, dict.fromkeys(DAMAGE_TYPES, 0.0),
                           views, None, "; ".join(reasons))
    if config.fusion == "learned":
        if fusion is None:
            raise ValueError("decision.fusion is 'learned' but no damage model is loaded")
        fused = fusion.item_probability([view.logit for view in seen], has_gallery,
                                        signals=[view.signals for view in seen])
    else:
        fused = fuse_scores([view.score for view in seen], config.fusion)
    type_scores = {name: max(view.type_scores.get(name, 0.0) for view in seen) for name in DAMAGE_TYPES}
    worst = max(seen, key=lambda view: view.score)
    decision, reason = _judge(fused, config, worst, len(seen))
    # The fused score over every view taken, at or above the calibrated threshold, has decided: that divert
    # stands whatever the policy's test says (its bounds read one view's evidence at a time, the fused score
    # all of them, through the item model the threshold was calibrated for).
    if policy_decision is not None and policy_decision != decision and decision != Decision.DIVERT:
        decision, reason = policy_decision, (f"view policy decided {policy_decision.name} after {len(seen)} views "
                                             f"(damage score {fused:.3f}, threshold {config.divert_threshold:.3f})")
    if fusion is not None and not has_gallery and decision == Decision.PASS:
        decision, reason = Decision.REVIEW, (f"no reference gallery for this SKU: the classifier alone cannot clear "
                                             f"it (damage score {fused:.3f})")
    if fusion is not None and has_gallery and stale_gallery and decision == Decision.PASS:
        decision, reason = Decision.REVIEW, (f"the reference gallery cannot clear it (damage score {fused:.3f}): "
                                             f"{stale_gallery}")
    location = worst.damage_location if decision != Decision.PASS else None
    return ItemVerdict(decision, fused, config.divert_threshold, type_scores, views, location, reason,
                       _largest(seen, "classifier", probability=True),
                       _largest(seen, "anomaly") if has_gallery else float("nan"))  # 1.0 stands in without one


def with_identification(verdict: ItemVerdict, check: ClaimCheck | None) -> ItemVerdict:
    """The verdict with the claimed-SKU check (``core.identification.check_item``) applied: a mismatch sends a
    judged item to REVIEW (its anomaly score compared it with another product's gallery, so neither PASS nor
    DIVERT can be trusted); an ERROR stays an ERROR."""
    if check is None:
        return verdict
    verdict = dataclasses.replace(verdict, closest_sku=check.closest, sku_mismatch=check.mismatch)
    if not check.mismatch or verdict.decision == Decision.ERROR:
        return verdict
    return dataclasses.replace(verdict, decision=Decision.REVIEW, damage_location=None,
                               reason=f"{check.reason}: mislabelled? (was {verdict.decision.name}: {verdict.reason})")


def _largest(views: list[ViewResult], signal: str, probability: bool = False) -> float:
    """A model signal's largest value over the views (NaN when no view has it)."""
    values = [view.signals[signal] for view in views if signal in view.signals]
    if not values:
        return float("nan")
    top = max(values)
    return float(1.0 / (1.0 + np.exp(-top))) if probability else float(top)


def _judge(fused: float, config: DecisionConfig, worst: ViewResult, num_seen: int) -> tuple[Decision, str]:
    threshold = config.divert_threshold
    if fused >= threshold:
        kind = max(worst.type_scores, key=worst.type_scores.get)
        return Decision.DIVERT, (f"damage score {fused:.3f} >= {threshold:.3f} "
                                 f"(most likely {kind}, view {worst.index})")
    if fused >= threshold - config.review_band:
        return Decision.REVIEW, f"damage score {fused:.3f} just below {threshold:.3f}: a person should check"
    return Decision.PASS, f"damage score {fused:.3f} < {threshold:.3f} over {num_seen} views"
