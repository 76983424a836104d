"""``RosbagDataset``: episodes from a rosbag2 recording (MCAP or sqlite3 storage) of an inspection cell.

What it reads (topic names are matched without their leading '/', or as the unique topic ending in
'/<name>', so ``color/image_raw`` also finds ``/camera/color/image_raw``):

- color (``sensor_msgs/Image`` rgb8/bgr8/rgba8/bgra8/mono8), depth (16UC1 mm or 32FC1 m, registered to
  color) and ``sensor_msgs/CameraInfo``. Each color image is paired with the depth image nearest in stamp
  within ``slop`` seconds (frames without one are skipped) and with the nearest camera_info.
- ``/tf`` and ``/tf_static``: camera optical <- ``gripper_frame``, ``presentation_frame`` <- gripper (gives
  the wrist angle, the rotation about its z) and gripper <- each finger, at the color image's stamp
  (``TransformHistory``: interpolated; None when not available).
- ``/inspection/episode`` (``std_msgs/String``, JSON ``{episode_id, sku, label, severity, metadata?}``):
  each marker starts an episode holding the frames stamped at or after its bag time and before the next
  marker; frames before the first marker are left out. Without markers the whole bag is one episode with
  label ``"unknown"``.
- optional ground truth (written by ``export-bag``): ``inspection/item_mask`` and ``inspection/damage_mask``
  (mono8, stamped like the color image; item > 0, damage = index into ``DAMAGE_LABELS``).

The camera frame is the depth image's ``header.frame_id`` (else ``camera_frame``), as in the node.
Only the index (stamps, camera_info, TF, markers) is read up front; ``dataset[i]`` reads episode i's images.
Depth is float32 metres with 0 = no reading; the wrist angle is in (-pi, pi].
"""
from __future__ import annotations

import bisect
import json
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader
from rosbags.typesys.store import Typestore

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.gripper import GripperGeometry
from damage_perception.data.episode import Episode, View
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.loaders.tf_buffer import TransformHistory

MARKER_TOPIC = "/inspection/episode"
ITEM_MASK_TOPIC, DAMAGE_MASK_TOPIC = "inspection/item_mask", "inspection/damage_mask"
IMAGE_KINDS = ("color", "depth", "item_mask", "damage_mask")
DEFAULT_FINGER_FRAMES = GripperGeometry().finger_frames


@dataclass(frozen=True)
class _ImageRef:
    """Where an image message is in the bag, and its header."""

    log_ns: int
    stamp_ns: int
    frame_id: str


@dataclass(frozen=True)
class _Frame:
    images: dict[str, _ImageRef]  # color, depth and the masks found
    intrinsics: CameraIntrinsics

    @property
    def stamp_ns(self) -> int:
        return self.images["color"].stamp_ns


@dataclass(frozen=True)
class _Marker:
    log_ns: int
    info: dict


def find_topic(topics: Sequence[str], name: str) -> str | None:
    """The bag topic called ``name`` (leading '/' ignored), else the unique one ending in '/name'."""
    bare = name.strip("/")
    exact = [t for t in topics if t.strip("/") == bare]
    if exact:
        return exact[0]
    suffix = [t for t in topics if t.endswith("/" + bare)]
    return suffix[0] if len(suffix) == 1 else None


def cdr_header(raw: bytes | memoryview) -> tuple[int, str] | None:
    """(stamp ns, frame_id) of a little-endian CDR message that starts with a std_msgs/Header, else None."""
    raw = bytes(raw[:4096])
    if len(raw) < 16 or raw[1] != 1:  # encapsulation: 0x00 0x01 = CDR little-endian
        return None
    sec, nanosec, length = struct.unpack_from("<iII", raw, 4)
    if length == 0 or 16 + length > len(raw):
        return None
    return sec * 1_000_000_000 + nanosec, raw[16:16 + length - 1].decode("utf-8", "replace")


def nearest_index(times: Sequence[int], ns: int) -> int | None:
    """Index of the value of sorted ``times`` nearest to ``ns`` (None when empty)."""
    if not times:
        return None
    i = bisect.bisect_left(times, ns)
    candidates = [j for j in (i - 1, i) if 0 <= j < len(times)]
    return min(candidates, key=lambda j: abs(times[j] - ns))


