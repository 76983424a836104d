"""The perception node's camera input: synchronised colour, depth and camera_info, a frame slot of one, TF.

Subscribes to the station's ``color_topic``, ``depth_topic`` (16UC1 mm or 32FC1 m) and ``camera_info_topic``
with sensor-data QoS, approximately synchronised (``sync_slop``, ``sync_queue_size``), and to ``/tf`` and
``/tf_static``. Only the latest synchronised frame is kept (a queue of one, like image_pipeline's
calibrator): a view is taken from the first frame that arrives after the wrist was asked to move and whose
TF shows the gripper at the requested angle, so stale frames are dropped rather than piling up. Every drop
is counted (frames the synchroniser evicted, frames overwritten before use, frames whose stamp went
backwards) for the node's ``/diagnostics``.

Frames with an empty ``frame_id`` are dropped (counted, throttled WARN) unless ``allow_empty_frame_id``; an
inspection takes its views only from frames stamped after its goal was accepted (a frame rendered before the
item was in the gripper is no view of it). ``GoalViews`` is one inspection's ``core.inspection.ViewSource``
over this input.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.core.coverage import InspectionError, ViewUnavailable
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.station import StationSettings
from damage_perception.core.transforms import make_transform, rotation_about_z, rotation_angle_between
from damage_perception.core.verdict import ViewResult
from damage_perception.core.view_pipeline import ViewInput
from damage_perception.ros.conversions import rgbd_to_arrays, transform_to_matrix
from damage_perception.ros.sync import ApproximateTimeSynchronizer, Subscriber
from damage_perception.ros.tf import Buffer, TransformException, TransformListener


@dataclass
class Frame:
    """One synchronised camera frame."""

    color: Image
    depth: Image
    info: CameraInfo
    received: float  # monotonic seconds
    taken: bool = False  # handed to an inspection (an overwritten frame that was never taken is a drop)


def stamp_ns(msg) -> int:
    """A message's header stamp in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def missing_frame_id(*msgs) -> bool:
    """Does any of the messages lack a ``header.frame_id`` (empty or blank)?"""
    return any(not msg.header.frame_id.strip() for msg in msgs)


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
        now, stamp = time.monotonic(), stamp_ns(msg)
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


