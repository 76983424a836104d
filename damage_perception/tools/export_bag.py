"""`damage-perception export-bag`: write episodes of a dataset as a rosbag2 recording (MCAP or sqlite3).

Recorded cells and synthetic episodes then go through one path (``RosbagDataset``, or ``ros2 bag play``
into the node). Per view, all stamped with the view's bag time (views are re-stamped every ``period``
seconds from ``start``; the episode's own stamps are not kept):

- ``color/image_raw`` (rgb8) and ``depth/image_raw`` (16UC1 mm, or 32FC1 m) in ``camera_color_optical_frame``;
- ``color/camera_info`` (pinhole K, no distortion);
- ``/tf``: when the view has a wrist angle, ``camera_color_optical_frame`` -> ``inspection_pose`` (camera <-
  presentation pose, i.e. camera_from_gripper @ Rz(angle)^-1) and ``inspection_pose`` -> ``gripper_link``
  (Rz(angle), as the simulated cell publishes it), so the node's lookups (camera <- gripper, inspection_pose
  <- gripper) both work; without a wrist angle ``camera_color_optical_frame`` -> ``gripper_link`` directly.
  ``gripper_link`` -> each finger frame (``core.gripper`` names) when the view has finger poses;
- ``/inspection/episode`` (std_msgs/String JSON ``{episode_id, sku, label, severity, metadata}``) at the
  episode's first view, which ``RosbagDataset`` uses to split the bag into episodes.

- ``inspection/item_mask`` (mono8, 255 = item) and ``inspection/damage_mask`` (mono8, index into
  ``DAMAGE_LABELS``) when the view has them: ground truth for evaluation (the node ignores them).
"""
from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import invert, make_transform, rotation_about_z
from damage_perception.data.episode import Episode, View
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.loaders.rosbag import (
    DAMAGE_MASK_TOPIC,
    ITEM_MASK_TOPIC,
    MARKER_TOPIC,
)
from damage_perception.data.synth_format import SynthDataset

COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, TF_TOPIC = "color/image_raw", "depth/image_raw", "color/camera_info", "/tf"
CAMERA_FRAME, PRESENTATION_FRAME, GRIPPER_FRAME = "camera_color_optical_frame", "inspection_pose", "gripper_link"
DEFAULT_START = 1_700_000_000.0  # seconds: bag time of the first view
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the export-bag sub-command."""
    parser.add_argument("dataset", type=Path, help="dataset folder in our format (written by `synth`)")
    parser.add_argument("--out", type=Path, required=True, help="rosbag2 folder to write (must not exist)")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="mcap", help="storage plugin (default mcap)")
    parser.add_argument("--depth-encoding", choices=("16UC1", "32FC1"), default="16UC1")
    parser.add_argument("--period", type=float, default=0.1, help="seconds between views (default 0.1)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    """Read the dataset lazily and export it."""
    dataset = SynthDataset(args.dataset)
    if args.out.exists():
        if not args.overwrite:
            print(f"export-bag: {args.out} exists (use --overwrite)")
            return 1
        shutil.rmtree(args.out)
    counts = export_episodes(dataset, args.out, args.storage, depth_encoding=args.depth_encoding,
                             period=args.period, progress=True, total=len(dataset))
    print(f"export-bag: wrote {counts['episodes']} episodes, {counts['views']} views to {args.out} "
          f"({args.storage})")
    return 0


class _BagWriter:
    """A rosbags Writer with the connections of an inspection recording."""

    def __init__(self, writer: Writer, typestore: Any) -> None:
        self.writer, self.typestore = writer, typestore
        topics = {COLOR_TOPIC: rm.IMAGE, DEPTH_TOPIC: rm.IMAGE, INFO_TOPIC: rm.CAMERA_INFO,
                  TF_TOPIC: rm.TF_MESSAGE, MARKER_TOPIC: rm.STRING, ITEM_MASK_TOPIC: rm.IMAGE,
                  DAMAGE_MASK_TOPIC: rm.IMAGE}
        self.connections = {t: writer.add_connection(t, m, typestore=typestore) for t, m in topics.items()}

    def write(self, topic: str, ns: int, msg: Any) -> None:
        connection = self.connections[topic]
        self.writer.write(connection, ns, self.typestore.serialize_cdr(msg, connection.msgtype))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _marker(episode: Episode, typestore: Any) -> Any:
    info = {"episode_id": episode.episode_id, "sku": episode.sku, "label": episode.label,
            "severity": float(episode.severity), "metadata": episode.metadata}
    return typestore.types[rm.STRING](data=json.dumps(info, default=_jsonable, sort_keys=True))


def view_transforms(view: View, ns: int, typestore: Any) -> list[Any]:
    """The TransformStamped messages of a view (see the module docstring for the tree)."""
    transforms = []
    stamped = lambda m, parent, child: rm.matrix_to_transform_stamped(m, parent, child, ns, typestore)  # noqa: E731
    if view.camera_from_gripper is not None:
        camera_from_gripper = np.asarray(view.camera_from_gripper, float)
        if view.wrist_angle is None:
            transforms.append(stamped(camera_from_gripper, CAMERA_FRAME, GRIPPER_FRAME))
        else:
            wrist = make_transform(rotation=rotation_about_z(view.wrist_angle))
            transforms.append(stamped(camera_from_gripper @ invert(wrist), CAMERA_FRAME, PRESENTATION_FRAME))
            transforms.append(stamped(wrist, PRESENTATION_FRAME, GRIPPER_FRAME))
    names = GripperGeometry().finger_frames
    for i, pose in enumerate(view.finger_poses or []):
        name = names[i] if i < len(names) else f"gripper_finger_{i}"
        transforms.append(stamped(np.asarray(pose, float), GRIPPER_FRAME, name))
    return transforms


def _write_view(bag: _BagWriter, view: View, ns: int, depth_encoding: str) -> None:
    ts = bag.typestore
    head = rm.header(ns, CAMERA_FRAME, ts)
    depth = rm.depth_to_mm(view.depth_m) if depth_encoding == "16UC1" else \
        np.nan_to_num(np.asarray(view.depth_m, np.float32), nan=0.0)
    bag.write(COLOR_TOPIC, ns, rm.array_to_image(np.asarray(view.color, np.uint8), "rgb8", head, ts))
    bag.write(DEPTH_TOPIC, ns, rm.array_to_image(depth, depth_encoding, head, ts))
    bag.write(INFO_TOPIC, ns, rm.intrinsics_to_camera_info(view.intrinsics, head, ts))
    if view.item_mask is not None:
        item = np.where(np.asarray(view.item_mask) > 0, 255, 0).astype(np.uint8)
        bag.write(ITEM_MASK_TOPIC, ns, rm.array_to_image(item, "mono8", head, ts))
    if view.damage_mask is not None:
        bag.write(DAMAGE_MASK_TOPIC, ns, rm.array_to_image(np.asarray(view.damage_mask, np.uint8), "mono8", head, ts))
    transforms = view_transforms(view, ns, ts)
    if transforms:
        bag.write(TF_TOPIC, ns, ts.types[rm.TF_MESSAGE](transforms=transforms))


def export_episodes(episodes: Iterable[Episode], out: Path | str, storage: str = "mcap", *,
                    depth_encoding: str = "16UC1", start: float = DEFAULT_START, period: float = 0.1,
                    progress: bool = False, total: int | None = None) -> dict[str, int]:
    """Write ``episodes`` as a rosbag2 folder ``out`` (must not exist); return episode and view counts."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got '{storage}'")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth encoding must be 16UC1 or 32FC1, got '{depth_encoding}'")
    typestore = rm.default_typestore()
    ns, step = rm.seconds_to_ns(start), rm.seconds_to_ns(period)
    counts = {"episodes": 0, "views": 0}
    with Writer(Path(out), version=9, storage_plugin=STORAGES[storage]) as writer:
        bag = _BagWriter(writer, typestore)
        for episode in tqdm(episodes, total=total, disable=not progress, unit="episode", desc="export-bag"):
            bag.write(MARKER_TOPIC, ns, _marker(episode, typestore))
            for view in episode.views:
                _write_view(bag, view, ns, depth_encoding)
                ns += step
                counts["views"] += 1
            counts["episodes"] += 1
    return counts
