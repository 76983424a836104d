"""A simulated pick cell: an RGB-D camera and an arm presenting items, standing in for the real drivers.

Published (like a RealSense driver and a robot_state_publisher would): ``color/image_raw`` (rgb8),
``depth/image_raw`` (16UC1 mm registered to color, or 32FC1 m), ``color/camera_info``, ``/tf``
(inspection_pose -> gripper_link -> fingers, stamped with each frame) and ``/tf_static`` (world ->
camera_link -> camera_color_optical_frame, world -> inspection_pose).
Subscribed: ``arm/wrist_goal`` (PoseStamped in inspection_pose: the wrist turns there at a limited speed).
Service: ``cell/present_item`` (PresentItem): puts the next catalogue item (or nothing) in the gripper.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import rclpy
from damage_perception_interfaces.srv import PresentItem
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import transform_from_xyz_rpy
from damage_perception.ros.conversions import (
    array_to_image,
    intrinsics_to_camera_info,
    matrix_to_transform_stamped,
    pose_to_matrix,
)
from damage_perception.ros.params import declare_config
from damage_perception.ros.tf import StaticTransformBroadcaster, TransformBroadcaster
from damage_perception.sim.catalogue import ALL_KINDS, make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

OPTICAL_FROM_LINK_RPY = (-math.pi / 2, 0.0, -math.pi / 2)  # REP 103 optical frame


class SimCellNode(Node):
    """Renders the held item at the current wrist angle and publishes camera frames and TF."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_cell", **kwargs)
        params = {"rate_hz": 10.0, "seed": 0, "num_items": 20, "damage_rate": 0.4, "kinds": list(ALL_KINDS),
                  "wrist_speed": 3.0, "depth_encoding": "16UC1", "reliability": "best_effort",
                  "world_frame": "world", "camera_link_frame": "camera_link",
                  "camera_frame": "camera_color_optical_frame", "presentation_frame": "inspection_pose",
                  "gripper_frame": "gripper_link"}
        for name, default in params.items():
            self.declare_parameter(name, default)
        self.gripper = declare_config(self, "gripper", GripperGeometry())
        self.scene = SceneConfig()
        self.renderer = CellRenderer(self.scene, self.gripper)
        self.catalogue = make_catalogue(self._param("num_items"), self._param("damage_rate"), self._param("seed"),
                                        kinds=tuple(self._param("kinds")))
        self.rng = np.random.default_rng(self._param("seed"))
        self._lock = threading.Lock()
        self._next_index = 0
        self._angle = 0.0
        self._target_angle = 0.0

        qos = qos_profile_sensor_data if self._param("reliability") == "best_effort" else \
            QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.color_pub = self.create_publisher(Image, "color/image_raw", qos)
        self.depth_pub = self.create_publisher(Image, "depth/image_raw", qos)
        self.info_pub = self.create_publisher(CameraInfo, "color/camera_info", qos)
        self.tf_broadcaster = TransformBroadcaster(self)
        self.static_broadcaster = StaticTransformBroadcaster(self)
        self.static_broadcaster.sendTransform(self._static_transforms())
        # Commands get their own callback group: a slow render must never starve the arm's goals.
        commands = MutuallyExclusiveCallbackGroup()
        self.create_subscription(PoseStamped, "arm/wrist_goal", self._on_wrist_goal, 10, callback_group=commands)
        self.create_service(PresentItem, "cell/present_item", self._on_present_item, callback_group=commands)
        self._period = 1.0 / self._param("rate_hz")
        self.create_timer(self._period, self._tick)
        self.get_logger().info(f"sim cell ready: {len(self.catalogue)} items ({', '.join(self._param('kinds'))}), "
                               f"{self._param('rate_hz'):.0f} Hz, "
                               f"depth {self._param('depth_encoding')}, {self._param('reliability')} QoS")

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _static_transforms(self):
        stamp = self.get_clock().now().to_msg()
        optical_from_link = transform_from_xyz_rpy((0, 0, 0), OPTICAL_FROM_LINK_RPY)
        world, link = self._param("world_frame"), self._param("camera_link_frame")
        return [
            matrix_to_transform_stamped(self.scene.T_world_camera_link, world, link, stamp),
            matrix_to_transform_stamped(optical_from_link, link, self._param("camera_frame"), stamp),
            matrix_to_transform_stamped(self.scene.T_world_inspection, world,
                                        self._param("presentation_frame"), stamp),
        ]

    def _on_wrist_goal(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self._param("presentation_frame")):
            self.get_logger().warning(f"ignoring wrist goal in frame '{msg.header.frame_id}', "
                                      f"expected '{self._param('presentation_frame')}'")
            return
        rotation = pose_to_matrix(msg.pose)[:3, :3]
        with self._lock:
            self._target_angle = math.atan2(rotation[1, 0], rotation[0, 0])

    def _on_present_item(self, request: PresentItem.Request, response: PresentItem.Response):
        with self._lock:
            self._angle = self._target_angle = 0.0
            if request.empty_gripper:
                self.renderer.set_item(None)
                response.success, response.message = True, "gripper is empty"
                response.item_id, response.ground_truth = "empty", "empty"
                return response
            index = request.index if request.index >= 0 else self._next_index
            if index >= len(self.catalogue):
                response.success, response.message = False, f"catalogue has {len(self.catalogue)} items"
                return response
            self._next_index = index + 1
            spec = self.catalogue[index]
            self.renderer.set_item(build_item(spec, self.gripper))
        response.success, response.message = True, f"presenting {spec.item_id}"
        response.item_id, response.sku = spec.item_id, spec.sku
        response.ground_truth, response.severity = spec.damage, float(spec.severity)
        return response

    def _tick(self) -> None:
        with self._lock:
            stamp = self.get_clock().now().to_msg()   # when the scene is captured, before rendering it
            step = self._param("wrist_speed") * self._period
            delta = math.remainder(self._target_angle - self._angle, 2 * math.pi)
            self._angle += float(np.clip(delta, -step, step))
            view = self.renderer.render(self._angle, self.rng)
        self._publish_tf(view, stamp)
        frame = self._param("camera_frame")
        color = array_to_image(view.color, "rgb8")
        if self._param("depth_encoding") == "32FC1":
            depth = array_to_image(view.depth_m.astype(np.float32), "32FC1")
        else:
            depth = array_to_image(np.round(view.depth_m * 1000.0).astype(np.uint16), "16UC1")
        info = intrinsics_to_camera_info(view.intrinsics)
        for msg in (color, depth, info):
            msg.header.stamp, msg.header.frame_id = stamp, frame
        self.color_pub.publish(color)
        self.depth_pub.publish(depth)
        self.info_pub.publish(info)

    def _publish_tf(self, view, stamp) -> None:
        gripper = self._param("gripper_frame")
        inspection_from_gripper = np.linalg.inv(self.scene.T_world_inspection) @ view.T_world_gripper
        transforms = [matrix_to_transform_stamped(inspection_from_gripper, self._param("presentation_frame"),
                                                  gripper, stamp)]
        for name, pose in zip(self.gripper.finger_frames, view.finger_transforms):
            transforms.append(matrix_to_transform_stamped(pose, gripper, name, stamp))
        self.tf_broadcaster.sendTransform(transforms)


def main(args=None) -> None:
    """Run the simulated cell."""
    try:
        with rclpy.init(args=args):
            node = SimCellNode()
            executor = MultiThreadedExecutor(num_threads=2)
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