class RosbagDataset:
    """Episodes of a rosbag2 folder; implements ``EpisodeDataset``."""

    def __init__(self, path: Path | str, color_topic: str = "color/image_raw",
                 depth_topic: str = "depth/image_raw", camera_info_topic: str = "color/camera_info",
                 gripper_frame: str = "gripper_link", presentation_frame: str = "inspection_pose",
                 finger_frames: Sequence[str] = DEFAULT_FINGER_FRAMES,
                 camera_frame: str = "camera_color_optical_frame", marker_topic: str = MARKER_TOPIC,
                 slop: float = 0.02, typestore: Typestore | None = None) -> None:
        self.path = Path(path)
        self.gripper_frame, self.presentation_frame = gripper_frame, presentation_frame
        self.finger_frames, self.camera_frame = tuple(finger_frames), camera_frame
        self.slop_ns = int(slop * 1e9)
        self.typestore = typestore or rm.default_typestore()
        self.tf = TransformHistory(tolerance_ns=max(self.slop_ns, 1))
        with Reader(self.path) as reader:
            topics = sorted(reader.topics)
            wanted = {"color": color_topic, "depth": depth_topic, "info": camera_info_topic}
            self.topics = {key: find_topic(topics, name) for key, name in wanted.items()}
            missing = [wanted[k] for k, t in self.topics.items() if t is None]
            if missing:
                raise ValueError(f"{self.path}: no topic {', '.join(missing)} in the bag; it has {', '.join(topics)}")
            for key, name in (("marker", marker_topic), ("item_mask", ITEM_MASK_TOPIC),
                              ("damage_mask", DAMAGE_MASK_TOPIC)):
                self.topics[key] = find_topic(topics, name)
            frames, markers = self._index(reader, topics)
        self._episodes = self._group(frames, markers)

    # -- index ----------------------------------------------------------------------------------------
    def _deserialize(self, raw: bytes | memoryview, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(raw, msgtype)

    def _image_ref(self, log_ns: int, raw: bytes | memoryview, msgtype: str) -> _ImageRef:
        header = cdr_header(raw)
        if header is None:
            msg = self._deserialize(raw, msgtype)
            header = (rm.stamp_to_ns(msg.header.stamp), msg.header.frame_id)
        return _ImageRef(log_ns, header[0], header[1])

    def _index(self, reader: Reader, topics: list[str]) -> tuple[list[_Frame], list[_Marker]]:
        """One pass over the bag: image stamps, camera_info, TF and markers."""
        tf_topics = {t for t in topics if t.strip("/") in ("tf", "tf_static")}
        by_topic = {t: k for k, t in self.topics.items() if t is not None}
        connections = [c for c in reader.connections if c.topic in by_topic or c.topic in tf_topics]
        images: dict[str, list[_ImageRef]] = {kind: [] for kind in IMAGE_KINDS}
        infos: list[tuple[int, CameraIntrinsics]] = []
        markers: list[_Marker] = []
        for connection, log_ns, raw in reader.messages(connections=connections):
            kind = by_topic.get(connection.topic)
            if kind in images:
                images[kind].append(self._image_ref(log_ns, raw, connection.msgtype))
                continue
            msg = self._deserialize(raw, connection.msgtype)
            if kind == "info":
                infos.append((rm.stamp_to_ns(msg.header.stamp), rm.camera_info_to_intrinsics(msg)))
            elif kind == "marker":
                markers.append(_Marker(log_ns, json.loads(msg.data)))
            else:
                static = connection.topic.strip("/") == "tf_static"
                for t in msg.transforms:
                    self.tf.add(t.header.frame_id, t.child_frame_id, rm.stamp_to_ns(t.header.stamp),
                                rm.transform_to_matrix(t.transform), static=static)
        return self._synchronise(images, sorted(infos, key=lambda x: x[0])), sorted(markers, key=lambda m: m.log_ns)

    def _synchronise(self, images: dict[str, list[_ImageRef]],
                     infos: list[tuple[int, CameraIntrinsics]]) -> list[_Frame]:
        """Pair each color image with the nearest depth and masks (within slop) and camera_info."""
        others = {kind: sorted(images[kind], key=lambda r: r.stamp_ns) for kind in IMAGE_KINDS[1:]}
        times = {kind: [r.stamp_ns for r in refs] for kind, refs in others.items()}
        info_times = [t for t, _ in infos]
        frames = []
        for color in sorted(images["color"], key=lambda r: r.stamp_ns):
            matched = {"color": color}
            for kind, refs in others.items():
                j = nearest_index(times[kind], color.stamp_ns)
                if j is not None and abs(times[kind][j] - color.stamp_ns) <= self.slop_ns:
                    matched[kind] = refs[j]
            i = nearest_index(info_times, color.stamp_ns)
            if "depth" in matched and i is not None:
                frames.append(_Frame(matched, infos[i][1]))
        return frames

    def _group(self, frames: list[_Frame], markers: list[_Marker]) -> list[tuple[dict, list[_Frame]]]:
        """Split frames into episodes at the markers (or one episode without markers)."""
        if not markers:
            return [({"episode_id": self.path.name, "sku": "", "label": "unknown"}, frames)] if frames else []
        groups: list[list[_Frame]] = [[] for _ in markers]
        marker_times = [m.log_ns for m in markers]
        for frame in frames:
            index = bisect.bisect_right(marker_times, frame.stamp_ns) - 1
            if index >= 0:
                groups[index].append(frame)
        return [(m.info, g) for m, g in zip(markers, groups)]

    # -- episodes -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._episodes)

    def __getitem__(self, index: int) -> Episode:
        if not -len(self) <= index < len(self):
            raise IndexError(f"episode {index} of {len(self)}")
        info, frames = self._episodes[index]
        messages = self._read_images(frames)
        views = [self._view(frame, messages) for frame in frames]
        known = ("episode_id", "sku", "label", "severity", "metadata")
        metadata = {"source": "rosbag2", "bag": str(self.path), **info.get("metadata", {}),
                    **{k: v for k, v in info.items() if k not in known}}
        return Episode(episode_id=str(info.get("episode_id", f"{self.path.name}_{index}")),
                       sku=str(info.get("sku", "")), label=str(info.get("label", "unknown")), views=views,
                       severity=float(info.get("severity", 0.0)), metadata=metadata)

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def _read_images(self, frames: list[_Frame]) -> dict[tuple[str, int], Any]:
        """The color and depth messages of ``frames``, keyed by (kind, bag time)."""
        if not frames:
            return {}
        wanted = {(kind, ref.log_ns) for f in frames for kind, ref in f.images.items()}
        start = min(t for _, t in wanted)
        stop = max(t for _, t in wanted) + 1
        kinds = {self.topics[kind]: kind for kind in IMAGE_KINDS if self.topics[kind] is not None}
        messages = {}
        with Reader(self.path) as reader:
            connections = [c for c in reader.connections if c.topic in kinds]
            for connection, log_ns, raw in reader.messages(connections=connections, start=start, stop=stop):
                key = (kinds[connection.topic], log_ns)
                if key in wanted and key not in messages:
                    messages[key] = self._deserialize(raw, connection.msgtype)
        return messages

    def _view(self, frame: _Frame, messages: dict[tuple[str, int], Any]) -> View:
        msgs = {kind: messages[(kind, ref.log_ns)] for kind, ref in frame.images.items()}
        color, depth = rm.color_to_rgb(msgs["color"]), rm.depth_to_meters(msgs["depth"])
        masks = {kind: rm.image_to_array(msgs[kind]) if kind in msgs else None for kind in IMAGE_KINDS[2:]}
        if color.shape[:2] != depth.shape or depth.shape != (frame.intrinsics.height, frame.intrinsics.width):
            raise ValueError(f"{self.path}: at stamp {frame.stamp_ns} ns color is {color.shape[:2]}, depth "
                             f"{depth.shape}, camera_info {frame.intrinsics.height}x{frame.intrinsics.width}"
                             " (H x W); depth must be registered to color")
        ns = frame.stamp_ns
        camera = frame.images["depth"].frame_id or self.camera_frame
        wrist = self.tf.lookup(self.presentation_frame, self.gripper_frame, ns)
        fingers = [self.tf.lookup(self.gripper_frame, f, ns) for f in self.finger_frames]
        return View(color=color, depth_m=depth, intrinsics=frame.intrinsics, stamp=ns * 1e-9,
                    wrist_angle=None if wrist is None else math.atan2(wrist[1, 0], wrist[0, 0]),
                    camera_from_gripper=self.tf.lookup(camera, self.gripper_frame, ns),
                    finger_poses=fingers if fingers and all(f is not None for f in fingers) else None,
                    item_mask=None if masks["item_mask"] is None else masks["item_mask"] > 0,
                    damage_mask=masks["damage_mask"])
