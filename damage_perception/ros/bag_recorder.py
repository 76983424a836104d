"""A small rosbag2 recorder (MCAP, written by ``rosbags``) for the cell's topics: ``damage-perception record``.

It subscribes with ``raw=True`` (the CDR bytes go to the bag as they came, never deserialised) to each
topic once the graph shows it with its type, so topics may appear after the recorder started. QoS: the
camera topics with sensor-data QoS (hears best-effort and reliable publishers), ``/tf_static`` reliable and
transient-local (gets the transforms sent before recording started), everything else reliable.
The bag is self-describing: every connection carries its message definition, ours
(``damage_perception_interfaces``) registered from the package's .msg files.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.rosbag2 import StoragePlugin, Writer

from damage_perception.data.loaders.ros_messages import perception_typestore

SENSOR_TOPICS = ("color/image_raw", "depth/image_raw", "color/camera_info")


def message_class(type_name: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def qos_for(topic: str) -> QoSProfile:
    """The subscription QoS of a topic (see the module docstring)."""
    bare = topic.strip("/")
    if bare == "tf_static":
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if any(bare == s or bare.endswith("/" + s) for s in SENSOR_TOPICS):
        return qos_profile_sensor_data
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class BagRecorder(Node):
    """Records ``topics`` into the MCAP bag ``out`` (must not exist) until ``close()``."""

    def __init__(self, out: Path, topics: Sequence[str], **kwargs) -> None:
        super().__init__("damage_perception_recorder", **kwargs)
        self.typestore = perception_typestore()
        self.writer = Writer(Path(out), version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.wanted = {self.resolve_topic_name(topic): topic for topic in topics}
        self.counts: dict[str, int] = {}
        self._connections: dict[str, object] = {}
        self._subscriptions_by_topic: dict[str, object] = {}
        self._skipped: set[str] = set()
        self._closed = False
        self.create_timer(0.2, self._discover)
        self._discover()

    @property
    def waiting_for(self) -> list[str]:
        """Wanted topics not seen in the graph yet."""
        return sorted(set(self.wanted) - set(self._connections) - self._skipped)

    @property
    def unmatched(self) -> list[str]:
        """Subscribed topics whose publishers have not matched this recorder yet: their messages until then
        are lost (DDS matches a new subscription some time after it is created)."""
        return sorted(name for name, sub in self._subscriptions_by_topic.items() if sub.get_publisher_count() == 0)

    def _discover(self) -> None:
        """Subscribe to every wanted topic that has appeared with a type."""
        for name, types in self.get_topic_names_and_types():
            if name in self.wanted and name not in self._connections and name not in self._skipped and types:
                self._subscribe(name, types[0])

    def _subscribe(self, name: str, type_name: str) -> None:
        if type_name not in self.typestore.fielddefs:
            self.get_logger().error(f"not recording {name}: no message definition for {type_name}")
            self._skipped.add(name)
            return
        connection = self.writer.add_connection(name, type_name, typestore=self.typestore)
        self._connections[name] = connection
        self.counts[name] = 0
        self._subscriptions_by_topic[name] = self.create_subscription(
            message_class(type_name), name, lambda raw, n=name: self._write(n, raw), qos_for(name), raw=True)
        self.get_logger().info(f"recording {name} ({type_name})")

    def _write(self, name: str, raw: bytes) -> None:
        if self._closed:
            return
        self.writer.write(self._connections[name], self.get_clock().now().nanoseconds, raw)
        self.counts[name] += 1

    def close(self) -> None:
        """Finish the bag (metadata, MCAP summary); later messages are dropped."""
        if not self._closed:
            self._closed = True
            self.writer.close()
