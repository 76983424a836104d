"""Detection metrics at the operating point that matters: a very low false-positive rate.

``recall_at_fpr`` reads the empirical operating point off labelled scores; ``threshold_for_fpr`` picks a
deployment threshold from good items only, with a one-sided Clopper-Pearson upper confidence bound on the
false-positive rate (so a threshold is only claimed to meet 0.1 % when enough good items show it).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def auroc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN without both classes."""
    positive = np.asarray(positive_scores, float)
    negative = np.asarray(negative_scores, float)
    if positive.size == 0 or negative.size == 0:
        return math.nan
    ranks = _average_ranks(np.concatenate([positive, negative]))
    return float((ranks[:positive.size].sum() - positive.size * (positive.size + 1) / 2)
                 / (positive.size * negative.size))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), float)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def recall_at_fpr(damaged_scores: Sequence[float], pristine_scores: Sequence[float],
                  target_fpr: float) -> tuple[float, float]:
    """Recall and threshold when the threshold lets at most ``target_fpr`` of pristine items through.

    The threshold sits just above the pristine score that the target rank allows, so ties count against
    it; with fewer than 1/target_fpr pristine items that is the maximum pristine score (say so in reports).
    """
    pristine = np.sort(np.asarray(pristine_scores, dtype=float))
    damaged = np.asarray(damaged_scores, dtype=float)
    if pristine.size == 0 or damaged.size == 0:
        return math.nan, math.nan
    allowed = int(math.floor(target_fpr * pristine.size))  # pristine items allowed at or above threshold
    threshold = float(np.nextafter(pristine[pristine.size - 1 - allowed], np.inf))
    return float(np.mean(damaged >= threshold)), threshold


def roc_curve(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over every threshold, from (0, 0) to (1, 1)."""
    scores = np.concatenate([positive_scores, negative_scores]).astype(float)
    labels = np.concatenate([np.ones(len(positive_scores)), np.zeros(len(negative_scores))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # compared, not subtracted: -inf - -inf is nan, which would split a tie of signals a view lacks
    last_of_tie = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    tpr = np.r_[0.0, np.cumsum(labels)[last_of_tie] / max(labels.sum(), 1)]
    fpr = np.r_[0.0, np.cumsum(1 - labels)[last_of_tie] / max((1 - labels).sum(), 1)]
    return fpr, tpr


def clopper_pearson_upper(exceedances: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of a binomial rate after ``exceedances`` in ``trials``."""
    from scipy.stats import beta

    if trials <= 0:
        return 1.0
    if exceedances >= trials:
        return 1.0
    return float(beta.ppf(confidence, exceedances + 1, trials - exceedances))


@dataclass(frozen=True)
class FprThreshold:
    """A threshold chosen from good items, with what it is known to achieve."""

    threshold: float
    good_items: int
    exceedances: int           # good items at or above the threshold
    fpr_upper_bound: float     # Clopper-Pearson, at ``confidence``
    confidence: float
    target_fpr: float

    @property
    def meets_target(self) -> bool:
        return self.fpr_upper_bound <= self.target_fpr


def threshold_for_fpr(good_scores: Sequence[float], target_fpr: float, confidence: float = 0.95) -> FprThreshold:
    """The lowest threshold whose false-positive rate on good items has an upper confidence bound at or
    below ``target_fpr``; when no threshold can show that (too few good items), the one just above the
    highest good score, with the bound it does reach (``meets_target`` False)."""
    scores = np.sort(np.asarray(good_scores, float))[::-1]
    n = scores.size
    if n == 0:
        raise ValueError("need good items' scores to pick a threshold from")
    best = None
    for exceedances in range(n):  # threshold just above the (exceedances+1)-th highest good score
        bound = clopper_pearson_upper(exceedances, n, confidence)
        if bound > target_fpr:
            break
        best = (exceedances, bound)
    exceedances, bound = best if best else (0, clopper_pearson_upper(0, n, confidence))
    threshold = float(np.nextafter(scores[exceedances], np.inf))
    return FprThreshold(threshold, n, exceedances, bound, confidence, target_fpr)


def reliability(probabilities: Sequence[float], outcomes: Sequence[bool],
                bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed frequency, count) per equal-width probability bin with items."""
    p = np.asarray(probabilities, float)
    y = np.asarray(outcomes, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [(float(p[which == b].mean()), float(y[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]


def detection_figures(damaged_scores: Sequence[float], good_scores: Sequence[float],
                      fprs: Sequence[float] = (0.01, 0.05)) -> dict:
    """AUROC and recall at each false-positive rate of ``fprs`` (read off the good scores), JSON-ready; a
    rate below 1 / len(good_scores) is marked ``measurable: False`` (its point is the largest good score)."""
    figures = {"damaged": len(damaged_scores), "good": len(good_scores),
               "auroc": auroc(damaged_scores, good_scores), "operating_points": []}
    for fpr in fprs:
        recall, threshold = recall_at_fpr(damaged_scores, good_scores, fpr)
        figures["operating_points"].append({"target_fpr": fpr, "recall": recall, "threshold": threshold,
                                            "measurable": bool(len(good_scores) * fpr >= 1)})
    return figures


def figures_line(name: str, figures: dict) -> str:
    """One printable line of ``detection_figures``."""
    points = ", ".join(f"recall at FPR {100 * p['target_fpr']:g} % {100 * p['recall']:.1f} %"
                       + ("" if p["measurable"] else " (too few good images to measure)")
                       for p in figures["operating_points"])
    return (f"{name}: AUROC {figures['auroc']:.4f}, {points} "
            f"({figures['damaged']} damaged, {figures['good']} good)")
