"""A stand-in for the pick-and-place planner: presents items, asks for an inspection, acts on the verdict.

For each item it calls the cell's ``cell/present_item``, sends an ``inspect`` goal, forwards each wrist pose
the node asks for (action feedback) to the arm (``arm/wrist_goal``), and prints one line per verdict, then a
summary. This is the integration a real planner does: divert on DIVERT, send REVIEW to a person, retry or
divert on ERROR.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass

import rclpy
from action_msgs.msg import GoalStatus
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from damage_perception_interfaces.srv import PresentItem
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from damage_perception.ros.verdict_msgs import DECISION_NAMES


@dataclass
class Outcome:
    """One inspected item: its ground truth and what the node decided."""

    item_id: str
    ground_truth: str
    severity: float
    verdict: DamageVerdict
    latency: float
    status: int = GoalStatus.STATUS_SUCCEEDED   # the goal's final status: ABORTED for an ERROR verdict

    @property
    def damaged(self) -> bool:
        return self.ground_truth not in ("pristine", "empty")

    def line(self) -> str:
        v = self.verdict
        truth = f"{self.ground_truth}({self.severity:.2f})" if self.damaged else self.ground_truth
        return (f"{self.item_id:<10} truth={truth:<20} decision={DECISION_NAMES[v.decision]:<6} "
                f"score={v.fused_score:5.2f} views={v.num_views} latency={self.latency:4.1f}s"
                + (f"  [{v.reason}]" if v.decision in (DamageVerdict.ERROR, DamageVerdict.REVIEW) else ""))


class PlannerClient(Node):
    """Drives the cell and the inspection, one item at a time."""

    def __init__(self, **kwargs) -> None:
        super().__init__("planner_client", **kwargs)
        self.declare_parameter("num_items", 20)
        self.declare_parameter("policy", "")
        self.declare_parameter("item_timeout", 40.0)
        self.declare_parameter("server_timeout", 60.0)
        self.inspect = ActionClient(self, InspectItem, "inspect")
        self.present = self.create_client(PresentItem, "cell/present_item")
        self.wrist_pub = self.create_publisher(PoseStamped, "arm/wrist_goal", 10)

    def destroy_node(self) -> None:
        """Also destroy the action client (rclpy's destroy_node leaves waitables alive)."""
        self.inspect.destroy()
        super().destroy_node()

    def wait_for_cell(self) -> bool:
        """Wait for the node's action server and the cell's service."""
        timeout = self.get_parameter("server_timeout").value
        ok = self.inspect.wait_for_server(timeout_sec=timeout) and self.present.wait_for_service(timeout)
        if not ok:
            self.get_logger().error("the inspect action or the cell/present_item service is not available")
        return ok

    def run_item(self, empty_gripper: bool = False, index: int = -1, claimed_sku: str = "") -> Outcome | None:
        """Present one item (the next, or catalogue ``index``), inspect it and return the outcome (None if the
        cell has no more items). ``claimed_sku`` sends the goal under another SKU (a mislabelled item)."""
        presented = self._call(self.present, PresentItem.Request(index=index, empty_gripper=empty_gripper))
        if presented is None or not presented.success:
            return None
        started = time.monotonic()
        goal = InspectItem.Goal(item_id=presented.item_id, sku=claimed_sku or presented.sku,
                                policy=self.get_parameter("policy").value)
        send = self.inspect.send_goal_async(goal, feedback_callback=self._on_feedback)
        handle = self._wait(send)
        if handle is None or not handle.accepted:
            self.get_logger().error(f"goal for {presented.item_id} was rejected")
            return None
        result = self._wait(handle.get_result_async())
        if result is None:
            self.get_logger().error(f"no result for {presented.item_id} within the item timeout")
            return None
        return Outcome(presented.item_id, presented.ground_truth, presented.severity, result.result.verdict,
                       time.monotonic() - started, result.status)

    def _on_feedback(self, feedback_msg) -> None:
        feedback = feedback_msg.feedback
        if not feedback.done and feedback.next_wrist_pose.header.frame_id:
            self.wrist_pub.publish(feedback.next_wrist_pose)

    def _call(self, client, request):
        return self._wait(client.call_async(request))

    def _wait(self, future):
        rclpy.spin_until_future_complete(self, future, timeout_sec=self.get_parameter("item_timeout").value)
        return future.result() if future.done() else None


def summarise(outcomes: list[Outcome]) -> str:
    """Counts per decision, false diverts, missed damage, views and latency."""
    decisions = Counter(DECISION_NAMES[o.verdict.decision] for o in outcomes)
    damaged = [o for o in outcomes if o.damaged]
    pristine = [o for o in outcomes if not o.damaged]
    false_diverts = sum(o.verdict.decision == DamageVerdict.DIVERT for o in pristine)
    missed = sum(o.verdict.decision == DamageVerdict.PASS for o in damaged)
    caught = sum(o.verdict.decision == DamageVerdict.DIVERT for o in damaged)
    views = [o.verdict.num_views for o in outcomes]
    latency = sorted(o.latency for o in outcomes)
    return "\n".join([
        f"items: {len(outcomes)} ({len(damaged)} damaged, {len(pristine)} pristine)",
        "decisions: " + ", ".join(f"{name} {decisions.get(name, 0)}" for name in DECISION_NAMES.values()),
        f"damaged diverted: {caught}/{len(damaged)}; missed damage (PASS): {missed}; "
        f"false diverts: {false_diverts}/{len(pristine)}",
        f"views per item: mean {sum(views) / max(len(views), 1):.1f}; "
        f"latency per item: median {latency[len(latency) // 2] if latency else 0:.1f} s",
    ])


def main(args=None) -> int:
    """Inspect ``num_items`` items and print a line each, then the summary."""
    outcomes: list[Outcome] = []
    try:
        with rclpy.init(args=args):
            node = PlannerClient()
            if not node.wait_for_cell():
                return 1
            print(f"{'item':<10} {'truth':<26} {'decision':<15} {'score':<11} views latency", flush=True)
            for _ in range(node.get_parameter("num_items").value):
                outcome = node.run_item()
                if outcome is None:
                    break
                outcomes.append(outcome)
                print(outcome.line(), flush=True)
            print("--- summary ---\n" + summarise(outcomes), flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0 if outcomes else 1


if __name__ == "__main__":
    sys.exit(main())
