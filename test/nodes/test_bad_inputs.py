"""The node over DDS fed bad input: each goal ends in ERROR naming the problem, and the node keeps serving.

One node process serves every parametrised case of ``test_bad_input_then_good_goal`` in turn (a module-scoped
fixture): a replay camera in this process corrupts its frames (or withholds / ages TF) for one goal, then
publishes good frames for the next goal, which must succeed. Covered elsewhere: an empty gripper
(test_inspection.py), a corrupt or missing model file and a gallery without the SKU (test_models_live.py).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageVerdict
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.nodes.camera_stress import CameraThread
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
            verdict, _ = inspect_once()
    finally:
        camera.close()
    assert verdict.decision == DamageVerdict.ERROR
    assert expected in verdict.reason, verdict.reason


# -- one node, many bad inputs ------------------------------------------------------------------------
ONE_VIEW_NODE = ("perception_node", "damage_perception.yaml",
                 {"num_views": 1, "view_timeout": 1.5, "goal_deadline": 4.0, "tf_timeout": 0.2})


class InspectClient:
    """An InspectItem client on its own node (spun here while waiting)."""

    def __init__(self, name: str = "bad_input_client"):
        self.node = rclpy.create_node(name)
        self.action = ActionClient(self.node, InspectItem, "inspect")
        assert self.action.wait_for_server(timeout_sec=30.0)

    def send(self, item_id: str = "x"):
        future = self.action.send_goal_async(InspectItem.Goal(item_id=item_id, sku="y"))
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=15.0)
        return future.result()

    def result(self, handle, timeout: float = 15.0):
        future = handle.get_result_async()
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        return future.result()

    def inspect(self, item_id: str = "x") -> tuple[DamageVerdict, float]:
        started = time.monotonic()
        handle = self.send(item_id)
        assert handle is not None and handle.accepted
        result = self.result(handle)
        assert result is not None, "no result"
        return result.result.verdict, time.monotonic() - started

    def close(self):
        self.action.destroy()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A replay camera here, the node in its own process, and a client."""
    rclpy.init()
    camera = CameraThread(rate_hz=10.0, num_views=1)
    try:
        with running(tmp_path_factory.mktemp("bad_inputs"), ONE_VIEW_NODE):
            client = InspectClient()
            verdict, _ = client.inspect("warm-up")
            assert verdict.decision != DamageVerdict.ERROR, verdict.reason
            yield camera.camera, client
            client.close()
    finally:
        camera.close()
        rclpy.try_shutdown()


def image(msg: Image, **fields) -> Image:
    """A copy of ``msg`` with some fields replaced (the pixel buffer is shared, never modified)."""
    values = {name: getattr(msg, name) for name in ("header", "height", "width", "encoding", "is_bigendian",
                                                    "step", "data")}
    return Image(**{**values, **fields})


def depth_as(values: np.ndarray, encoding: str):
    def tweak(color, depth, info):
        return color, array_to_image(values, encoding, header=depth.header), info
    return tweak


def crop_columns(fraction_kept: float):
    """Keep the right part of the image with the item mostly outside it (camera_info adjusted)."""
    def tweak(color, depth, info):
        rgb = np.frombuffer(color.data, np.uint8).reshape(color.height, color.width, 3)
        mm = np.frombuffer(depth.data, np.uint16).reshape(depth.height, depth.width)
        item_cols = np.flatnonzero((mm[:300] > 0) & (mm[:300] < 700)).__mod__(depth.width)
        first = int(np.percentile(item_cols, 100 * (1 - fraction_kept)))
        cropped = CameraInfo(header=info.header, width=info.width - first, height=info.height,
                             k=[*info.k[:2], info.k[2] - first, *info.k[3:]])
        return (array_to_image(rgb[:, first:].copy(), "rgb8", color.header),
                array_to_image(mm[:, first:].copy(), "16UC1", depth.header), cropped)
    return tweak


def shift_stamp(msg, seconds: float):
    """``msg`` with a new header stamped ``seconds`` later (the camera's messages share one stamp object)."""
    ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec + int(seconds * 1e9)
    sec, nanosec = divmod(ns, 10**9)
    msg.header = Header(stamp=TimeMsg(sec=sec, nanosec=nanosec), frame_id=msg.header.frame_id)
    return msg


class Backwards:
    """Stamps that go back 0.1 s with every frame."""

    def __init__(self):
        self.count = 0

    def __call__(self, color, depth, info):
        self.count += 1
        return tuple(shift_stamp(m, -0.2 * self.count) for m in (image(color), image(depth), zero_focal(
            None, None, info, fx=info.k[0])[2]))


