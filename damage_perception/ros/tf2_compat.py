"""Stand-in for tf2_ros (Python API): Buffer, TransformListener, the broadcasters and the tf2 exceptions.

Used only where tf2_ros is not installed (import through ``damage_perception.ros.tf``). Calling code is the
same as with tf2_ros: ``Buffer(cache_time=Duration(seconds=30))``, ``TransformListener(buffer, node)``,
``buffer.lookup_transform(target, source, Time(), timeout=Duration(seconds=0.5))`` returning a
TransformStamped that maps points in ``source`` into ``target`` (header.frame_id = target,
child_frame_id = source), ``TransformBroadcaster(node).sendTransform(t_or_list)``.

The frame tree and its time series are ``core.tf_tree.TransformTree`` (shared with the bag reader); this
module adds tf2's API, exception types and waiting. Semantics kept from tf2: one parent per frame, chains
composed through the common ancestor, a per-edge time cache pruned to ``cache_time`` (default 10 s),
linear/slerp interpolation between the two nearest stamps, static edges valid at all times, ``Time()`` (zero)
= the latest time common to the chain, tf2's exception types and messages, topics ``/tf`` and ``/tf_static``
with tf2_ros's QoS, and a static broadcaster that republishes every static transform it was given (latest per
child frame).

Deliberate differences:
- waiting (``timeout > 0``) blocks on a condition variable notified by ``set_transform`` instead of
  tf2_ros's 20 ms polling; like tf2_ros, the subscription must be spun by another thread meanwhile;
- ``spin_thread=True`` puts the subscriptions on an internal node spun by the listener's own thread (like
  the C++ listener; tf2_ros Python adds the caller's node to its executor instead);
- when a frame's parent changes, that frame's history is dropped (tf2 keeps a parent per stamp);
- data at an already-stored stamp replaces it (tf2 keeps both and answers with the newer);
- the ``node`` argument of ``Buffer`` is accepted but no ``tf2_frames`` service is offered, and
  there are no time-jump callbacks, ``transform()``/tf2_geometry_msgs or a BufferClient;
- only what this package calls is offered: no ``*_full`` (time-travel) or ``*_async`` lookups, no
  ``all_frames_as_*`` and no ``get_latest_common_time``.
"""
from __future__ import annotations

import math
import threading
import time as _time
from collections.abc import Callable, Iterable

import numpy as np
import rclpy.logging
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import TransformStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from tf2_msgs.msg import TFMessage

from damage_perception.core.tf_tree import (
    DisconnectedFramesError,
    ExtrapolationError,
    FrameNotFoundError,
    InvalidFrameError,
    TransformError,
    TransformTree,
)
from damage_perception.ros.conversions import matrix_to_transform, transform_to_matrix

__all__ = ["Buffer", "TransformListener", "TransformBroadcaster", "StaticTransformBroadcaster",
           "TransformException", "LookupException", "ConnectivityException", "ExtrapolationException",
           "InvalidArgumentException", "TimeoutException", "DEFAULT_TF_TOPIC", "DEFAULT_STATIC_TF_TOPIC"]

DEFAULT_TF_TOPIC = "/tf"
DEFAULT_STATIC_TF_TOPIC = "/tf_static"
DEFAULT_CACHE_TIME = Duration(seconds=10.0)


class TransformException(Exception):
    """Base of every tf error (tf2.TransformException)."""


class LookupException(TransformException):
    """A frame is unknown to the buffer."""


class ConnectivityException(TransformException):
    """The frames exist but are in different trees."""


class ExtrapolationException(TransformException):
    """The requested time is outside the data of an edge of the chain."""


class InvalidArgumentException(TransformException):
    """A frame id or a transform is malformed."""


class TimeoutException(TransformException):
    """Raised by tf2 for timeouts of some APIs (kept for import compatibility)."""


