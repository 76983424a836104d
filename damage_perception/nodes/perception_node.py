"""The damage_perception node: camera + TF in, InspectItem action and DamageVerdict out.

Subscribed: ``color/image_raw``, ``depth/image_raw`` (16UC1 mm or 32FC1 m), ``color/camera_info``
(sensor-data QoS, approximate-time synchronised), ``/tf``, ``/tf_static``. Published: ``verdict``,
``/diagnostics``, ``~/debug/*`` and ``~/save_report`` (``ros/debug_publisher.py``). Action: ``inspect``.

The inspection is ``core.inspection.Inspector`` (shared with ``replay``): the damage model against the SKU's
gallery, read from the store (``store_path``) at each goal; product identification; the auto-enrolment
decision. The camera input with its frame slot of one and TF: ``ros/camera_input.py``; parameters:
``core.station.StationSettings``; enrolment, rollback and labels: ``ros/gallery_services.py``; media kept
for the review station: ``ros/review_media.py``. One job at a time, an inspection or an enrolment: a goal
or an enrolment arriving while another runs is refused at once.
"""
from __future__ import annotations

import threading
import time

import rclpy
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from damage_perception.core.coverage import summarise
from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import GalleryIndex
from damage_perception.core.inspection import InspectionError, Inspector
from damage_perception.core.station import StationSettings
from damage_perception.core.verdict import ItemVerdict, ViewResult
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.ros.camera_input import CameraInput, GoalViews
from damage_perception.ros.debug_publisher import DebugConfig, DebugPublisher
from damage_perception.ros.gallery_services import GalleryServices
from damage_perception.ros.node_diagnostics import diagnostics_array
from damage_perception.ros.params import declare_config
from damage_perception.ros.review_media import ReviewMedia
from damage_perception.ros.verdict_msgs import (
    DECISION_NAMES,
    error_verdict_msg,
    inspection_record,
    verdict_to_msg,
    view_request_feedback,
    view_result_feedback,
    wrist_pose,
)
from damage_perception.store.station_store import StationStore