class CameraInput:
    """``node``'s synchronised camera subscriptions, its frame slot and its TF buffer."""

    def __init__(self, node: Node, settings: StationSettings, finger_frames: tuple[str, ...]) -> None:
        self.node, self.settings, self.finger_frames = node, settings, finger_frames
        self._frame: Frame | None = None
        self._frame_ready = threading.Condition()
        self._last_stamp_ns = 0
        self.counters = dict.fromkeys(("frames_synchronised", "frames_overwritten_unused", "frames_backwards",
                                       "frames_without_frame_id", "frames_before_goal"), 0)
        self.tf_buffer = Buffer(cache_time=Duration(seconds=30.0))
        self.tf_listener = TransformListener(self.tf_buffer, node)
        self._subscribe()

    def _subscribe(self) -> None:
        sensor_group = MutuallyExclusiveCallbackGroup()
        settings = self.settings
        topics = [(Image, settings.color_topic), (Image, settings.depth_topic),
                  (CameraInfo, settings.camera_info_topic)]
        self.monitor = InputMonitor([topic for _, topic in topics], settings.sync_slop)
        subscribers = []
        for msg_type, topic in topics:
            subscriber = Subscriber(self.node, msg_type, topic, qos_profile=qos_profile_sensor_data,
                                    callback_group=sensor_group)
            subscriber.registerCallback(self.monitor.callback(topic))
            subscribers.append(subscriber)
        self.sync = ApproximateTimeSynchronizer(subscribers, queue_size=settings.sync_queue_size,
                                                slop=settings.sync_slop)
        self.sync.registerCallback(self._on_frame)

    def _on_frame(self, color: Image, depth: Image, info: CameraInfo) -> None:
        if missing_frame_id(color, depth) and not self.settings.allow_empty_frame_id:
            # Which camera took it is unknown: looking its pose up under camera_frame could judge it from the
            # wrong viewpoint (a replayed or foreign frame). Drivers that need the fallback turn it on.
            self.counters["frames_without_frame_id"] += 1
            self.node.get_logger().warning("dropping a frame with an empty header.frame_id (set "
                                           "allow_empty_frame_id to use camera_frame instead)",
                                           throttle_duration_sec=5.0)
            return
        stamp, last_stamp = stamp_ns(depth), self._last_stamp_ns
        self._last_stamp_ns = stamp  # compared with the last frame only: after a clock jump one frame is lost
        if stamp < last_stamp:
            self.counters["frames_backwards"] += 1
            self.node.get_logger().warning(f"dropping a frame whose stamp went backwards by "
                                           f"{(last_stamp - stamp) * 1e-9:.3f} s", throttle_duration_sec=2.0)
            return
        with self._frame_ready:
            previous = self._frame
            if previous is not None and not previous.taken:
                self.counters["frames_overwritten_unused"] += 1
            self.counters["frames_synchronised"] += 1
            self._frame = Frame(color, depth, info, time.monotonic())
            self._frame_ready.notify_all()

    def diagnostic_values(self) -> dict:
        """Drop counters, the synchroniser's evictions and messages received per topic."""
        return {**self.counters, "sync_dropped": getattr(self.sync, "dropped", -1),
                **{f"received {topic}": count for topic, count in self.monitor.counts.items()}}

    def fresh(self, window: float = 2.0) -> bool:
        """A synchronised frame arrived in the last ``window`` seconds."""
        return self._frame is not None and time.monotonic() - self._frame.received < window

    def wait_for_view(self, angle: float, deadline: float, not_before_ns: int = 0) -> tuple[ViewInput, Frame]:
        """Block until a frame stamped at or after ``not_before_ns`` shows the gripper at ``angle``; return its
        ViewInput and the frame. ViewUnavailable when none comes within ``view_timeout``; InspectionError
        once ``deadline`` (monotonic) has passed."""
        asked = time.monotonic()
        if asked >= deadline:
            raise InspectionError(f"goal deadline ({self.settings.goal_deadline:g} s) passed before the view at "
                                  f"{math.degrees(angle):.0f} deg")
        view_deadline = min(deadline, asked + self.settings.view_timeout)
        last_problem = "no synchronised color/depth/camera_info frame received"
        tolerance = math.radians(self.settings.settle_tolerance_deg)
        newer_than = asked
        nameless, early = self.counters["frames_without_frame_id"], self.counters["frames_before_goal"]
        current = False   # a frame stamped after the goal came
        while (frame := self._next_frame(after=newer_than, until=view_deadline)) is not None:
            newer_than = frame.received
            if stamp_ns(frame.depth) < not_before_ns:   # rendered before the goal: the item may not be held yet
                self.counters["frames_before_goal"] += 1
                continue
            current = True
            try:
                view_input, error = self._frame_to_view(frame, angle)
            except (TransformException, ValueError) as problem:
                last_problem = str(problem).strip()
                self.node.get_logger().warning(last_problem, throttle_duration_sec=2.0)
                continue
            if error <= tolerance:
                return view_input, frame
            last_problem = f"gripper still {math.degrees(error):.1f} deg from the requested angle"
        silence = time.monotonic() - newer_than
        if not current and self.counters["frames_without_frame_id"] > nameless:
            last_problem = ("every frame had an empty header.frame_id (dropped; set allow_empty_frame_id to look "
                            "them up as camera_frame)")
        elif not current:  # not one synchronised frame of this goal: say which input is missing or off
            before = self.counters["frames_before_goal"] - early
            last_problem = (f"{last_problem} ({self.monitor.diagnose()})"
                            + (f"; {before} frames stamped before the goal was accepted" if before else ""))
        elif silence > 1.0:  # frames stopped during the wait (the camera died?)
            last_problem = (f"no synchronised color/depth/camera_info frame for the last {silence:.1f} s "
                            f"({self.monitor.diagnose()}); before that: {last_problem}")
        problem = (f"view at {math.degrees(angle):.0f} deg not taken within {view_deadline - asked:.1f} s: "
                   f"{last_problem}")
        if view_deadline >= deadline:   # the goal's time is up: no retry can help
            raise InspectionError(problem)
        raise ViewUnavailable(problem)

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
        timeout = Duration(seconds=self.settings.tf_timeout)
        camera_frame = frame.depth.header.frame_id or self.settings.camera_frame  # empty: allow_empty_frame_id
        gripper_frame = self.settings.gripper_frame

        def lookup(target: str, source: str) -> np.ndarray:
            return transform_to_matrix(self.tf_buffer.lookup_transform(target, source, stamp, timeout))

        camera_from_gripper = lookup(camera_frame, gripper_frame)
        wrist = lookup(self.settings.presentation_frame, gripper_frame)
        fingers = [lookup(gripper_frame, finger) for finger in self.finger_frames]
        error = rotation_angle_between(wrist, make_transform(rotation=rotation_about_z(angle)))
        return ViewInput(depth, intrinsics, camera_from_gripper, fingers, color), error


class GoalViews:
    """One inspection's views from the camera (a ``core.inspection.ViewSource``): before each view
    ``ask(index, angle)`` asks the planner for the wrist angle, after it ``on_view(result, segment, view,
    frame)`` is told what was seen; ``cancelled()`` ends the inspection before the next view."""

    def __init__(self, camera: CameraInput, deadline: float, ask: Callable[[int, float], None],
                 on_view: Callable[[ViewResult, ItemSegment, ViewInput, Frame], None],
                 cancelled: Callable[[], bool] = lambda: False, not_before_ns: int = 0) -> None:
        self.camera, self.deadline, self.not_before_ns = camera, deadline, not_before_ns
        self.ask, self.on_view, self.cancelled = ask, on_view, cancelled
        self.frames: list[Frame] = []   # the frame of each view taken: its stamps go into the verdict
        self.last_problem = ""          # why the last view that could not be had was not had

    def take(self, index: int, angle: float) -> ViewInput:
        if self.cancelled():
            raise InspectionError("inspection cancelled by the client")
        self.ask(index, angle)
        try:
            view, frame = self.camera.wait_for_view(angle, self.deadline, self.not_before_ns)
        except ViewUnavailable as problem:
            self.last_problem = str(problem)
            raise
        except InspectionError as error:
            if self.last_problem and str(error).startswith("goal deadline"):   # say what used the time up
                raise InspectionError(f"{error}; before that: {self.last_problem}") from error
            raise
        self.frames.append(frame)
        return view

    def taken(self, result: ViewResult, segment: ItemSegment, view: ViewInput) -> None:
        self.on_view(result, segment, view, self.frames[-1])
