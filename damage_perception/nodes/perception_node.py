"""The damage_perception node: camera + TF in, InspectItem action and DamageVerdict out.

Subscribed: ``color/image_raw``, ``depth/image_raw`` (16UC1 mm or 32FC1 m), ``color/camera_info``
(sensor-data QoS, approximate-time synchronised), ``/tf``, ``/tf_static``.
Published: ``verdict`` (DamageVerdict); ``~/debug/*`` for RViz and a ``~/save_report`` service
(``ros/debug_publisher.py``). Action server: ``inspect`` (InspectItem).

Damage is judged by the damage model (``model_path``: the shipped model by default) against the SKU's
reference gallery, read from the station's SQLite store (``store_path``) at each goal, so a newly enrolled
or rolled-back gallery version counts from the next item on. Without a model file that loads, every goal
ends in ERROR saying why; without a gallery for the SKU, the classifier alone may divert but not pass.
With two or more SKUs enrolled, the item's views are also compared with every SKU's gallery (product
identification, ``identification.*``): an item that does not look like its claimed SKU goes to REVIEW with
``sku_mismatch`` set. With ``auto_enrol.enabled`` (off by default), an item that passed confidently and looks
like its gallery's own views adds its views to that gallery as a new version (``core.enrolment``).

Only the latest synchronised frame is kept (a queue of one, like image_pipeline's calibrator): a view is
taken from the first frame that arrives after the wrist was asked to move and whose TF shows the gripper
at the requested angle, so stale frames are dropped rather than piling up. Every drop is counted (frames the
synchroniser evicted, frames overwritten before use, frames whose stamp went backwards) and published with
the input rates on ``/diagnostics`` once a second. The verdict names each view's frame (``view_stamps``), so
``damage-perception replay`` can judge the item again from a recording.

One job at a time, an inspection or an enrolment (``~/enrol_sku``, with ``~/rollback_gallery`` and
``~/report_label`` in ``ros/gallery_services.py``): a goal or an enrolment arriving while another runs is
refused at once.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.core.damage_model import DamageModel, ModelLoadError
from damage_perception.core.enrolment import AutoEnrolConfig, auto_enrol_decision, grown_gallery
from damage_perception.core.gallery import SkuGallery
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.identification import GalleryIndex, IdentificationConfig, check_item
from damage_perception.core.policies import StoppingRule, make_policy, take_views
from damage_perception.core.transforms import make_transform, rotation_about_z, rotation_angle_between
from damage_perception.core.verdict import DecisionConfig, ItemVerdict, ViewResult, decide, with_identification
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline, ViewPipelineConfig
from damage_perception.ros.conversions import matrix_to_pose, rgbd_to_arrays, transform_to_matrix
from damage_perception.ros.debug_publisher import DebugConfig, DebugPublisher
from damage_perception.ros.gallery_services import GalleryServices
from damage_perception.ros.params import declare_config
from damage_perception.ros.review_media import ReviewMedia
from damage_perception.ros.sync import ApproximateTimeSynchronizer, Subscriber
from damage_perception.ros.tf import Buffer, TransformException, TransformListener
from damage_perception.ros.verdict_msgs import DECISION_NAMES, error_verdict_msg, verdict_to_msg
from damage_perception.store.galleries import active_galleries, load_gallery, save_gallery
from damage_perception.store.sqlite_store import InspectionRecord, InspectionStore

SHIPPED_MODEL = "shipped"   # model_path value naming the model file installed with the package
GEOMETRIC_VERSION = "geometric-v1"
PARAMETER_DEFAULTS = {  # the node's parameters besides the config dataclasses' (gripper.*, pipeline.*, ...)
    "color_topic": "color/image_raw", "depth_topic": "depth/image_raw",
    "camera_info_topic": "color/camera_info", "camera_frame": "camera_color_optical_frame",
    "gripper_frame": "gripper_link", "presentation_frame": "inspection_pose",
    "sync_slop": 0.02, "sync_queue_size": 10, "tf_timeout": 0.5, "goal_deadline": 30.0,
    "view_timeout": 5.0, "settle_tolerance_deg": 2.0, "policy": "fixed", "num_views": 6,
    "model_path": SHIPPED_MODEL, "store_path": "", "wrist_goal_topic": "arm/wrist_goal",
    "reachable_wrist_angles": [-math.pi, math.pi],
}


@dataclass
class Frame:
    """One synchronised camera frame."""

    color: Image
    depth: Image
    info: CameraInfo
    received: float  # monotonic seconds
    taken: bool = False  # handed to an inspection (an overwritten frame that was never taken is a drop)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@dataclass
class InputMonitor:
    """Arrival time and stamp of the last message on each input, to say why no synchronised frame came."""

    topics: list[str]
    slop: float
    last_seen: dict[str, float] = field(default_factory=dict)      # monotonic seconds
    last_stamp: dict[str, int] = field(default_factory=dict)       # header stamp, ns
    backwards_seen: dict[str, float] = field(default_factory=dict)  # when a stamp last went backwards
    counts: dict[str, int] = field(default_factory=dict)

    def callback(self, topic: str):
        """A message_filters callback recording ``topic``'s messages."""
        return lambda msg: self.record(topic, msg)

    def record(self, topic: str, msg) -> None:
        now, stamp = time.monotonic(), _stamp_ns(msg)
        if stamp < self.last_stamp.get(topic, stamp):
            self.backwards_seen[topic] = now
        self.last_seen[topic], self.last_stamp[topic] = now, stamp
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def diagnose(self, window: float = 1.0) -> str:
        """Why the inputs do not synchronise now, in a few words."""
        now = time.monotonic()
        silent = [t for t in self.topics if now - self.last_seen.get(t, -math.inf) > window]
        if silent:
            return f"nothing received on {', '.join(silent)} in the last {window:.0f} s"
        backwards = [t for t in self.topics if now - self.backwards_seen.get(t, -math.inf) <= window]
        if backwards:
            return f"stamps on {', '.join(backwards)} go backwards"
        stamps = [self.last_stamp[t] for t in self.topics]
        spread = (max(stamps) - min(stamps)) * 1e-9
        if spread > self.slop:
            return (f"latest stamps on {', '.join(self.topics)} are {spread:.3f} s apart "
                    f"(sync_slop {self.slop:g} s)")
        return "inputs arrive but did not synchronise"


