"""Soak: the node inspecting continuously while color and depth arrive at 30 Hz, 1280x720 (not a CI test).

Starts ``camera_stress`` (pre-rendered frames re-published with fresh stamps, TF following the wrist goals)
and the node as separate processes, then sends InspectItem goals back to back from this process for
``--seconds``. Samples the node's RSS (psutil) and its /diagnostics counters once a second and records each
view's latency as seen by the client (feedback "move to angle" -> feedback "view scored": frame wait, TF,
processing). Prints throughput, drops, memory start/end and latency p50/p95 early vs late. Loads the CPU.

    .venv/bin/python benchmarks/bench_soak.py [--seconds 600] [--width 1280 --height 720 --rate 30]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import rclpy
from damage_perception_interfaces.action import InspectItem
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient

from damage_perception.cell.processes import node_command, ros_environment, start, stop
from damage_perception.core.station import config_file


class SoakClient:
    """Sends goals back to back, forwards wrist poses, records per-view latency and the node's counters."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("soak_client")
        self.action = ActionClient(self.node, InspectItem, "inspect")
        self.wrist_pub = self.node.create_publisher(PoseStamped, "arm/wrist_goal", 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.counters: dict[str, float] = {}
        self.view_latency: list[tuple[float, float]] = []  # (time since start, seconds)
        self.decisions: list[int] = []
        self._asked_at: float | None = None

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("damage_perception"):
                self.counters = {kv.key: float(kv.value) if kv.value.lstrip("-").isdigit() else kv.value
                                 for kv in status.values}

    def _on_feedback(self, msg) -> None:
        feedback = msg.feedback
        if feedback.next_wrist_pose.header.frame_id:  # the node asks for a view
            self.wrist_pub.publish(feedback.next_wrist_pose)
            self._asked_at = time.monotonic()
        elif self._asked_at is not None and not math.isnan(feedback.view_score):
            self.view_latency.append((time.monotonic(), time.monotonic() - self._asked_at))
            self._asked_at = None

    def inspect(self, item_id: str) -> None:
        future = self.action.send_goal_async(InspectItem.Goal(item_id=item_id, sku="soak"),
                                             feedback_callback=self._on_feedback)
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=30.0)
        handle = future.result()
        if handle is None or not handle.accepted:
            return
        result = handle.get_result_async()
        rclpy.spin_until_future_complete(self.node, result, timeout_sec=60.0)
        if result.done():
            self.decisions.append(result.result().result.verdict.decision)


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ms = np.asarray(values) * 1000.0
    return f"p50 {np.percentile(ms, 50):6.1f} ms  p95 {np.percentile(ms, 95):6.1f} ms  (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()

    domain = random.Random(os.getpid()).randint(201, 230)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    env = ros_environment(domain)
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE"):
        os.environ[key] = env[key]
    logs = Path(tempfile.mkdtemp(prefix="soak_"))
    camera = start([sys.executable, "-m", "damage_perception.nodes.camera_stress", "--width", str(args.width),
                    "--height", str(args.height), "--rate", str(args.rate)], env, logs / "camera.log")
    node = start(node_command("perception_node", config_file("damage_perception.yaml")), env, logs / "node.log")
    rclpy.init()
    client = SoakClient()
    try:
        assert client.action.wait_for_server(timeout_sec=60.0), "the node's action server never appeared"
        node_proc = psutil.Process(node.pid)
        started = time.monotonic()
        memory: list[tuple[float, float]] = []
        received: list[tuple[float, dict]] = []
        next_sample, goal = started, 0
        while time.monotonic() - started < args.seconds:
            client.inspect(f"soak-{goal}")
            goal += 1
            rclpy.spin_once(client.node, timeout_sec=0.0)
            if time.monotonic() >= next_sample:
                memory.append((time.monotonic(), node_proc.memory_info().rss / 2**20))
                received.append((time.monotonic(), dict(client.counters)))
                next_sample += 1.0
        report(args, started, client, memory, received, logs)
    finally:
        client.node.destroy_node()
        rclpy.try_shutdown()
        stop(node)
        stop(camera)


def report(args, started, client: SoakClient, memory, received, logs: Path) -> None:
    elapsed = time.monotonic() - started
    first, last = received[0][1], received[-1][1]
    span = received[-1][0] - received[0][0] or 1.0

    def rate(key: str) -> float:
        return (float(last.get(key, 0)) - float(first.get(key, 0))) / span

    names = {0: "PASS", 1: "DIVERT", 2: "REVIEW", 3: "ERROR"}
    counts = {names.get(d, d): client.decisions.count(d) for d in sorted(set(client.decisions))}
    third = elapsed / 3
    early = [lat for t, lat in client.view_latency if t - started < third]
    late = [lat for t, lat in client.view_latency if t - started >= 2 * third]
    # "start" after a warm-up (TF cache of 30 s filling, first allocations): from 30 s or 20 % in, whichever later.
    warm = started + max(30.0, 0.2 * elapsed)
    rss = np.array([m for _, m in memory])
    after_warmup = np.array([m for t, m in memory if t >= warm]) if any(t >= warm for t, _ in memory) else rss
    head, tail = after_warmup[:max(1, len(after_warmup) // 10)], rss[-max(1, len(rss) // 10):]
    print(f"soak: {elapsed:.0f} s, camera {args.width}x{args.height} at {args.rate:g} Hz, logs in {logs}")
    print(f"goals answered        {len(client.decisions)} {counts}")
    print(f"received /s           color {rate('received color/image_raw'):.1f}, depth "
          f"{rate('received depth/image_raw'):.1f}, synchronised {rate('frames_synchronised'):.1f}")
    print(f"dropped (total)       sync evicted {last.get('sync_dropped')}, overwritten unused "
          f"{last.get('frames_overwritten_unused')}, stamps backwards {last.get('frames_backwards')}")
    print(f"node RSS              first sample {rss[0]:.0f} MiB; after warm-up {head.mean():.0f} MiB, end "
          f"{tail.mean():.0f} MiB ({100 * (tail.mean() / head.mean() - 1):+.1f} %), max {rss.max():.0f} MiB")
    print(f"view latency early    {percentiles(early)}")
    print(f"view latency late     {percentiles(late)}")


if __name__ == "__main__":
    main()
