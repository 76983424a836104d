"""core.coverage: unusable views are retried at their angle, and a PASS rests on the required usable views."""
from __future__ import annotations

import math

import pytest

from damage_perception.core.coverage import ViewUnavailable, require_coverage, take_views
from damage_perception.core.policies import StoppingRule, make_policy
from damage_perception.core.verdict import Decision, DecisionConfig, ViewResult, decide

CLEAN = 0.05   # a clean view's geometric score: well below the 0.5 threshold


def source(usable):
    """A take_view giving a clean view, or an unusable one where ``usable(frame_index, angle)`` is False
    (None: the source had no view to give); records every call."""
    calls = []

    def take(frame_index: int, angle: float) -> ViewResult:
        calls.append((frame_index, angle))
        ok = usable(frame_index, angle)
        if ok is None:
            raise ViewUnavailable("no transform gripper_link -> camera")
        return ViewResult(frame_index, angle, ok, CLEAN if ok else 0.0,
                          reason="" if ok else "no item in the gripper: 8 points between the fingers (need 150)")
    return take, calls


def judged(policy_name: str, usable, retries: int = 2, num_views: int = 6):
    policy = make_policy(policy_name, num_views)
    take, calls = source(usable)
    taken = take_views(policy, take, retries)
    verdict = decide(taken.views, DecisionConfig(), policy.early_decision(taken.views))
    return require_coverage(verdict, policy, taken.unusable), taken, calls


def test_the_stopping_rule_alone_and_the_old_loop_still_stop_after_an_empty_first_angle():
    verdict, taken, calls = judged("fixed", lambda i, a: False, retries=2)
    assert [angle for _, angle in calls] == [0.0, 0.0, 0.0]   # the first angle, tried 1 + 2 times
    assert verdict.decision == Decision.ERROR and "no item in the gripper" in verdict.reason
    assert len(verdict.unusable_views) == 3


def test_an_unusable_view_is_retried_at_the_same_angle_and_then_counts():
    flaky = {1, 4}   # frames 1 and 4 are unusable; their retries are fine
    verdict, taken, calls = judged("fixed", lambda i, a: i not in flaky)
    angles = [angle for _, angle in calls]
    assert angles[1] == angles[2] and angles[4] == angles[5]   # the same angle again, a fresh frame
    assert [index for index, _ in calls] == list(range(8))      # every frame taken counts, retries too
    assert verdict.decision == Decision.PASS and len(taken.views) == 6
    assert [view.frame_index for view in verdict.unusable_views] == [1, 4]


def test_a_fixed_pass_needs_every_planned_angle_usable():
    bad_angle = 2 * math.pi * 3 / 6
    verdict, _, calls = judged("fixed", lambda i, a: a != bad_angle)
    assert sum(angle == bad_angle for _, angle in calls) == 3   # the bound: 1 + view_retries attempts
    assert verdict.decision == Decision.REVIEW
    assert "5 of 6 planned views usable (none at 180 deg)" in verdict.reason and "was PASS" in verdict.reason
    assert [v.wrist_angle for v in verdict.unusable_views] == [bad_angle] * 3


def test_a_view_the_source_cannot_give_is_retried_like_one_without_an_item():
    attempts = []

    def tf_late(frame_index: int, angle: float):   # the first attempt finds no transform, then it arrives
        attempts.append(angle)
        return None if len(attempts) == 1 else True

    verdict, _, calls = judged("fixed", tf_late)
    assert [index for index, _ in calls[:3]] == [0, 0, 1]   # no frame was taken by the failed attempt
    assert verdict.decision == Decision.PASS and len(verdict.unusable_views) == 1
    assert verdict.unusable_views[0].frame_index == -1 and "no transform" in verdict.unusable_views[0].reason
    verdict, _, _ = judged("fixed", lambda i, a: None)
    assert verdict.decision == Decision.ERROR and "no transform" in verdict.reason


def test_no_retries_keeps_the_old_behaviour_but_never_a_short_pass():
    verdict, _, calls = judged("fixed", lambda i, a: i != 2, retries=0)
    assert len(calls) == 6 and verdict.decision == Decision.REVIEW


def test_a_divert_on_partial_coverage_stands():
    policy = make_policy("fixed", 4)
    take, _ = source(lambda i, a: i != 1)
    taken = take_views(policy, take, 0)
    taken.views[0].score = 0.9
    verdict = require_coverage(decide(taken.views, DecisionConfig()), policy, taken.unusable)
    assert verdict.decision == Decision.DIVERT   # damage seen is damage: only a PASS needs full coverage


@pytest.mark.parametrize("name", ["sequential", "nbv"])
def test_sequential_policies_pass_only_on_the_usable_views_clean_evidence(name):
    rule = StoppingRule()
    clean_all, _, _ = judged(name, lambda i, a: True)
    assert clean_all.decision == Decision.PASS
    # every other frame unusable, no retries: the rule's evidence comes from the usable ones only
    verdict, taken, _ = judged(name, lambda i, a: i % 2 == 0, retries=0)
    usable = [view for view in taken.views if view.found]
    assert rule.clean_evidence(taken.views) == rule.clean_evidence(usable)
    if verdict.decision == Decision.PASS:
        assert rule.pass_shortfall(usable) == ""
    else:
        assert verdict.decision == Decision.REVIEW
    policy = make_policy(name, 6)
    assert "does not reach the pass bound" in policy.coverage_shortfall(usable[:1])
