"""What the node sees, for RViz and for people: debug topics per view and the last item's HTML report.

Published (under the node's namespace, built only while someone subscribes or ``debug.publish`` is true):
- ``~/debug/item_cloud`` (sensor_msgs/PointCloud2): the segmented item in the gripper frame, coloured from
  the camera image, thinned to ``debug.max_cloud_points``;
- ``~/debug/annotated_image`` (sensor_msgs/Image, rgb8): the colour image with the damage heat map over the
  item crop, the item outline and the view's score;
- ``~/debug/damage_markers`` (visualization_msgs/MarkerArray, transient local): a sphere coloured by score
  and a label at each view's damage location, gripper frame, replaced at the next item.

Service ``~/save_report`` (std_srvs/Trigger): writes the last inspected item's HTML report to
``debug.report_dir`` and answers its path.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from damage_perception_interfaces.msg import DamageVerdict
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.verdict import ViewResult
from damage_perception.core.view_pipeline import ViewInput
from damage_perception.ros.conversions import array_to_image
from damage_perception.ros.debug_msgs import damage_markers, points_to_pointcloud2
from damage_perception.ros.verdict_msgs import DECISION_NAMES
from damage_perception.visualization.drawing import annotated_image
from damage_perception.visualization.item_report import (
    ItemReport,
    ReportView,
    report_filename,
    report_view,
    write_report,
)

# Large messages: the newest only, reliable (RViz's default; best-effort subscribers hear it too).
FRAME_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Markers: a late RViz still gets the last item's.
MARKER_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class DebugConfig:
    """Parameters ``debug.*`` of the node."""

    publish: bool = False              # publish the debug topics even when nobody subscribes
    max_cloud_points: int = 5000       # the item cloud is thinned to at most this many points
    report_dir: str = "~/.ros/damage_perception/reports"   # where ~/save_report writes <item_id>.html


def thin(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items, evenly strided (deterministic)."""
    if limit <= 0 or count <= limit:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(int)


def damage_label(result: ViewResult) -> str:
    """``v<index> <type>``: the view's most likely damage type (``damage`` when none scores)."""
    scores = {name: result.type_scores.get(name, 0.0) for name in DAMAGE_TYPES}
    kind = max(scores, key=scores.get) if max(scores.values(), default=0.0) > 0 else "damage"
    return f"v{result.index} {kind}"


def view_caption(result: ViewResult, item_id: str) -> list[str]:
    """The annotated image's text lines."""
    angle = f"view {result.index} at {math.degrees(result.wrist_angle):.0f} deg"
    if not result.found:
        return [f"{item_id}: {angle}", f"no item: {result.reason}"[:90]]
    return [f"{item_id}: {angle}", f"damage {result.score:.2f} ({damage_label(result).split(' ', 1)[1]})"]


def item_report(msg: DamageVerdict, views: list[ReportView]) -> ItemReport:
    """The HTML report's content for a verdict message and the views recorded during its inspection."""
    type_scores = {name: float(getattr(msg.type_scores, name)) for name in DAMAGE_TYPES
                   if hasattr(msg.type_scores, name)}
    return ItemReport(msg.item_id, msg.sku, DECISION_NAMES.get(msg.decision, str(msg.decision)), msg.fused_score,
                      msg.threshold, type_scores, msg.reason, msg.model_version, views)


class DebugPublisher:
    """Debug topics and the report service of a node; ``start_item`` / ``view`` / ``finish_item`` are called
    from the inspection thread, the service from the executor."""

    def __init__(self, node: Node, config: DebugConfig, gripper_frame: str, camera_frame: str) -> None:
        self.node, self.config = node, config
        self.gripper_frame, self.camera_frame = gripper_frame, camera_frame
        self.cloud_pub = node.create_publisher(PointCloud2, "~/debug/item_cloud", FRAME_QOS)
        self.image_pub = node.create_publisher(Image, "~/debug/annotated_image", FRAME_QOS)
        self.marker_pub = node.create_publisher(MarkerArray, "~/debug/damage_markers", MARKER_QOS)
        self.report_service = node.create_service(Trigger, "~/save_report", self._save_report)
        self._lock = threading.Lock()
        self._item_id = ""
        self._views: list[ReportView] = []           # the running item's
        self._damage: list[ViewResult] = []          # its views with a damage location
        self._last: ItemReport | None = None         # the last finished item's

    def _wanted(self, publisher) -> bool:
        return self.config.publish or publisher.get_subscription_count() > 0

    def start_item(self, item_id: str) -> None:
        self._item_id, self._views, self._damage = item_id, [], []

    def view(self, result: ViewResult, segment: ItemSegment, view: ViewInput, stamp: TimeMsg) -> None:
        """Record a processed view for the report and publish its debug messages (never raises)."""
        try:
            self._views.append(report_view(result, view.color, segment.mask if segment.found else None))
            self._publish(result, segment, view, stamp)
        except Exception as error:  # noqa: BLE001 - debug output must never cost an inspection
            self.node.get_logger().warning(f"debug output of view {result.index} failed: {error!r}",
                                           throttle_duration_sec=5.0)

    def _publish(self, result: ViewResult, segment: ItemSegment, view: ViewInput, stamp: TimeMsg) -> None:
        frame = self.gripper_frame
        if segment.found and len(segment.points) and self._wanted(self.cloud_pub):
            keep = thin(len(segment.points), self.config.max_cloud_points)
            colors = None
            if view.color is not None:
                colors = np.asarray(view.color, np.uint8).reshape(-1, 3)[segment.pixels[keep]]
            self.cloud_pub.publish(points_to_pointcloud2(segment.points[keep], frame, stamp, colors=colors))
        if view.color is not None and self._wanted(self.image_pub):
            image = annotated_image(view.color, segment.mask if segment.found else None, result.heatmap,
                                    result.crop_box, view_caption(result, self._item_id))
            self.image_pub.publish(array_to_image(image, "rgb8", Header(stamp=stamp, frame_id=self.camera_frame)))
        if result.found and result.damage_location is not None:
            self._damage.append(result)
            if self._wanted(self.marker_pub):
                self.marker_pub.publish(damage_markers([r.damage_location for r in self._damage],
                                                       [damage_label(r) for r in self._damage],
                                                       [r.score for r in self._damage], frame, stamp,
                                                       lifetime_s=0.0))

    def finish_item(self, msg: DamageVerdict) -> None:
        """Keep the finished item's report for ``~/save_report``."""
        try:
            report = item_report(msg, self._views)
        except Exception as error:  # noqa: BLE001
            self.node.get_logger().warning(f"item '{msg.item_id}': no report kept: {error!r}")
            return
        with self._lock:
            self._last = report

    def _save_report(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            report = self._last
        if report is None:
            response.success, response.message = False, "no item inspected yet"
            return response
        path = Path(os.path.expanduser(self.config.report_dir)) / report_filename(report.item_id)
        started = time.monotonic()
        try:
            write_report(report, path)
        except OSError as error:
            response.success, response.message = False, f"report of item '{report.item_id}' not written: {error}"
            self.node.get_logger().error(response.message)
            return response
        response.success, response.message = True, str(path.resolve())
        self.node.get_logger().info(f"item '{report.item_id}': report written to {response.message} "
                                    f"({time.monotonic() - started:.2f} s)")
        return response
