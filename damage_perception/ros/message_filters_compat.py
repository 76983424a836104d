"""Stand-in for ROS 2 message_filters (Python): Subscriber, TimeSynchronizer, ApproximateTimeSynchronizer.

Used only where message_filters is not installed (import through ``damage_perception.ros.sync``). The API
and the matching rule are those of message_filters' Python implementation:

- ``Subscriber(node, msg_type, topic, qos_profile=10, **kwargs)`` creates the subscription (extra kwargs
  such as ``callback_group`` go to ``create_subscription``) and forwards each message to the callbacks
  given to ``registerCallback(cb, *args)``.
- ``ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=False)`` keeps, per input, a dict
  stamp -> message bounded to ``queue_size`` (oldest stamps dropped). On each new message it looks, in the
  other queues, for stamps within ``slop`` of the new one, tries the combinations (nearest first) and emits
  the first whose spread (max - min stamp) is below ``slop``, removing the emitted messages.

Differences: stamps are kept as integer nanoseconds; the queues are guarded by a lock but the user callback
runs after the lock is released (message_filters calls it under the lock), so a slow callback does not
block the other inputs; ``dropped`` counts the messages evicted from the queues without being emitted.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import rclpy.logging
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

__all__ = ["SimpleFilter", "Subscriber", "TimeSynchronizer", "ApproximateTimeSynchronizer"]


class SimpleFilter:
    """A source of messages that calls registered callbacks (message_filters.SimpleFilter)."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable, tuple]] = {}

    def registerCallback(self, cb: Callable, *args: Any) -> int:  # noqa: N802 - upstream name
        """Call ``cb(*msgs, *args)`` for every output; returns a connection id."""
        connection = len(self.callbacks)
        self.callbacks[connection] = (cb, args)
        return connection

    def signalMessage(self, *msgs: Any) -> None:  # noqa: N802 - upstream name
        """Pass messages to every registered callback."""
        for cb, args in list(self.callbacks.values()):
            cb(*(msgs + args))


class Subscriber(SimpleFilter):
    """A subscription whose messages go to the registered callbacks (message_filters.Subscriber)."""

    def __init__(self, node: Node, msg_type: type, topic: str, qos_profile: Any = 10, **kwargs: Any) -> None:
        super().__init__()
        self.node, self.topic, self.msg_type = node, topic, msg_type
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg: Any) -> None:
        """Subscription callback: forward the message."""
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802 - upstream name
        """The topic name as given."""
        return self.topic

    def destroy(self) -> None:
        """Destroy the subscription (the node stays)."""
        self.node.destroy_subscription(self.sub)


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    if hasattr(stamp, "nanoseconds"):
        return stamp.nanoseconds
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class TimeSynchronizer(SimpleFilter):
    """Emits one message per input when all inputs have a message with the same stamp."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        self.queue_size = int(queue_size)
        self.dropped = 0  # messages evicted from a full queue (never emitted)
        self.lock = threading.Lock()
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[SimpleFilter]) -> None:  # noqa: N802 - upstream name
        """Take the outputs of ``fs`` as this filter's inputs."""
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, queue, index)
                                  for index, (f, queue) in enumerate(zip(fs, self.queues))]

    def _store(self, queue: dict[int, Any], stamp: int, msg: Any) -> None:
        queue[stamp] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]
            self.dropped += 1

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback."""
        ready = []
        with self.lock:
            self._store(my_queue, _stamp_ns(msg), msg)
            common = set.intersection(*(set(q) for q in self.queues))
            for stamp in sorted(common):
                ready.append([q.pop(stamp) for q in self.queues])
        for msgs in ready:
            self.signalMessage(*msgs)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits one message per input when their stamps spread less than ``slop`` seconds."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int, slop: float,
                 allow_headerless: bool = False) -> None:
        super().__init__(fs, queue_size)
        self.slop = float(slop)
        self._slop_ns = int(round(self.slop * 1e9))
        self.allow_headerless = allow_headerless
        self._clock = Clock(clock_type=ClockType.ROS_TIME)

    def _stamp(self, msg: Any) -> int | None:
        if hasattr(msg, "header") and hasattr(msg.header, "stamp"):
            return _stamp_ns(msg)
        if self.allow_headerless:
            return self._clock.now().nanoseconds
        rclpy.logging.get_logger("message_filters_approx").info(
            "can not use message filters for messages without timestamp information when 'allow_headerless' "
            "is disabled", once=True)
        return None

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback: store, then emit the first matching combination, if any."""
        stamp = self._stamp(msg)
        if stamp is None:
            return
        with self.lock:
            self._store(my_queue, stamp, msg)
            msgs = self._match(stamp, my_queue_index)
        if msgs is not None:
            self.signalMessage(*msgs)

    def _match(self, stamp: int, my_index: int | None) -> list[Any] | None:
        others = [i for i in range(len(self.queues)) if i != my_index]
        candidates = []
        for i in others:
            near = sorted((s for s in self.queues[i] if abs(s - stamp) <= self._slop_ns),
                          key=lambda s: abs(s - stamp))
            if not near:
                return None
            candidates.append(near)
        for combination in itertools.product(*candidates):
            stamps = list(combination)
            if my_index is not None:
                stamps.insert(my_index, stamp)
            if max(stamps) - min(stamps) < self._slop_ns and all(s in q for q, s in zip(self.queues, stamps)):
                return [q.pop(s) for q, s in zip(self.queues, stamps)]
        return None
