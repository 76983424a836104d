"""The node over DDS with a camera but a broken cell: each goal ends in ERROR naming the problem."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.ros.conversions import array_to_image, intrinsics_to_camera_info
from test.nodes.conftest import running

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real_rgbd" / "cheezit"
NODE = ("perception_node", "damage_perception.yaml", {"view_timeout": 2.0, "goal_deadline": 6.0,
                                                      "tf_timeout": 0.2})


class RealCamera:
    """Publishes a real RealSense frame at 10 Hz, like a driver with no robot around it."""

    def __init__(self, depth_encoding: str = "16UC1"):
        self.node = rclpy.create_node("fake_driver")
        depth_mm = cv2.imread(str(REAL / "depth_mm.png"), cv2.IMREAD_UNCHANGED)
        rgb = cv2.cvtColor(cv2.imread(str(REAL / "color.png")), cv2.COLOR_BGR2RGB)
        camera = json.loads((REAL / "camera.json").read_text())
        intrinsics = CameraIntrinsics.from_matrix(np.array(camera["K"]), camera["width"], camera["height"])
        depth = depth_mm if depth_encoding == "16UC1" else rgb
        self.msgs = [array_to_image(rgb, "rgb8"), array_to_image(depth, depth_encoding),
                     intrinsics_to_camera_info(intrinsics)]
        self.pubs = [self.node.create_publisher(Image, "color/image_raw", qos_profile_sensor_data),
                     self.node.create_publisher(Image, "depth/image_raw", qos_profile_sensor_data),
                     self.node.create_publisher(CameraInfo, "color/camera_info", qos_profile_sensor_data)]
        self.node.create_timer(0.1, self.publish)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.running = True
        self.thread = threading.Thread(target=self.spin, daemon=True)
        self.thread.start()

    def publish(self):
        stamp = self.node.get_clock().now().to_msg()
        for pub, msg in zip(self.pubs, self.msgs):
            msg.header.stamp, msg.header.frame_id = stamp, "camera_color_optical_frame"
            pub.publish(msg)

    def spin(self):
        while self.running:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.running = False
        self.thread.join()
        self.node.destroy_node()


def inspect_once(timeout: float = 15.0) -> tuple[DamageVerdict, float]:
    client = rclpy.create_node("bad_input_client")
    action = ActionClient(client, InspectItem, "inspect")
    assert action.wait_for_server(timeout_sec=30.0)
    started = time.monotonic()
    handle = action.send_goal_async(InspectItem.Goal(item_id="x", sku="y"))
    rclpy.spin_until_future_complete(client, handle, timeout_sec=timeout)
    result = handle.result().get_result_async()
    rclpy.spin_until_future_complete(client, result, timeout_sec=timeout)
    elapsed = time.monotonic() - started
    client.destroy_node()
    return result.result().result.verdict, elapsed


@pytest.mark.parametrize("depth_encoding, expected", [
    ("16UC1", "does not exist"),          # frames arrive, but nobody publishes the gripper's TF
    ("rgb8", "16UC1"),                    # a color image on the depth topic: rejected with what is accepted
])
def test_broken_cell_gets_error_naming_the_problem(tmp_path, ros_context, depth_encoding, expected):
    camera = RealCamera(depth_encoding)
    try:
        with running(tmp_path, NODE):
            verdict, elapsed = inspect_once()
    finally:
        camera.close()
    assert verdict.decision == DamageVerdict.ERROR
    assert expected in verdict.reason, verdict.reason
    assert elapsed < NODE[2]["goal_deadline"] + 1.0