class InspectionError(Exception):
    """An inspection cannot go on; the message becomes the ERROR verdict's reason."""


class DamagePerceptionNode(Node):
    """Inspects the held item from several wrist angles and publishes a damage verdict."""

    def __init__(self, **kwargs) -> None:
        super().__init__("damage_perception", **kwargs)
        self._declare_parameters()
        self.model, self.model_problem = self._load_model()
        self.pipeline = ViewPipeline(self.gripper, self.pipeline_config, self.model,
                                     keep_gallery_data=self.auto_enrol.enabled)
        self._frame: Frame | None = None
        self._frame_ready = threading.Condition()
        self._last_stamp_ns = 0
        self._busy = threading.Lock()  # held from a goal's acceptance to its answer, or through an enrolment
        self.counters = dict.fromkeys(("frames_synchronised", "frames_overwritten_unused", "frames_backwards",
                                       "views", "goals_accepted", "goals_rejected"), 0)

        self.tf_buffer = Buffer(cache_time=Duration(seconds=30.0))
        self.tf_listener = TransformListener(self.tf_buffer, self)
        self._subscribe_camera()
        self.verdict_pub = self.create_publisher(DamageVerdict, "verdict", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        # Debug topics (~/debug/*) and the last item's HTML report (~/save_report): ros/debug_publisher.py.
        self.debug = DebugPublisher(self, declare_config(self, "debug", DebugConfig()),
                                    self._param("gripper_frame"), self._param("camera_frame"))
        self.action_server = ActionServer(
            self, InspectItem, "inspect", execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        # ~/enrol_sku, ~/rollback_gallery, ~/report_label: ros/gallery_services.py. An enrolment turns the wrist
        # itself on wrist_goal_topic and holds the same lock as an inspection.
        self.wrist_pub = self.create_publisher(PoseStamped, self._param("wrist_goal_topic"), 10)
        self.gallery_services = GalleryServices(
            self, self.store, self.model, self.model_problem, ViewPipeline(self.gripper, self.pipeline_config),
            self._capture_view, self._busy)
        self.review_media = ReviewMedia(self, self.store)  # review.*: media kept for the review station
        self.get_logger().info(
            f"ready: listening on {self._param('color_topic')}, {self._param('depth_topic')}, "
            f"{self._param('camera_info_topic')}; gripper frame '{self._param('gripper_frame')}'; "
            f"policy '{self._param('policy')}' with {self._param('num_views')} views")

    # -- parameters ---------------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        for name, default in PARAMETER_DEFAULTS.items():
            self.declare_parameter(name, default)
        self.gripper = declare_config(self, "gripper", GripperGeometry())
        self.pipeline_config = declare_config(self, "pipeline", ViewPipelineConfig())
        self.decision_config = declare_config(self, "decision", DecisionConfig())
        self.stopping_rule = declare_config(self, "stopping", StoppingRule())
        self.identification = declare_config(self, "identification", IdentificationConfig())
        self.auto_enrol = declare_config(self, "auto_enrol", AutoEnrolConfig())
        self._index: tuple[tuple, GalleryIndex | None] = ((), None)   # (active gallery versions, their index)
        self.store = self._open_store()

    def _open_store(self) -> InspectionStore | None:
        """The station's SQLite store: reference galleries, and the log every verdict is committed to before
        it is published (off when the path is empty)."""
        path = self._param("store_path")
        if not path:
            return None
        try:
            return InspectionStore(os.path.expanduser(path))
        except (sqlite3.Error, OSError) as error:
            self.get_logger().error(f"store '{path}' is unusable: no galleries, verdicts will not be logged: {error}")
            return None

    def _load_model(self) -> tuple[DamageModel | None, str]:
        """The damage model, or None with the reason every goal will be answered with (ERROR)."""
        path = self._param("model_path")
        if not path:
            self.get_logger().warning("model_path is empty: judging by the geometric score alone (flat-faced "
                                      "cartons only)")
            if self.decision_config.fusion == "learned":
                self.decision_config = dataclasses.replace(self.decision_config, fusion="max")
            return None, ""
        if path == SHIPPED_MODEL:
            from damage_perception.tools.train import DEFAULT_MODEL
            path = str(DEFAULT_MODEL)
        try:
            model = DamageModel.load(os.path.expanduser(path))
        except ModelLoadError as error:
            self.get_logger().error(f"{error}: every inspection will end in ERROR until a model loads")
            return None, f"damage model unavailable: {error}"
        if model.fusion is None:
            return None, f"damage model unavailable: {path} has no fitted fusion (train it with damage-perception train)"
        self.get_logger().info(f"damage model {model.version} loaded from {path}")
        return model, ""

    def destroy_node(self) -> None:
        """Also destroy the action server and close the store: rclpy's destroy_node leaves waitables alive, and a
        leftover ``inspect`` server answers discovery without ever answering a goal."""
        self.action_server.destroy()
        if self.store is not None:
            self.store.close()
        super().destroy_node()

    @property
    def model_version(self) -> str:
        return self.model.version if self.model is not None else GEOMETRIC_VERSION

    def _gallery(self, sku: str):
        """The SKU's active gallery from the store (read per goal: enrolments count at once), or None."""
        if self.store is None or not sku:
            return None
        try:
            return load_gallery(self.store, sku)
        except (sqlite3.Error, ValueError) as error:
            self.get_logger().error(f"gallery of SKU '{sku}' unreadable: {error}")
            return None

    def _identification_index(self) -> GalleryIndex | None:
        """Every active gallery's embeddings (None with fewer than two SKUs enrolled), rebuilt when an
        enrolment or a rollback changed what is active."""
        if self.store is None or self.model is None or not self.identification.enabled:
            return None
        try:
            active = tuple(sorted(self.store.active_gallery_versions().items()))
            if active != self._index[0]:
                galleries = active_galleries(self.store) if len(active) >= 2 else []
                self._index = (active, GalleryIndex(galleries) if galleries else None)
        except (sqlite3.Error, ValueError) as error:
            self.get_logger().error(f"product identification off for this item: galleries unreadable: {error}")
            return None
        return self._index[1]

    def _check_claim(self, item_id: str, sku: str, views: list[ViewResult]):
        """Does the item look like the SKU it came as? (``core.identification``; None when not checkable)."""
        index = self._identification_index()
        embeddings = [view.embedding for view in views if view.found and view.embedding is not None]
        if index is None or not embeddings:
            return None
        check = check_item(index, embeddings, sku, self.identification)
        if check is not None and check.mismatch:
            self.get_logger().warning(f"item '{item_id}': {check.reason}")
        return check

    def _log_verdict(self, msg: DamageVerdict) -> None:
        if self.store is None:
            return
        try:
            self.store.log_inspection(InspectionRecord(
                msg.item_id, msg.sku, msg.decision, msg.fused_score, msg.threshold, msg.model_version,
                msg.gallery_version, msg.reason, tuple(msg.view_scores)))
        except (sqlite3.Error, OSError) as error:
            self.get_logger().error(f"item '{msg.item_id}': verdict not logged: {error}")

    def _auto_enrol(self, item_id: str, verdict: ItemVerdict, gallery: SkuGallery | None) -> None:
        """With ``auto_enrol.enabled``: store the gallery grown by a qualifying item's views as the SKU's next
        version, else log (debug) why the item does not qualify. Never raises."""
        if not self.auto_enrol.enabled or self.store is None:
            return
        try:
            reason = auto_enrol_decision(verdict, gallery, self.auto_enrol)
            if reason:
                self.get_logger().debug(f"item '{item_id}' not auto-enrolled: {reason}")
                return
            grown = grown_gallery(gallery, verdict.views, self.auto_enrol.max_views_per_gallery)
            added = len(grown.views) - len(gallery.views)
            note = f"auto-enrolled from item {item_id} (v{gallery.version} + {added} views)"
            version = save_gallery(self.store, grown, note)
            self.get_logger().info(f"item '{item_id}' auto-enrolled: SKU '{gallery.sku}' gallery version {version} "
                                   f"active ({len(grown.views)} views)")
        except Exception as error:  # noqa: BLE001 - a store error must not cost the verdict or the node
            self.get_logger().error(f"item '{item_id}': auto-enrolment failed: {error!r}")

    def _param(self, name: str):
        return self.get_parameter(name).value

    # -- inputs -------------------------------------------------------------------------------------
    def _subscribe_camera(self) -> None:
        sensor_group = MutuallyExclusiveCallbackGroup()
        topics = [(Image, self._param("color_topic")), (Image, self._param("depth_topic")),
                  (CameraInfo, self._param("camera_info_topic"))]
        self.inputs = InputMonitor([topic for _, topic in topics], self._param("sync_slop"))
        subscribers = []
        for msg_type, topic in topics:
            subscriber = Subscriber(self, msg_type, topic, qos_profile=qos_profile_sensor_data,
                                    callback_group=sensor_group)
            subscriber.registerCallback(self.inputs.callback(topic))
            subscribers.append(subscriber)
        self.sync = ApproximateTimeSynchronizer(subscribers, queue_size=self._param("sync_queue_size"),
                                                slop=self._param("sync_slop"))
        self.sync.registerCallback(self._on_frame)

    def _on_frame(self, color: Image, depth: Image, info: CameraInfo) -> None:
        stamp, last_stamp = _stamp_ns(depth), self._last_stamp_ns
        self._last_stamp_ns = stamp  # compared with the last frame only: after a clock jump one frame is lost
        if stamp < last_stamp:
            self.counters["frames_backwards"] += 1
            self.get_logger().warning(f"dropping a frame whose stamp went backwards by "
                                      f"{(last_stamp - stamp) * 1e-9:.3f} s", throttle_duration_sec=2.0)
            return
        with self._frame_ready:
            previous = self._frame
            if previous is not None and not previous.taken:
                self.counters["frames_overwritten_unused"] += 1
            self.counters["frames_synchronised"] += 1
            self._frame = Frame(color, depth, info, time.monotonic())
            self._frame_ready.notify_all()

    def _publish_diagnostics(self) -> None:
        """Input counters on /diagnostics (and at debug level): drops are counted, never queued."""
        values = {**self.counters, "sync_dropped": getattr(self.sync, "dropped", -1), "busy": self._busy.locked(),
                  **{f"received {topic}": count for topic, count in self.inputs.counts.items()}}
        fresh = self._frame is not None and time.monotonic() - self._frame.received < 2.0
        status = DiagnosticStatus(name=f"{self.get_name()}: inputs", hardware_id="",
                                  level=DiagnosticStatus.OK if fresh else DiagnosticStatus.WARN,
                                  message="frames arriving" if fresh else self.inputs.diagnose(2.0),
                                  values=[KeyValue(key=key, value=str(value)) for key, value in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)
        self.get_logger().debug(f"inputs: {values}")

    def _on_goal(self, goal: InspectItem.Goal) -> GoalResponse:
        if not self._busy.acquire(blocking=False):  # released when the accepted goal is answered
            self.counters["goals_rejected"] += 1
            self.get_logger().warning(f"rejecting goal for item '{goal.item_id}': an inspection or an enrolment "
                                      "is running")
            return GoalResponse.REJECT
        self.counters["goals_accepted"] += 1
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
        self._log_verdict(msg)  # committed before anyone hears of it
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
        else:
            goal_handle.succeed()
        return InspectItem.Result(verdict=msg)

    def _verdict_or_error(self, goal_handle, started: float
                          ) -> tuple[DamageVerdict, tuple[ItemVerdict, SkuGallery | None] | None]:
        """The inspection's verdict (with the item's verdict and the gallery it was judged against), or an
        ERROR verdict with the reason (and None): every goal gets an answer."""
        goal = goal_handle.request
        try:
            msg, verdict, gallery = self._inspect(goal_handle, started)
            return msg, (verdict, gallery)
        except InspectionError as error:
            reason = str(error)
            self.get_logger().error(f"item '{goal.item_id}': {error}")
        except Exception as error:  # noqa: BLE001 - a goal must always get an answer
            reason = f"internal error: {error!r}"
            self.get_logger().error(f"item '{goal.item_id}': unexpected failure: {error!r}")
        return error_verdict_msg(reason, item_id=goal.item_id, sku=goal.sku, stamp=self.get_clock().now().to_msg(),
                                 frame_id=self._param("gripper_frame"), model_version=self.model_version,
                                 inspection_seconds=time.monotonic() - started), None

    def _inspect(self, goal_handle, started: float) -> tuple[DamageVerdict, ItemVerdict, SkuGallery | None]:
        goal = goal_handle.request
        if self.model_problem:
            raise InspectionError(self.model_problem)
        gallery = self._gallery(goal.sku) if self.model is not None else None
        if self.model is not None and gallery is None:
            self.get_logger().warning(f"item '{goal.item_id}': no reference gallery for SKU '{goal.sku}': the "
                                      "classifier alone can divert it but not pass it")
        try:
            policy = make_policy(goal.policy or self._param("policy"), self._param("num_views"), self.stopping_rule,
                                 tuple(self._param("reachable_wrist_angles")))
        except ValueError as error:
            raise InspectionError(str(error)) from error
        deadline = started + self._param("goal_deadline")
        frames: list[Frame] = []   # the frame of each view taken: its stamps go into the verdict

        def take_view(index: int, angle: float) -> ViewResult:
            if goal_handle.is_cancel_requested:
                raise InspectionError("inspection cancelled by the client")
            self._ask_for_view(goal_handle, index, angle)
            view_input, frame = self._wait_for_view(angle, deadline)
            frames.append(frame)
            result, segment = self.pipeline.process(view_input, index=index, wrist_angle=angle, gallery=gallery)
            self.debug.view(result, segment, view_input, frame.color.header.stamp)
            self.counters["views"] += 1
            self._send_feedback(goal_handle, result)
            return result

        views = take_views(policy, take_view)
        verdict = decide(views, self.decision_config, policy.early_decision(views),
                         self.model.fusion if self.model is not None else None, gallery is not None)
        verdict = with_identification(verdict, self._check_claim(goal.item_id, goal.sku, views))
        last_stamp = frames[-1].color.header.stamp if frames else self.get_clock().now().to_msg()
        msg = verdict_to_msg(verdict, item_id=goal.item_id, sku=goal.sku, stamp=last_stamp,
                             frame_id=self._param("gripper_frame"),
                             model_version=self.model_version,
                             gallery_version=f"{goal.sku}@v{gallery.version}" if gallery is not None else "",
                             inspection_seconds=time.monotonic() - started,
                             view_stamps=[frame.depth.header.stamp for frame in frames])
        return msg, verdict, gallery

    def _capture_view(self, angle: float, deadline: float) -> ViewInput:
        """For an enrolment: send the wrist to ``angle`` ourselves and wait for the view there."""
        self.wrist_pub.publish(self._wrist_pose(angle))
        return self._wait_for_view(angle, deadline)[0]

    def _ask_for_view(self, goal_handle, index: int, angle: float) -> None:
        feedback = InspectItem.Feedback(view_index=index, view_score=math.nan, done=False,
                                        next_wrist_angle=float(angle),
                                        status=f"view {index}: move the wrist to {math.degrees(angle):.0f} deg")
        feedback.next_wrist_pose = self._wrist_pose(angle)
        goal_handle.publish_feedback(feedback)

    def _send_feedback(self, goal_handle, result: ViewResult) -> None:
        status = (f"view {result.index}: score {result.score:.2f}" if result.found
                  else f"view {result.index}: {result.reason}")
        goal_handle.publish_feedback(InspectItem.Feedback(
            view_index=result.index, view_score=float(result.score), done=False,
            next_wrist_angle=float(result.wrist_angle), status=status))

    def _wrist_pose(self, angle: float) -> PoseStamped:
        pose = PoseStamped()
        pose.header.frame_id = self._param("presentation_frame")
        pose.header.stamp = self.get_clock().now().to_msg()
        pose.pose = matrix_to_pose(make_transform(rotation=rotation_about_z(angle)))
        return pose

    def _wait_for_view(self, angle: float, deadline: float) -> tuple[ViewInput, Frame]:
        """Block until a frame shows the gripper at ``angle``; return its ViewInput and the frame."""
        asked = time.monotonic()
        view_deadline = min(deadline, asked + self._param("view_timeout"))
        last_problem = "no synchronised color/depth/camera_info frame received"
        tolerance = math.radians(self._param("settle_tolerance_deg"))
        newer_than = asked
        while (frame := self._next_frame(after=newer_than, until=view_deadline)) is not None:
            newer_than = frame.received
            try:
                view_input, error = self._frame_to_view(frame, angle)
            except (TransformException, ValueError) as problem:
                last_problem = str(problem).strip()
                self.get_logger().warning(last_problem, throttle_duration_sec=2.0)
                continue
            if error <= tolerance:
                return view_input, frame
            last_problem = f"gripper still {math.degrees(error):.1f} deg from the requested angle"
        silence = time.monotonic() - newer_than
        if newer_than == asked:  # not one synchronised frame: say which input is missing or off
            last_problem = f"{last_problem} ({self.inputs.diagnose()})"
        elif silence > 1.0:  # frames stopped during the wait (the camera died?)
            last_problem = (f"no synchronised color/depth/camera_info frame for the last {silence:.1f} s "
                            f"({self.inputs.diagnose()}); before that: {last_problem}")
        raise InspectionError(f"view at {math.degrees(angle):.0f} deg not taken within "
                              f"{view_deadline - asked:.1f} s: {last_problem}")

    def _next_frame(self, after: float, until: float) -> Frame | None:
        """The latest frame received after ``after``, waiting until ``until``; None when time is up."""
        with self._frame_ready:
            while True:
                remaining = until - time.monotonic()
                if remaining <= 0 or not rclpy.ok():
                    return None
                if self._frame is not None and self._frame.received > after:
                    self._frame.taken = True
                    return self._frame
                self._frame_ready.wait(timeout=min(remaining, 0.2))

    def _frame_to_view(self, frame: Frame, angle: float) -> tuple[ViewInput, float]:
        """Convert a frame and its TF at the frame's stamp; also the gripper's angular error."""
        color, depth, intrinsics = rgbd_to_arrays(frame.color, frame.depth, frame.info)  # undistorts when D != 0
        stamp = Time.from_msg(frame.depth.header.stamp)
        timeout = Duration(seconds=self._param("tf_timeout"))
        camera_frame = frame.depth.header.frame_id or self._param("camera_frame")
        gripper_frame = self._param("gripper_frame")

        def lookup(target: str, source: str) -> np.ndarray:
            return transform_to_matrix(self.tf_buffer.lookup_transform(target, source, stamp, timeout))

        camera_from_gripper = lookup(camera_frame, gripper_frame)
        wrist = lookup(self._param("presentation_frame"), gripper_frame)
        fingers = [lookup(gripper_frame, finger) for finger in self.gripper.finger_frames]
        error = rotation_angle_between(wrist, make_transform(rotation=rotation_about_z(angle)))
        return ViewInput(depth, intrinsics, camera_from_gripper, fingers, color), error


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
