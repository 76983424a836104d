"""Faults over DDS: concurrent goals, the camera dying mid-inspection, the node and the cell restarting.

The cell and the node run as separate processes (started here so that they can be killed and restarted);
the clients run in this process. SIGKILL stands in for a crash: no clean shutdown, no goodbye on DDS.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import rclpy
from action_msgs.msg import GoalStatus
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from rclpy.action import ActionClient

from damage_perception.cell.processes import node_command, ros_environment, start, stop
from damage_perception.core.station import config_file
from test.nodes.test_inspection import CELL, make_client

NODE_PARAMS = {"num_views": 4, "view_timeout": 3.0, "goal_deadline": 8.0}


class Processes:
    """Named node processes that can be killed and restarted; logs shown at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.env = tmp_path, ros_environment(int(os.environ["ROS_DOMAIN_ID"]))
        self.running: dict[str, object] = {}
        self.logs: list[Path] = []

    def start(self, module: str, config: str, params: dict) -> None:
        log = self.tmp_path / f"{module}.{len(self.logs)}.log"
        self.logs.append(log)
        self.running[module] = start(node_command(module, config_file(config), params), self.env, log)

    def wait_ready(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the latest process logs ``text`` (its 'ready' line), then a moment for discovery."""
        deadline = time.monotonic() + timeout
        while text not in self.logs[-1].read_text():
            assert time.monotonic() < deadline, f"{self.logs[-1].name} never logged '{text}'"
            time.sleep(0.2)
        time.sleep(1.0)

    def kill(self, module: str, sig: int = signal.SIGKILL) -> None:
        process = self.running.pop(module)
        os.killpg(process.pid, sig)
        process.wait(timeout=10.0)

    def close(self) -> None:
        for process in self.running.values():
            stop(process)
        for log in self.logs:
            print(f"--- {log.name} ---\n{log.read_text()[-2500:]}")


def start_cell_and_node(tmp_path: Path) -> Processes:
    processes = Processes(tmp_path)
    processes.start(*CELL)
    processes.start("perception_node", "damage_perception.yaml", NODE_PARAMS)
    return processes


def present_item(client) -> None:
    from damage_perception_interfaces.srv import PresentItem
    response = client._call(client.present, PresentItem.Request(index=-1))
    assert response is not None and response.success


def send_goal(client, action: ActionClient, item_id: str):
    future = action.send_goal_async(InspectItem.Goal(item_id=item_id, sku="s"),
                                    feedback_callback=client._on_feedback)
    rclpy.spin_until_future_complete(client, future, timeout_sec=15.0)
    return future.result()


def run_item_retrying(client, attempts: int = 3):
    """The planner's next item; a request may be lost to a peer that just died (DDS forgets it late)."""
    client.set_parameters([rclpy.parameter.Parameter("item_timeout", value=10.0)])
    for _ in range(attempts):
        if (outcome := client.run_item()) is not None:
            return outcome
    return None


def spin_for(node, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)


def wait_result(client, handle, timeout: float):
    future = handle.get_result_async()
    rclpy.spin_until_future_complete(client, future, timeout_sec=timeout)
    return future.result()


def test_second_goal_rejected_camera_death_within_deadline_and_cell_restart(tmp_path, ros_context):
    processes = start_cell_and_node(tmp_path)
    try:
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        action = client.inspect
        # Two goals at once: the second is rejected explicitly, the first ends in its own verdict.
        present_item(client)
        first = send_goal(client, action, "first")
        second = send_goal(client, action, "second")
        assert first.accepted and not second.accepted
        result = wait_result(client, first, timeout=20.0)
        assert result.result.verdict.item_id == "first"
        assert result.result.verdict.decision != DamageVerdict.ERROR, result.result.verdict.reason

        # The camera (the whole cell) dies mid-inspection: ERROR within goal_deadline, naming the frames.
        present_item(client)
        started = time.monotonic()
        handle = send_goal(client, action, "orphan")
        spin_for(client, 1.5)  # the inspection is under way (the wrist is turning to the next view)
        processes.kill("sim_cell_node")
        result = wait_result(client, handle, timeout=NODE_PARAMS["goal_deadline"] + 10.0)
        elapsed = time.monotonic() - started
        verdict = result.result.verdict
        assert verdict.decision == DamageVerdict.ERROR
        assert "no synchronised color/depth/camera_info frame" in verdict.reason, verdict.reason
        assert elapsed < NODE_PARAMS["goal_deadline"] + 1.0

        # The cell comes back: the same node process inspects the next item.
        processes.start(*CELL)
        processes.wait_ready("sim cell ready")
        outcome = run_item_retrying(client)
        assert outcome is not None and outcome.verdict.decision != DamageVerdict.ERROR, outcome.verdict.reason
        client.destroy_node()
    finally:
        processes.close()


def test_node_killed_mid_inspection_then_restarted(tmp_path, ros_context):
    processes = start_cell_and_node(tmp_path)
    try:
        client = make_client(server_timeout=30.0, item_timeout=30.0)
        present_item(client)
        handle = send_goal(client, client.inspect, "interrupted")
        assert handle.accepted
        spin_for(client, 1.0)
        # A restart (SIGINT, as a launcher stops a node): the participant leaves DDS at once. After a SIGKILL
        # the server would vanish only when its DDS lease expires (Fast DDS default: 20 s).
        processes.kill("perception_node", signal.SIGINT)
        # The client sees the server vanish; the goal never succeeds.
        result_future = handle.get_result_async()
        deadline = time.monotonic() + 15.0
        while client.inspect.server_is_ready() and time.monotonic() < deadline:
            rclpy.spin_once(client, timeout_sec=0.1)
        assert not client.inspect.server_is_ready()
        assert not result_future.done() or result_future.result().status != GoalStatus.STATUS_SUCCEEDED

        processes.start("perception_node", "damage_perception.yaml", NODE_PARAMS)
        processes.wait_ready("ready: listening")
        outcome = run_item_retrying(client)
        assert outcome is not None and outcome.verdict.decision != DamageVerdict.ERROR, outcome.verdict.reason
        client.destroy_node()
    finally:
        processes.close()
