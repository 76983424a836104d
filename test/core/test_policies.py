import math

import numpy as np
import pytest

from damage_perception.core.policies import (
    FixedViewPolicy,
    NextBestViewPolicy,
    SequentialPolicy,
    StoppingRule,
    ViewEvidence,
    fit_view_evidence,
    make_policy,
    spread_order,
)
from damage_perception.core.verdict import Decision, ViewResult


def run(policy, scores):
    """Feed ``scores`` in order as the views the policy asks for; return (views taken, decision)."""
    views = []
    while (angle := policy.next_view(views)) is not None:
        score = scores[len(views)]
        views.append(ViewResult(len(views), angle, score is not None, score or 0.0))
    return views, policy.early_decision(views)


def test_fixed_policy_visits_angles_in_order_then_stops():
    views, decision = run(FixedViewPolicy([0.0, 1.0, 2.0]), [0.1, 0.2, 0.3])
    assert [v.wrist_angle for v in views] == [0.0, 1.0, 2.0] and decision is None


def test_evenly_spaced_covers_a_turn():
    assert make_policy("fixed", 4).angles == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])


def test_unknown_policy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="available: fixed, sequential, nbv"):
        make_policy("random", 3)
    with pytest.raises(ValueError):
        FixedViewPolicy([])


def test_sprt_bounds_follow_the_error_rates():
    rule = StoppingRule(false_divert_rate=0.001, miss_rate=0.05)
    assert rule.divert_bound == pytest.approx(math.log(0.95 / 0.001))
    assert rule.pass_bound == pytest.approx(math.log(0.05 / 0.999))
    assert StoppingRule(false_divert_rate=0.0001).divert_bound > rule.divert_bound


def test_clean_views_pass_only_once_the_whole_surface_was_seen():
    views, decision = run(SequentialPolicy(8, StoppingRule()), [0.0] * 8)
    assert decision == Decision.PASS
    # spread order 0, 180, 90, 270: every side has had a clean look after the fourth view, not before
    assert len(views) == 4
    rule = StoppingRule()
    assert rule.clean_evidence(views[:3]) > rule.pass_bound >= rule.clean_evidence(views)


def test_stricter_miss_rate_needs_more_views_to_pass():
    views, decision = run(SequentialPolicy(8, StoppingRule(miss_rate=0.01)), [0.0] * 8)
    assert decision == Decision.PASS and len(views) > 4


def test_one_clear_view_of_damage_diverts_at_once():
    views, decision = run(SequentialPolicy(8, StoppingRule()), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # llr(1.0) = 12 * 0.65 = 7.8 >= log(0.95 / 0.001) = 6.86
    assert decision == Decision.DIVERT and len(views) == 2


def test_a_suspicious_view_is_not_a_clean_look():
    # the 180-degree side looks suspicious (llr 3.6 < 6.86): that side never gets a clean look from it
    views, decision = run(SequentialPolicy(8, StoppingRule()), [0.0, 0.65, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert decision in (Decision.PASS, Decision.REVIEW) and len(views) > 4


def test_undecided_items_end_in_review_at_the_budget():
    views, decision = run(SequentialPolicy(5, StoppingRule()), [0.35] * 5)  # zero evidence either way
    assert decision == Decision.REVIEW and len(views) == 5


def test_views_without_the_item_carry_no_evidence():
    views, decision = run(SequentialPolicy(4, StoppingRule()), [None, None, None, None])
    assert decision == Decision.REVIEW and len(views) == 4


def test_spread_order_halves_the_gaps():
    assert np.degrees(spread_order(8)) == pytest.approx([0, 180, 90, 270, 45, 135, 225, 315])


def test_nbv_first_looks_at_the_unseen_side_and_stays_reachable():
    policy = NextBestViewPolicy(6, StoppingRule(), reachable=(-math.pi / 2, math.pi / 2))
    views = [ViewResult(0, 0.0, True, 0.35)]
    angle = policy.next_view(views)
    assert abs(math.remainder(angle, 2 * math.pi)) > math.radians(60)  # not the side already seen
    assert abs(math.remainder(angle, 2 * math.pi)) <= math.pi / 2 + 1e-9


def test_nbv_prefers_the_surface_next_to_a_suspicious_view():
    policy = NextBestViewPolicy(6, StoppingRule())
    # seen at 0 (clean) and at 180 deg (suspicious): the next view should flank 180 rather than 0
    views = [ViewResult(0, 0.0, True, 0.0), ViewResult(1, math.pi, True, 0.6)]
    angle = policy.next_view(views)
    assert abs(math.remainder(angle - math.pi, 2 * math.pi)) < abs(math.remainder(angle, 2 * math.pi))


def test_nbv_unreachable_range_is_refused():
    with pytest.raises(ValueError, match="reachable"):
        NextBestViewPolicy(4, reachable=(0.001, 0.002))


def test_fitted_evidence_separates_labelled_scores():
    rng = np.random.default_rng(0)
    evidence = fit_view_evidence(rng.uniform(0.0, 0.2, 300), rng.uniform(0.5, 1.0, 300))
    assert 0.2 < evidence.midpoint < 0.5 and evidence.slope > 5
    assert evidence.llr(0.05) < 0 < evidence.llr(0.8)
    assert ViewEvidence().llr(10.0) == ViewEvidence().clip