class DamagePerceptionNode(Node):
    """Inspects the held item from several wrist angles and publishes a damage verdict."""

    def __init__(self, **kwargs) -> None:
        super().__init__("damage_perception", **kwargs)
        self.settings = declare_config(self, "", StationSettings())
        self.inspector = self._make_inspector()
        self.store = StationStore(self.settings.store_path, self.get_logger(), self.settings.station_id,
                                  self.settings.store_outbox)
        self._busy = threading.Lock()  # held from a goal's acceptance to its answer, or through an enrolment
        self.counters = dict.fromkeys(("views", "views_unusable", "goals_accepted", "goals_rejected"), 0)
        self._accepted_ns = 0   # node clock when the running goal was accepted: its views come from later frames
        self.camera = CameraInput(self, self.settings, self.settings.gripper.finger_frames)
        self.verdict_pub = self.create_publisher(DamageVerdict, "verdict", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        # Debug topics (~/debug/*) and the last item's HTML report (~/save_report): ros/debug_publisher.py.
        self.debug = DebugPublisher(self, declare_config(self, "debug", DebugConfig()),
                                    self.settings.gripper_frame, self.settings.camera_frame)
        self.action_server = ActionServer(
            self, InspectItem, "inspect", execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        # ~/enrol_sku, ~/rollback_gallery, ~/report_label: ros/gallery_services.py. An enrolment turns the wrist
        # itself on wrist_goal_topic and holds the same lock as an inspection.
        self.wrist_pub = self.create_publisher(PoseStamped, self.settings.wrist_goal_topic, 10)
        self.gallery_services = GalleryServices(
            self, self.store.store, self.inspector.model, self.inspector.model_problem,
            ViewPipeline(self.settings.gripper, self.settings.pipeline), self._capture_view, self._busy)
        self.review_media = ReviewMedia(self, self.store.store)  # review.*: media kept for the review station
        s = self.settings
        self.get_logger().info(
            f"ready: listening on {s.color_topic}, {s.depth_topic}, {s.camera_info_topic}; gripper frame "
            f"'{s.gripper_frame}'; policy '{s.policy}' with {s.num_views} views")

    def _make_inspector(self) -> Inspector:
        """The inspector with the station's model; a model that does not load is logged, and every goal will
        be answered ERROR with the reason."""
        inspector = Inspector.for_station(self.settings)
        path = self.settings.model_path
        if not path:
            self.get_logger().warning("model_path is empty: judging by the geometric score alone (flat-faced "
                                      "cartons only)")
        elif inspector.model_problem:
            self.get_logger().error(f"{inspector.model_problem}: every inspection will end in ERROR until a "
                                    "model loads")
        else:
            self.get_logger().info(f"damage model {inspector.model_version} loaded from {path}")
        return inspector

    def destroy_node(self) -> None:
        """Also destroy the action server and close the store: rclpy's destroy_node leaves waitables alive, and a
        leftover ``inspect`` server answers discovery without ever answering a goal."""
        self.action_server.destroy()
        self.store.close()
        super().destroy_node()

    def _identification_index(self) -> GalleryIndex | None:
        """Every active gallery's embeddings for product identification, None when it is off."""
        if self.inspector.model is None or not self.settings.identification.enabled:
            return None
        return self.store.identification_index()

    def _auto_enrol(self, item_id: str, verdict: ItemVerdict, gallery: SkuGallery | None) -> None:
        """Store the gallery grown by a qualifying item's views as the SKU's next version (``Inspector
        .auto_enrolment``), else log (debug) why the item does not qualify."""
        if not self.settings.auto_enrol.enabled:
            return
        grown, note = self.inspector.auto_enrolment(item_id, verdict, gallery)
        if grown is None:
            self.get_logger().debug(f"item '{item_id}' not auto-enrolled: {note}")
        else:
            self.store.save_grown(item_id, grown, note)

    def _publish_diagnostics(self) -> None:
        """Input and store state on /diagnostics (``ros/node_diagnostics.py``): drops are counted, never queued."""
        counters = {**self.counters, "busy": self._busy.locked()}
        self.diagnostics_pub.publish(diagnostics_array(self.get_name(), self.camera, counters, self.store,
                                                       self.get_clock().now().to_msg()))

    def _on_goal(self, goal: InspectItem.Goal) -> GoalResponse:
        if not self._busy.acquire(blocking=False):  # released when the accepted goal is answered
            self.counters["goals_rejected"] += 1
            self.get_logger().warning(f"rejecting goal for item '{goal.item_id}': an inspection or an enrolment "
                                      "is running")
            return GoalResponse.REJECT
        self.counters["goals_accepted"] += 1
        self._accepted_ns = self.get_clock().now().nanoseconds
        return GoalResponse.ACCEPT

    # -- the inspection -----------------------------------------------------------------------------
    def _execute(self, goal_handle) -> InspectItem.Result:
        goal = goal_handle.request
        started = time.monotonic()
        self.debug.start_item(goal.item_id)
        try:
            msg, judged = self._verdict_or_error(goal_handle, started)
        finally:
            self._busy.release()  # taken in _on_goal
        self.store.log_inspection(inspection_record(msg))  # committed before anyone hears of it
        self.debug.finish_item(msg)
        self.review_media.keep(msg, self.debug.last_report)  # REVIEW/DIVERT/sampled PASS: views for the review page
        if not self.context.ok():  # shutting down (Ctrl-C): nobody is left to tell
            return InspectItem.Result(verdict=msg)
        self.verdict_pub.publish(msg)
        self.get_logger().info(f"item '{goal.item_id}': {DECISION_NAMES[msg.decision]} "
                               f"(score {msg.fused_score:.2f}, {msg.num_views} views, "
                               f"{msg.inspection_seconds:.1f} s) {msg.reason}")
        if judged is not None:  # before the result goes out: the planner's next goal sees the new version
            self._auto_enrol(goal.item_id, *judged)
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif msg.decision == DamageVerdict.ERROR:   # failed goals end ABORTED; the verdict still says why
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return InspectItem.Result(verdict=msg)

    def _verdict_or_error(self, goal_handle, started: float
                          ) -> tuple[DamageVerdict, tuple[ItemVerdict, SkuGallery | None] | None]:
        """The inspection's verdict (with the item's verdict and the gallery it was judged against), or an
        ERROR verdict with the reason (and None): every goal gets an answer."""
        goal = goal_handle.request
        try:
            return self._inspect(goal_handle, started)
        except InspectionError as error:
            reason = str(error)
            self.get_logger().error(f"item '{goal.item_id}': {error}")
        except Exception as error:  # noqa: BLE001 - a goal must always get an answer
            reason = f"internal error: {error!r}"
            self.get_logger().error(f"item '{goal.item_id}': unexpected failure: {error!r}")
        return error_verdict_msg(reason, item_id=goal.item_id, sku=goal.sku, stamp=self.get_clock().now().to_msg(),
                                 frame_id=self.settings.gripper_frame, model_version=self.inspector.model_version,
                                 inspection_seconds=time.monotonic() - started), None

    def _inspect(self, goal_handle, started: float) -> tuple[DamageVerdict, tuple[ItemVerdict, SkuGallery | None]]:
        goal = goal_handle.request
        if self.inspector.model_problem:
            raise InspectionError(self.inspector.model_problem)
        gallery = self.store.gallery(goal.sku) if self.inspector.model is not None else None  # per goal
        if self.inspector.model is not None and gallery is None:
            self.get_logger().warning(f"item '{goal.item_id}': no reference gallery for SKU '{goal.sku}': the "
                                      "classifier alone can divert it but not pass it")
        elif self.inspector.model is not None and (stale := self.inspector.model.stale_gallery(gallery)):
            self.get_logger().warning(f"item '{goal.item_id}': {stale}")

        def on_view(result: ViewResult, segment, view: ViewInput, frame) -> None:
            self.debug.view(result, segment, view, frame.color.header.stamp)
            self.counters["views"] += 1
            goal_handle.publish_feedback(view_result_feedback(result))

        views = GoalViews(self.camera, started + self.settings.goal_deadline,
                          lambda index, angle: goal_handle.publish_feedback(
                              view_request_feedback(index, angle, self._wrist_pose(angle))), on_view,
                          lambda: goal_handle.is_cancel_requested, self._accepted_ns)
        verdict = self.inspector.inspect(views, goal.sku, gallery, self._identification_index(), goal.policy)
        self.counters["views_unusable"] += len(verdict.unusable_views)
        if verdict.unusable_views:
            self.get_logger().warning(f"item '{goal.item_id}': {len(verdict.unusable_views)} unusable views: "
                                      f"{summarise(verdict.unusable_views)}")
        if verdict.sku_mismatch:
            self.get_logger().warning(f"item '{goal.item_id}': {verdict.reason}")
        frames = views.frames
        msg = verdict_to_msg(verdict, item_id=goal.item_id, sku=goal.sku,
                             stamp=frames[-1].color.header.stamp if frames else self.get_clock().now().to_msg(),
                             frame_id=self.settings.gripper_frame, model_version=self.inspector.model_version,
                             gallery_version=f"{goal.sku}@v{gallery.version}" if gallery is not None else "",
                             inspection_seconds=time.monotonic() - started,
                             view_stamps=[frame.depth.header.stamp for frame in frames])
        return msg, (verdict, gallery)

    def _capture_view(self, angle: float, deadline: float, not_before_ns: int = 0) -> ViewInput:
        """For an enrolment: send the wrist to ``angle`` ourselves and wait for a view there stamped at or after
        ``not_before_ns``."""
        self.wrist_pub.publish(self._wrist_pose(angle))
        return self.camera.wait_for_view(angle, deadline, not_before_ns)[0]

    def _wrist_pose(self, angle: float) -> PoseStamped:
        return wrist_pose(angle, self.settings.presentation_frame, self.get_clock().now().to_msg())


def main(args=None) -> None:
    """Run the node with a multi-threaded executor (the action waits while sensors keep flowing)."""
    try:
        with rclpy.init(args=args):
            node = DamagePerceptionNode()
            executor = MultiThreadedExecutor(num_threads=4)
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
