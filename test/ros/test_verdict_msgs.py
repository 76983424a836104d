import math

import numpy as np
from builtin_interfaces.msg import Time
from damage_perception_interfaces.msg import DamageVerdict

from damage_perception.core.verdict import DecisionConfig, ViewResult, decide
from damage_perception.ros.verdict_msgs import error_verdict_msg, verdict_to_msg


def test_verdict_message_carries_decision_scores_views_and_location():
    types = dict.fromkeys(["crush", "tear", "hole", "deconstruction", "spill", "missing_part"], 0.0)
    views = [ViewResult(0, 0.0, True, 0.1, {**types, "crush": 0.1}),
             ViewResult(1, 1.5, True, 0.8, {**types, "hole": 0.8}, np.array([0.01, 0.02, 0.1])),
             ViewResult(2, 3.0, False, reason="no item")]
    msg = verdict_to_msg(decide(views, DecisionConfig()), item_id="i1", sku="s1", stamp=Time(sec=5),
                         frame_id="gripper_link", model_version="m", gallery_version="g",
                         inspection_seconds=1.5)
    assert msg.decision == DamageVerdict.DIVERT
    assert msg.num_views == 2 and list(msg.view_wrist_angles) == [0.0, 1.5]
    assert math.isclose(msg.fused_score, 0.8, rel_tol=1e-6) and math.isclose(msg.type_scores.hole, 0.8,
                                                                              rel_tol=1e-6)
    assert msg.has_damage_location and math.isclose(msg.damage_location.y, 0.02)
    assert msg.header.frame_id == "gripper_link" and msg.threshold == 0.5


def test_verdict_message_carries_the_stamp_of_every_view_taken():
    views = [ViewResult(0, 0.0, True, 0.1), ViewResult(1, 1.5, False, reason="no item")]
    stamps = [Time(sec=5, nanosec=1), Time(sec=5, nanosec=100_000_001)]
    msg = verdict_to_msg(decide(views, DecisionConfig()), item_id="i", sku="s", stamp=stamps[-1], frame_id="g",
                         model_version="m", gallery_version="", inspection_seconds=0.2, view_stamps=stamps)
    assert msg.num_views == 1 and [(t.sec, t.nanosec) for t in msg.view_stamps] == [(5, 1), (5, 100_000_001)]


def test_error_message_has_reason_and_nan_scores():
    msg = error_verdict_msg("TF missing", item_id="i", sku="s", stamp=Time(), frame_id="g",
                            model_version="m", inspection_seconds=0.1)
    assert msg.decision == DamageVerdict.ERROR and msg.reason == "TF missing"
    assert math.isnan(msg.fused_score) and msg.num_views == 0
