"""A replay camera for soak and fault tests: pre-rendered frames re-published with fresh stamps, plus the cell's TF.

It renders one simulated carton at each wrist angle it may be asked for (once, at start-up), optionally
upscaled and cropped to a larger image (default 1280x720), and publishes ``color/image_raw`` (rgb8),
``depth/image_raw`` (16UC1), ``color/camera_info`` at ``rate_hz`` with fresh stamps, ``/tf`` (inspection_pose
-> gripper_link -> fingers, stamped like the frame) and ``/tf_static``. The wrist jumps to each
``arm/wrist_goal`` at once, so every frame after a request shows the requested angle: the node's per-view
latency is then its own (frame wait + TF + processing), not the arm's.

``ReplayCamera`` is also used in-process by the bad-input tests, which set ``tweak`` to corrupt each
published frame and ``tf_mode`` to withhold or age the TF.
"""
from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Callable

import cv2
import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import transform_from_xyz_rpy
from damage_perception.ros.conversions import (
    array_to_image,
    intrinsics_to_camera_info,
    matrix_to_transform_stamped,
    pose_to_matrix,
)
from damage_perception.ros.tf import StaticTransformBroadcaster, TransformBroadcaster
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

OPTICAL_FROM_LINK_RPY = (-math.pi / 2, 0.0, -math.pi / 2)
CAMERA_FRAME = "camera_color_optical_frame"
Tweak = Callable[[Image, Image, CameraInfo], tuple[Image, Image, CameraInfo]]


def resize_view(color: np.ndarray, depth_mm: np.ndarray, intrinsics: CameraIntrinsics, width: int,
                height: int) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    """Scale a view to ``width`` (nearest-neighbour depth), then keep its top ``height`` rows (padded if short).

    The simulated item sits in the upper half of the image, so cropping the bottom keeps it whole."""
    factor = width / intrinsics.width
    scaled = intrinsics.scaled(factor)
    size = (scaled.width, scaled.height)
    color = cv2.resize(color, size, interpolation=cv2.INTER_LINEAR)
    depth_mm = cv2.resize(depth_mm, size, interpolation=cv2.INTER_NEAREST)
    color, depth_mm = color[:height], depth_mm[:height]
    if color.shape[0] < height:
        pad = ((0, height - color.shape[0]), (0, 0))
        color, depth_mm = np.pad(color, pad + ((0, 0),)), np.pad(depth_mm, pad)
    intrinsics = CameraIntrinsics(width, height, scaled.fx, scaled.fy, scaled.cx, scaled.cy)
    return np.ascontiguousarray(color), np.ascontiguousarray(depth_mm), intrinsics