def zero_focal(color, depth, info, fx: float = 0.0):
    """camera_info with focal length ``fx`` (a new message: the camera's are reused every frame)."""
    return color, depth, CameraInfo(header=info.header, width=info.width, height=info.height,
                                    k=[fx, *info.k[1:4], fx, *info.k[5:]])


def without_frame_id(*msgs):
    """The frame with empty frame ids (the camera sets them again before every frame)."""
    for msg in msgs:
        msg.header.frame_id = ""
    return msgs


@dataclass
class Case:
    name: str
    tweak: Callable | None
    expected: tuple[str, ...]
    tf_mode: str = "ok"


H, W = 480, 640
CASES = [
    Case("unknown_color_encoding", lambda c, d, i: (image(c, encoding="yuv422"), d, i),
         ("unsupported image encoding 'yuv422'",)),
    Case("unknown_depth_encoding", lambda c, d, i: (c, image(d, encoding="64FC1"), i), ("not a depth image",)),
    Case("step_smaller_than_width", lambda c, d, i: (c, image(d, step=W), i), ("step 640 is smaller",)),
    Case("step_larger_than_data", lambda c, d, i: (image(c, step=3 * W + 64), d, i), ("data has",)),
    Case("truncated_depth", lambda c, d, i: (c, image(d, data=d.data[:len(d.data) // 2]), i), ("data has",)),
    Case("zero_size_color", lambda c, d, i: (image(c, width=0, height=0, step=0, data=[]), d, i),
         ("image size must be positive",)),
    Case("depth_all_zero", depth_as(np.zeros((H, W), np.uint16), "16UC1"), ("no item in the gripper",)),
    Case("depth_all_nan", depth_as(np.full((H, W), np.nan, np.float32), "32FC1"), ("no item in the gripper",)),
    Case("zero_focal_length", zero_focal, ("no usable focal length",)),
    Case("color_and_depth_sizes_differ", lambda c, d, i: (
        array_to_image(np.zeros((240, 320, 3), np.uint8), "rgb8", c.header), d, i),
         ("color image is 320x240 but depth image is 640x480",)),
    Case("stamps_far_apart", lambda c, d, i: (c, shift_stamp(image(d), -5.0), i),
         ("no synchronised color/depth/camera_info frame", "s apart (sync_slop")),
    Case("stamps_backwards", Backwards(), ("no synchronised color/depth/camera_info frame", "go backwards")),
    Case("tf_missing", None, ("extrapolation",), tf_mode="none"),
    Case("tf_stale", None, ("extrapolation",), tf_mode="stale"),
    Case("item_mostly_outside_the_view", crop_columns(0.3), ("item cut off by the image edge",)),
    Case("empty_frame_id", lambda c, d, i: without_frame_id(c, d, i), ("empty header.frame_id",)),
    Case("depth_all_inf", depth_as(np.full((H, W), np.inf, np.float32), "32FC1"), ("no item in the gripper",)),
    Case("depth_all_negative", depth_as(np.full((H, W), -0.5, np.float32), "32FC1"), ("no item in the gripper",)),
]


def switch_camera(camera, tweak, tf_mode: str, frames: int = 3) -> None:
    """Set the camera's corruption and wait until ``frames`` frames went out with it, so that no frame
    published before the switch can still be in flight when the next goal starts."""
    camera.tweak, camera.tf_mode = tweak, tf_mode
    target = camera.published + frames + 1   # the frame being published at the switch may be the old kind
    deadline = time.monotonic() + 10.0
    while camera.published < target:
        assert time.monotonic() < deadline, "the replay camera stopped publishing"
        time.sleep(0.02)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_then_good_goal(served, case):
    camera, client = served
    switch_camera(camera, case.tweak, case.tf_mode)
    try:
        verdict, _ = client.inspect(case.name)
    finally:
        switch_camera(camera, None, "ok")
    assert verdict.decision == DamageVerdict.ERROR, (verdict.decision, verdict.reason)
    for text in case.expected:
        assert text in verdict.reason, verdict.reason
    # Not timed here (wall-clock bounds fail on a loaded 2-core machine): the answer is an ERROR naming the cause.
    # How long bad-input goals take is measured in benchmarks, not asserted.
    verdict, _ = client.inspect(f"after-{case.name}")  # the node keeps serving
    assert verdict.decision != DamageVerdict.ERROR, verdict.reason
