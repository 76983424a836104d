import math

import numpy as np
import pytest

from damage_perception.core.metrics import (
    auroc,
    clopper_pearson_upper,
    recall_at_fpr,
    reliability,
    roc_curve,
    threshold_for_fpr,
)


def brute_force_auroc(positive, negative):
    p, n = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(np.mean((p > n) + 0.5 * (p == n)))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_is_the_pairwise_probability_with_ties_counting_half(seed):
    rng = np.random.default_rng(seed)
    positive = rng.integers(0, 8, size=rng.integers(1, 60))  # few distinct values: many ties
    negative = rng.integers(-2, 6, size=rng.integers(1, 60))
    assert auroc(positive, negative) == pytest.approx(brute_force_auroc(positive, negative), abs=1e-12)


def test_auroc_extremes_and_missing_class():
    assert auroc([3, 4], [1, 2]) == 1.0
    assert auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    assert math.isnan(auroc([], [1.0])) and math.isnan(auroc([1.0], []))


def test_recall_at_fpr_allows_the_target_share_of_pristine_scores():
    pristine = np.random.default_rng(0).permutation(np.arange(1000.0))
    recall, threshold = recall_at_fpr([995.0, 990.0, 989.0, 500.0], pristine, 0.01)
    assert 989.0 < threshold <= 990.0
    assert np.sum(pristine >= threshold) == 10
    assert recall == 0.5  # 989 ties the highest pristine score the threshold must exceed


def test_recall_at_fpr_with_too_few_pristine_scores_is_above_their_maximum():
    recall, threshold = recall_at_fpr([5.0, 9.0, 11.0], [1.0, 2.0, 10.0], 0.001)
    assert threshold > 10.0 and recall == pytest.approx(1 / 3)
    assert all(math.isnan(v) for v in recall_at_fpr([], [1.0], 0.01))


def test_roc_curve_runs_from_origin_to_one_and_is_monotone():
    rng = np.random.default_rng(1)
    positive, negative = rng.integers(0, 10, 80) + 2, rng.integers(0, 10, 120)
    fpr, tpr = roc_curve(positive, negative)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert len(fpr) == len(np.unique(np.concatenate([positive, negative]))) + 1  # one point per distinct score
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auroc(positive, negative), abs=1e-12)


def test_roc_curve_keeps_a_tie_of_missing_signals_together():
    # a signal an item's views lack scores -inf: those items are one tie, one point of the curve
    fpr, tpr = roc_curve([2.0, -np.inf, -np.inf], [1.0, -np.inf, -np.inf, -np.inf])
    assert fpr.tolist() == [0.0, 0.0, 0.25, 1.0] and tpr.tolist() == [0.0, 1 / 3, 1 / 3, 1.0]


def test_clopper_pearson_upper_bounds_of_zero_exceedances():
    assert 0.00099 < clopper_pearson_upper(0, 2995) < 0.001
    assert clopper_pearson_upper(0, 1000) == pytest.approx(0.003, abs=0.0001)
    assert clopper_pearson_upper(0, 2990) > 0.001  # the rule of three: ~3000 clean trials are needed
    assert clopper_pearson_upper(5, 1000) > clopper_pearson_upper(0, 1000)
    assert clopper_pearson_upper(0, 1000, confidence=0.99) > clopper_pearson_upper(0, 1000)
    assert clopper_pearson_upper(3, 3) == 1.0 and clopper_pearson_upper(0, 0) == 1.0


def test_threshold_for_fpr_with_enough_good_items_meets_the_target():
    good = np.random.default_rng(2).normal(size=5000)
    chosen = threshold_for_fpr(good, 0.001)
    assert chosen.meets_target and chosen.fpr_upper_bound <= 0.001
    assert chosen.good_items == 5000
    assert np.sum(good >= chosen.threshold) == chosen.exceedances
    assert chosen.exceedances == 1  # 1 in 5000 is bounded by ~0.00095; 2 in 5000 by ~0.00126
    assert chosen.fpr_upper_bound == pytest.approx(clopper_pearson_upper(1, 5000))
    assert chosen.threshold < np.sort(good)[-1]


def test_threshold_for_fpr_with_too_few_good_items_says_so_and_sits_above_them_all():
    good = np.random.default_rng(3).normal(size=500)
    chosen = threshold_for_fpr(good, 0.001)
    assert not chosen.meets_target
    assert chosen.fpr_upper_bound == pytest.approx(clopper_pearson_upper(0, 500)) and chosen.fpr_upper_bound > 0.005
    assert chosen.exceedances == 0 and chosen.threshold > good.max()
    with pytest.raises(ValueError):
        threshold_for_fpr([], 0.001)


def test_reliability_bins():
    bins = reliability([0.05, 0.05, 0.95, 0.95, 0.55, 1.0], [0, 0, 1, 0, 1, 1], bins=10)
    assert [count for _, _, count in bins] == [2, 1, 3]
    (p0, y0, _), (p5, y5, _), (p9, y9, _) = bins
    assert (p0, y0) == pytest.approx((0.05, 0.0))
    assert (p5, y5) == pytest.approx((0.55, 1.0))
    assert (p9, y9) == pytest.approx((np.mean([0.95, 0.95, 1.0]), 2 / 3))