class ReplayCamera:
    """Publishes pre-rendered frames of one item (or an empty gripper) with fresh stamps, and TF."""

    def __init__(self, node: Node, *, width: int = 640, height: int = 480, rate_hz: float = 10.0,
                 num_views: int = 6, empty: bool = False, seed: int = 1) -> None:
        self.node = node
        self.scene, self.gripper = SceneConfig(), GripperGeometry()
        self.angles = [2 * math.pi * i / num_views for i in range(num_views)]
        self.frames, self.grippers, self.fingers = self._render(width, height, empty, seed)
        self.angle = 0.0
        self.tweak: Tweak | None = None     # corrupts each frame (tests)
        self.tf_mode = "ok"                 # "ok", "none" (no dynamic TF) or "stale" (TF 10 s old)
        self.published = 0
        self.pubs = [node.create_publisher(Image, "color/image_raw", qos_profile_sensor_data),
                     node.create_publisher(Image, "depth/image_raw", qos_profile_sensor_data),
                     node.create_publisher(CameraInfo, "color/camera_info", qos_profile_sensor_data)]
        self.tf = TransformBroadcaster(node)
        self.static_tf = StaticTransformBroadcaster(node)
        self.static_tf.sendTransform(self._static_transforms())
        node.create_subscription(PoseStamped, "arm/wrist_goal", self._on_wrist_goal, 10)
        node.create_timer(1.0 / rate_hz, self.publish)

    def _render(self, width: int, height: int, empty: bool, seed: int):
        renderer = CellRenderer(self.scene, self.gripper)
        renderer.set_item(None if empty else build_item(make_catalogue(1, 0.0, seed)[0], self.gripper))
        rng = np.random.default_rng(seed)
        frames, grippers, fingers = [], [], []
        for angle in self.angles:
            view = renderer.render(angle, rng)
            depth_mm = np.round(np.nan_to_num(view.depth_m) * 1000.0).astype(np.uint16)
            color, depth_mm, intrinsics = resize_view(view.color, depth_mm, view.intrinsics, width, height)
            frames.append((array_to_image(color, "rgb8"), array_to_image(depth_mm, "16UC1"),
                           intrinsics_to_camera_info(intrinsics)))
            grippers.append(np.linalg.inv(self.scene.T_world_inspection) @ view.T_world_gripper)
            fingers.append(view.finger_transforms)
        return frames, grippers, fingers

    def _static_transforms(self):
        stamp = self.node.get_clock().now().to_msg()
        optical_from_link = transform_from_xyz_rpy((0, 0, 0), OPTICAL_FROM_LINK_RPY)
        return [matrix_to_transform_stamped(self.scene.T_world_camera_link, "world", "camera_link", stamp),
                matrix_to_transform_stamped(optical_from_link, "camera_link", CAMERA_FRAME, stamp),
                matrix_to_transform_stamped(self.scene.T_world_inspection, "world", "inspection_pose", stamp)]

    def _on_wrist_goal(self, msg: PoseStamped) -> None:
        rotation = pose_to_matrix(msg.pose)[:3, :3]
        self.angle = math.atan2(rotation[1, 0], rotation[0, 0])

    def _view_index(self) -> int:
        return int(np.argmin([abs(math.remainder(self.angle - a, 2 * math.pi)) for a in self.angles]))

    def publish(self) -> None:
        """One frame: TF first (stamped like the frame), then color, depth and camera_info."""
        index = self._view_index()
        now = self.node.get_clock().now()
        stamp = now.to_msg()
        if self.tf_mode != "none":
            tf_stamp = stamp if self.tf_mode == "ok" else Time(nanoseconds=now.nanoseconds - 10**10).to_msg()
            transforms = [matrix_to_transform_stamped(self.grippers[index], "inspection_pose", "gripper_link",
                                                      tf_stamp)]
            transforms += [matrix_to_transform_stamped(pose, "gripper_link", name, tf_stamp)
                           for name, pose in zip(self.gripper.finger_frames, self.fingers[index])]
            self.tf.sendTransform(transforms)
        msgs = self.frames[index]
        for msg in msgs:
            msg.header.stamp, msg.header.frame_id = stamp, CAMERA_FRAME
        if self.tweak is not None:
            msgs = self.tweak(*msgs)
        for pub, msg in zip(self.pubs, msgs):
            pub.publish(msg)
        self.published += 1


class CameraThread:
    """A ReplayCamera on its own node, spun in a background thread of this process (tests)."""

    def __init__(self, **kwargs) -> None:
        self.node = rclpy.create_node("replay_camera")
        self.camera = ReplayCamera(self.node, **kwargs)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.running:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.executor.remove_node(self.node)
        self.node.destroy_node()


def main(argv=None) -> None:
    """``python -m damage_perception.nodes.camera_stress --width 1280 --height 720 --rate 30``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--num-views", type=int, default=6)
    args, ros_args = parser.parse_known_args(argv)
    try:
        with rclpy.init(args=ros_args):
            node = rclpy.create_node("camera_stress")
            ReplayCamera(node, width=args.width, height=args.height, rate_hz=args.rate, num_views=args.num_views)
            node.get_logger().info(f"replaying {args.width}x{args.height} at {args.rate:g} Hz")
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
