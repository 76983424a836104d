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


def test_no_policy_decision_holds_back_or_passes_an_item_over_the_threshold():
    for policy_decision in (Decision.REVIEW, Decision.PASS):
        over = decide([view(0, 0.2), view(1, 0.9)], DecisionConfig(), policy_decision=policy_decision)
        assert over.decision == Decision.DIVERT and "view policy" not in over.reason
    under = decide([view(0, 0.2), view(1, 0.3)], DecisionConfig(), policy_decision=Decision.DIVERT)
    assert under.decision == Decision.DIVERT and "view policy decided DIVERT" in under.reason


def learned_view(index, classifier_logit):
    """A view as the model pipeline returns it (the fusion reads its signals; logit is its fused log-odds)."""
    signals = {"classifier": classifier_logit, "anomaly": 1.0, "shape_extra": 0.0, "shape_missing": 0.0,
               "geometric": 0.0}
    result = view(index, 0.0)
    result.signals, result.logit = signals, classifier_logit
    return result


def fitted_fusion():
    from damage_perception.core.fusion import FusionData, fit_fusion
    rng = np.random.default_rng(0)
    damaged = np.arange(80) % 2 == 0
    signals = [[{"classifier": rng.normal(3.0 if bad else -3.0), "anomaly": float(np.exp(rng.normal(bad, 0.2))),
                 "shape_extra": 0.0, "shape_missing": 0.0, "geometric": 0.0} for _ in range(3)] for bad in damaged]
    return fit_fusion(FusionData(signals, [np.full(3, bad) for bad in damaged], damaged))


def test_without_a_gallery_a_clean_looking_item_goes_to_review_and_has_no_anomaly_score():
    fusion = fitted_fusion()
    views = [learned_view(i, -4.0) for i in range(3)]
    config = DecisionConfig(fusion="learned", divert_threshold=0.5)
    with_gallery = decide(views, config, fusion=fusion, has_gallery=True)
    without = decide(views, config, fusion=fusion, has_gallery=False)
    assert with_gallery.decision == Decision.PASS and with_gallery.anomaly_score == pytest.approx(1.0)
    assert without.decision == Decision.REVIEW and "no reference gallery" in without.reason
    assert math.isnan(without.anomaly_score)
    assert without.damage_probability == pytest.approx(1.0 / (1.0 + math.exp(4.0)))


def test_a_stale_gallery_cannot_clear_an_item_but_a_damaged_one_still_diverts():
    fusion = fitted_fusion()
    config = DecisionConfig(fusion="learned", divert_threshold=0.5)
    stale = "gallery v3 of SKU 'SKU-1' kept the nominal of another comparator"
    clean = decide([learned_view(i, -4.0) for i in range(3)], config, fusion=fusion, stale_gallery=stale)
    assert clean.decision == Decision.REVIEW and stale in clean.reason
    damaged = decide([learned_view(i, 5.0) for i in range(3)], config, fusion=fusion, stale_gallery=stale)
    assert damaged.decision == Decision.DIVERT


def test_a_claimed_sku_the_item_does_not_look_like_sends_it_to_review():
    from damage_perception.core.identification import ClaimCheck
    from damage_perception.core.verdict import with_identification

    divert = decide([view(0, 0.95)], DecisionConfig())
    mismatch = ClaimCheck("SKU-B", "SKU-A", rank=4, gap=0.3, mismatch=True)
    reviewed = with_identification(divert, mismatch)
    assert reviewed.decision == Decision.REVIEW and reviewed.sku_mismatch and reviewed.closest_sku == "SKU-A"
    assert "does not look like SKU SKU-B" in reviewed.reason and "was DIVERT" in reviewed.reason
    assert reviewed.fused_score == divert.fused_score and reviewed.damage_location is None
    agreed = with_identification(divert, ClaimCheck("SKU-A", "SKU-A", rank=0, gap=0.0, mismatch=False))
    assert agreed.decision == Decision.DIVERT and agreed.closest_sku == "SKU-A" and not agreed.sku_mismatch
    assert with_identification(divert, None) is divert
    error = decide([], DecisionConfig())
    assert with_identification(error, mismatch).decision == Decision.ERROR
