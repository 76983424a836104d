import math

import numpy as np
import pytest

from damage_perception.core.verdict import Decision, DecisionConfig, ViewResult, decide, fuse_scores


def view(index, score, found=True, reason=""):
    types = {"crush": score, "tear": 0.0, "hole": 0.0, "deconstruction": 0.0, "spill": 0.0,
             "missing_part": 0.0}
    return ViewResult(index, 0.1 * index, found, score, types, np.array([0.0, 0.0, 0.1 * index]),
                      reason=reason)


def test_fusion_methods():
    assert fuse_scores([0.2, 0.7, 0.1], "max") == pytest.approx(0.7)
    assert fuse_scores([0.5, 0.5], "noisy_or") == pytest.approx(0.75)
    assert fuse_scores([], "max") == 0.0
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse_scores([0.1], "mean")


@pytest.mark.parametrize("scores, expected", [
    ([0.1, 0.2, 0.05], Decision.PASS),
    ([0.1, 0.45, 0.2], Decision.REVIEW),
    ([0.1, 0.9, 0.2], Decision.DIVERT),
])
def test_decision_bands(scores, expected):
    verdict = decide([view(i, s) for i, s in enumerate(scores)], DecisionConfig(divert_threshold=0.5,
                                                                                 review_band=0.1))
    assert verdict.decision == expected
    assert verdict.threshold == 0.5


def test_divert_reports_worst_view_location_and_type():
    verdict = decide([view(0, 0.1), view(1, 0.9), view(2, 0.3)], DecisionConfig())
    assert verdict.decision == Decision.DIVERT
    np.testing.assert_allclose(verdict.damage_location, [0.0, 0.0, 0.1])
    assert "crush" in verdict.reason
    assert verdict.type_scores["crush"] == pytest.approx(0.9)


def test_pass_has_no_location():
    assert decide([view(0, 0.1)], DecisionConfig()).damage_location is None


def test_no_item_seen_is_an_error_with_the_reason():
    verdict = decide([view(0, 0.0, found=False, reason="no item in the gripper: 12 points")],
                     DecisionConfig())
    assert verdict.decision == Decision.ERROR
    assert "no item in the gripper" in verdict.reason


def test_views_without_item_are_ignored_when_others_saw_it():
    verdict = decide([view(0, 0.2), view(1, 0.0, found=False, reason="x")], DecisionConfig())
    assert verdict.decision == Decision.PASS
    assert math.isclose(verdict.fused_score, 0.2)


def test_decision_values_match_the_message_constants():
    from damage_perception_interfaces.msg import DamageVerdict
    assert (Decision.PASS, Decision.DIVERT, Decision.REVIEW, Decision.ERROR) == (
        DamageVerdict.PASS, DamageVerdict.DIVERT, DamageVerdict.REVIEW, DamageVerdict.ERROR)


def test_a_policy_decision_overrides_the_threshold_and_says_so():
    verdict = decide([view(0, 0.45), view(1, 0.44)], DecisionConfig(), policy_decision=Decision.REVIEW)
    assert verdict.decision == Decision.REVIEW  # the threshold alone would say REVIEW too: no change
    verdict = decide([view(0, 0.2), view(1, 0.3)], DecisionConfig(), policy_decision=Decision.REVIEW)
    assert verdict.decision == Decision.REVIEW and "view policy decided REVIEW after 2 views" in verdict.reason
    error = decide([view(0, 0.0, found=False, reason="no item")], DecisionConfig(),
                   policy_decision=Decision.PASS)
    assert error.decision == Decision.ERROR  # no item seen stays an error whatever the policy says