_TF2_ERRORS = {FrameNotFoundError: LookupException, DisconnectedFramesError: ConnectivityException,
               ExtrapolationError: ExtrapolationException, InvalidFrameError: InvalidArgumentException}


# -- time helpers ----------------------------------------------------------------------------------
def _nanoseconds(stamp: Time | TimeMsg | float | int | None) -> int:
    """Nanoseconds of an rclpy Time, a builtin_interfaces Time, or seconds."""
    if stamp is None:
        return 0
    if isinstance(stamp, Time):
        return stamp.nanoseconds
    if isinstance(stamp, TimeMsg):
        return stamp.sec * 1_000_000_000 + stamp.nanosec
    if isinstance(stamp, (int, float)):
        return int(round(stamp * 1e9))
    raise TypeError(f"expected rclpy.time.Time or builtin_interfaces.msg.Time, got {type(stamp).__name__}")


def _timeout_seconds(timeout: Duration | float | None) -> float:
    if timeout is None:
        return 0.0
    if isinstance(timeout, Duration):
        return timeout.nanoseconds * 1e-9
    return float(timeout)


def _stamp_msg(ns: int) -> TimeMsg:
    sec, nanosec = divmod(ns, 1_000_000_000)
    return TimeMsg(sec=sec, nanosec=nanosec)


# -- the buffer ------------------------------------------------------------------------------------
class Buffer:
    """Stores transforms of a frame tree over time and answers lookups (tf2_ros.Buffer)."""

    def __init__(self, cache_time: Duration | None = None, node: Node | None = None) -> None:
        self.cache_time = cache_time if cache_time is not None else DEFAULT_CACHE_TIME
        self._tree = TransformTree(cache_ns=self.cache_time.nanoseconds)   # core: the time series and lookups
        self._new_data = threading.Condition(threading.RLock())
        self.node = node  # accepted for API compatibility; no tf2_frames service is offered
        # One logger for the buffer's life: rclpy keeps a throttled call's state per logger object, so a logger
        # fetched per message would log every message.
        self._logger = rclpy.logging.get_logger("tf2_buffer")

    # -- filling -----------------------------------------------------------------------------------
    def set_transform(self, transform: TransformStamped, authority: str) -> bool:
        """Add a dynamic transform; False (and nothing stored) if it is malformed or too old."""
        return self._insert(transform, authority, static=False)

    def set_transform_static(self, transform: TransformStamped, authority: str) -> bool:
        """Add a transform valid at all times."""
        return self._insert(transform, authority, static=True)

    def clear(self) -> None:
        """Forget all dynamic data (static transforms are kept, as in tf2)."""
        with self._new_data:
            self._tree.clear_dynamic()

    def _insert(self, transform: TransformStamped, authority: str, static: bool) -> bool:
        parent = transform.header.frame_id.lstrip("/")
        child = transform.child_frame_id.lstrip("/")
        error = self._invalid(parent, child, transform)
        if error:
            self._logger.error(
                f"ignoring transform from authority '{authority}': {error}", throttle_duration_sec=5.0)
            return False
        matrix = transform_to_matrix(transform)
        stamp = _nanoseconds(transform.header.stamp)
        with self._new_data:
            stored = self._tree.add(parent, child, stamp, matrix, static)
            self._new_data.notify_all()
        return stored

    @staticmethod
    def _invalid(parent: str, child: str, transform: TransformStamped) -> str:
        if not parent:
            return "header.frame_id is empty"
        if not child:
            return "child_frame_id is empty"
        if parent == child:
            return f"frame_id and child_frame_id are both '{child}'"
        t, q = transform.transform.translation, transform.transform.rotation
        values = (t.x, t.y, t.z, q.x, q.y, q.z, q.w)
        if not all(math.isfinite(v) for v in values):
            return f"transform {parent} <- {child} has non-finite values {values}"
        if abs(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 - 1.0) > 0.01:  # tf2's tolerance
            return f"transform {parent} <- {child} has an unnormalised quaternion {values[3:]}"
        return ""

    # -- lookups -----------------------------------------------------------------------------------
    def lookup_transform(self, target_frame: str, source_frame: str, time: Time | TimeMsg,
                         timeout: Duration = Duration()) -> TransformStamped:
        """target_frame <- source_frame at ``time`` (Time() = latest common), waiting up to ``timeout``."""
        self.can_transform(target_frame, source_frame, time, timeout)
        return self.lookup_transform_core(target_frame, source_frame, time)

    def can_transform(self, target_frame: str, source_frame: str, time: Time | TimeMsg,
                      timeout: Duration = Duration(), return_debug_tuple: bool = False):
        """Whether the lookup would succeed, waiting up to ``timeout`` for data to arrive."""
        result = self._wait_until(lambda: self.can_transform_core(target_frame, source_frame, time), timeout)
        return result if return_debug_tuple else result[0]

    def lookup_transform_core(self, target_frame: str, source_frame: str,
                              time: Time | TimeMsg) -> TransformStamped:
        """The lookup without waiting; raises a TransformException subclass."""
        try:
            with self._new_data:
                matrix, stamp = self._tree.lookup(target_frame, source_frame, _nanoseconds(time))
        except TransformError as error:
            raise _TF2_ERRORS.get(type(error), TransformException)(str(error)) from None
        return self._stamped(matrix, target_frame, source_frame, stamp)

    def can_transform_core(self, target_frame: str, source_frame: str, time: Time | TimeMsg) -> tuple[bool, str]:
        """(possible, error message) without waiting."""
        try:
            self.lookup_transform_core(target_frame, source_frame, time)
        except TransformException as error:
            return False, str(error)
        return True, ""

    # -- internals ---------------------------------------------------------------------------------
    def _wait_until(self, check: Callable[[], tuple[bool, str]], timeout: Duration) -> tuple[bool, str]:
        deadline = _time.monotonic() + _timeout_seconds(timeout)
        with self._new_data:
            while True:
                result = check()
                remaining = deadline - _time.monotonic()
                if result[0] or remaining <= 0:
                    return result
                self._new_data.wait(remaining)

    @staticmethod
    def _stamped(matrix: np.ndarray, target: str, source: str, stamp: int) -> TransformStamped:
        msg = TransformStamped()
        msg.header.frame_id, msg.child_frame_id = target, source
        msg.header.stamp = _stamp_msg(stamp)
        msg.transform = matrix_to_transform(matrix)
        return msg


