"""End to end over DDS: the simulated cell and the node in separate processes, the planner client here."""
from __future__ import annotations

import math
import time

import pytest
import rclpy
from damage_perception_interfaces.msg import DamageVerdict

from test.nodes.conftest import make_client, running

CELL = ("sim_cell_node", "sim_cell.yaml", {"num_items": 6, "damage_rate": 0.5, "seed": 3})
NODE = ("perception_node", "damage_perception.yaml", {"num_views": 4, "goal_deadline": 20.0})


def test_every_goal_gets_a_verdict_and_it_is_published(tmp_path, ros_context):
    with running(tmp_path, CELL, NODE):
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        published: list[DamageVerdict] = []
        client.create_subscription(DamageVerdict, "verdict", published.append, 10)
        outcomes = [client.run_item() for _ in range(3)]
        deadline = time.monotonic() + 3.0
        while len(published) < 3 and time.monotonic() < deadline:
            rclpy.spin_once(client, timeout_sec=0.1)
    assert all(outcome is not None for outcome in outcomes)
    for outcome in outcomes:
        verdict = outcome.verdict
        assert verdict.decision in (DamageVerdict.PASS, DamageVerdict.DIVERT, DamageVerdict.REVIEW), \
            verdict.reason
        assert verdict.num_views == 4 and len(verdict.view_scores) == 4
        assert verdict.item_id == outcome.item_id and verdict.threshold > 0
        assert sorted(round(math.degrees(a)) for a in verdict.view_wrist_angles) == [0, 90, 180, 270]
    assert [v.item_id for v in published] == [o.item_id for o in outcomes]


def test_empty_gripper_gets_error_with_a_reason(tmp_path, ros_context):
    with running(tmp_path, CELL, NODE):
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        outcome = client.run_item(empty_gripper=True)
    assert outcome is not None
    assert outcome.verdict.decision == DamageVerdict.ERROR
    assert "no item in the gripper" in outcome.verdict.reason
    assert outcome.latency < 10.0


def test_no_camera_gets_error_within_the_deadline(tmp_path, ros_context):
    """Only the node runs: the goal ends in ERROR naming the missing frames, not a hang."""
    from damage_perception_interfaces.action import InspectItem
    from rclpy.action import ActionClient
    node_params = {**NODE[2], "view_timeout": 2.0, "goal_deadline": 5.0}
    with running(tmp_path, (NODE[0], NODE[1], node_params)):
        client = rclpy.create_node("test_client")
        action = ActionClient(client, InspectItem, "inspect")
        assert action.wait_for_server(timeout_sec=30.0)
        started = time.monotonic()
        handle_future = action.send_goal_async(InspectItem.Goal(item_id="lonely", sku="none"))
        rclpy.spin_until_future_complete(client, handle_future, timeout_sec=10.0)
        result_future = handle_future.result().get_result_async()
        rclpy.spin_until_future_complete(client, result_future, timeout_sec=15.0)
        elapsed = time.monotonic() - started
    verdict = result_future.result().result.verdict
    assert verdict.decision == DamageVerdict.ERROR
    assert "no synchronised color/depth/camera_info frame" in verdict.reason
    assert elapsed < 6.0


@pytest.mark.parametrize("encoding, reliability", [("32FC1", "reliable")])
def test_metre_depth_and_reliable_publisher(tmp_path, ros_context, encoding, reliability):
    cell = (CELL[0], CELL[1], {**CELL[2], "depth_encoding": encoding, "reliability": reliability})
    with running(tmp_path, cell, NODE):
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        outcome = client.run_item()
    assert outcome is not None
    assert outcome.verdict.decision != DamageVerdict.ERROR, outcome.verdict.reason
    assert outcome.verdict.num_views == 4
