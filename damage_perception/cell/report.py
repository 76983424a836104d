"""`damage-perception report`: ask the running perception node for its last item's HTML report.

Calls the node's ``~/save_report`` (std_srvs/Trigger; ``ros/debug_publisher.py`` writes the report with
``visualization/item_report.py``) and prints the path it wrote; with ``--png`` also renders it with
headless Chromium (``visualization/report_screenshot.py``).
"""
from __future__ import annotations

from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from damage_perception.visualization.report_screenshot import screenshot


class ReportRequestError(RuntimeError):
    """The node's ``save_report`` service is unreachable or did not write the report."""


def request_report(node: str = "/damage_perception", timeout: float = 10.0) -> Path:
    """Call ``<node>/save_report`` (std_srvs/Trigger) on a private rclpy context; the written report's path
    (on the node's machine)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        client_node = rclpy.create_node("damage_perception_report", context=context)
        client = client_node.create_client(Trigger, f"{node.rstrip('/')}/save_report")
        if not client.wait_for_service(timeout_sec=timeout):
            raise ReportRequestError(f"no service {client.srv_name} within {timeout:g} s: is the node running "
                                     "(same ROS_DOMAIN_ID)?")
        future = client.call_async(Trigger.Request())
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(client_node)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise ReportRequestError(f"{client.srv_name} did not answer within {timeout:g} s")
        response = future.result()
        if not response.success:
            raise ReportRequestError(f"{client.srv_name}: {response.message}")
        return Path(response.message)
    finally:
        rclpy.try_shutdown(context=context)


def add_arguments(parser) -> None:
    """Options of the report sub-command."""
    parser.add_argument("--node", default="/damage_perception", help="the node's fully qualified name")
    parser.add_argument("--png", type=Path, default=None,
                        help="also render the report to this PNG with headless Chromium (same machine as the node)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the service")


def run(args) -> int:
    """Request the report, print its path (and render the PNG); 1 when it fails."""
    try:
        path = request_report(args.node, args.timeout)
        print(f"report: {path}", flush=True)
        if args.png is not None:
            print(f"screenshot: {screenshot(path, args.png)}", flush=True)
    except (ReportRequestError, RuntimeError, OSError) as error:
        print(f"report: {error}", flush=True)
        return 1
    return 0