# -- DDS side --------------------------------------------------------------------------------------
def _dynamic_listener_qos() -> QoSProfile:
    return QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def _static_listener_qos() -> QoSProfile:
    return QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _static_broadcaster_qos() -> QoSProfile:
    return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class TransformListener:
    """Feeds a Buffer from ``/tf`` and ``/tf_static`` (tf2_ros.TransformListener).

    The subscriptions are in a ReentrantCallbackGroup, so with a MultiThreadedExecutor they keep running
    while another callback waits in ``lookup_transform(..., timeout)``. With ``spin_thread=True`` they live
    on an internal node spun by a dedicated executor thread (like tf2_ros's C++ listener), so the caller
    needs no executor at all; ``node`` then only provides the context.
    """

    def __init__(self, buffer: Buffer, node: Node | None, *, spin_thread: bool = False,
                 qos: QoSProfile | int | None = None, static_qos: QoSProfile | int | None = None,
                 tf_topic: str = DEFAULT_TF_TOPIC, tf_static_topic: str = DEFAULT_STATIC_TF_TOPIC,
                 static_only: bool = False) -> None:
        self.buffer = buffer
        self.executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None
        self._own_node = spin_thread or node is None
        if self._own_node:
            context = node.context if node is not None else None
            node = Node(f"transform_listener_impl_{id(self):x}", context=context, enable_rosout=False,
                        start_parameter_services=False)
        self.node = node
        self.group = ReentrantCallbackGroup()
        self.tf_sub = None
        if not static_only:
            self.tf_sub = node.create_subscription(TFMessage, tf_topic, self.callback,
                                                   qos if qos is not None else _dynamic_listener_qos(),
                                                   callback_group=self.group)
        self.tf_static_sub = node.create_subscription(
            TFMessage, tf_static_topic, self.static_callback,
            static_qos if static_qos is not None else _static_listener_qos(), callback_group=self.group)
        if spin_thread:
            self._start_thread()

    def _start_thread(self) -> None:
        self.executor = SingleThreadedExecutor(context=self.node.context)
        self.executor.add_node(self.node)
        self._spinning = threading.Event()
        self._spinning.set()

        def spin() -> None:
            # spin_once in a loop (not spin()) so unregister() can stop it before tearing anything down
            try:
                while self._spinning.is_set() and self.node.context.ok():
                    self.executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                pass

        self._thread = threading.Thread(target=spin, name="tf_listener", daemon=True)
        self._thread.start()

    def callback(self, msg: TFMessage) -> None:
        """Store the dynamic transforms of one /tf message."""
        for transform in msg.transforms:
            self.buffer.set_transform(transform, "default_authority")

    def static_callback(self, msg: TFMessage) -> None:
        """Store the static transforms of one /tf_static message."""
        for transform in msg.transforms:
            self.buffer.set_transform_static(transform, "default_authority")

    def unregister(self) -> None:
        """Stop listening (and stop the dedicated thread, if any)."""
        if self.executor is not None:
            self._spinning.clear()
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self.executor.shutdown(timeout_sec=1.0)
            self.executor = None
        for sub in (self.tf_sub, self.tf_static_sub):
            if sub is not None:
                self.node.destroy_subscription(sub)
        self.tf_sub = self.tf_static_sub = None
        if self._own_node:
            self.node.destroy_node()
            self._own_node = False


def _as_list(transform) -> list[TransformStamped]:
    if isinstance(transform, list):
        return transform
    if hasattr(transform, "__iter__"):
        return list(transform)
    return [transform]


class TransformBroadcaster:
    """Publishes dynamic transforms on ``/tf`` (tf2_ros.TransformBroadcaster)."""

    def __init__(self, node: Node, qos: QoSProfile | int = QoSProfile(depth=100),
                 topic: str = DEFAULT_TF_TOPIC) -> None:
        self.pub_tf = node.create_publisher(TFMessage, topic, qos)

    def sendTransform(self, transform: TransformStamped | Iterable[TransformStamped]) -> None:  # noqa: N802
        """Publish one transform or a list of them in one TFMessage."""
        self.pub_tf.publish(TFMessage(transforms=_as_list(transform)))


class StaticTransformBroadcaster:
    """Publishes static transforms on ``/tf_static``, latched (tf2_ros.StaticTransformBroadcaster).

    Keeps every transform it was sent (the latest per child frame) and republishes the whole set each
    time, so a late-joining listener gets all of them from the one latched message.
    """

    def __init__(self, node: Node, qos: QoSProfile | int | None = None,
                 topic: str = DEFAULT_STATIC_TF_TOPIC) -> None:
        self.pub_tf = node.create_publisher(TFMessage, topic, qos if qos is not None else _static_broadcaster_qos())
        self.net_message = TFMessage()
        self._lock = threading.Lock()

    def sendTransform(self, transform: TransformStamped | Iterable[TransformStamped]) -> None:  # noqa: N802
        """Add (or replace, by child frame id) transforms and publish the full set."""
        with self._lock:
            by_child = {t.child_frame_id: i for i, t in enumerate(self.net_message.transforms)}
            for t in _as_list(transform):
                if t.child_frame_id in by_child:
                    self.net_message.transforms[by_child[t.child_frame_id]] = t
                else:
                    by_child[t.child_frame_id] = len(self.net_message.transforms)
                    self.net_message.transforms.append(t)
            self.pub_tf.publish(self.net_message)
