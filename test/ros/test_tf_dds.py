"""tf over real DDS: broadcasters in another process, a TransformListener + Buffer in this one."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.duration import Duration
from rclpy.time import Time
from tf2_msgs.msg import TFMessage

from damage_perception.core.transforms import invert
from damage_perception.ros.conversions import matrix_to_transform_stamped, transform_to_matrix
from damage_perception.ros.tf import Buffer, TransformListener

HELPER = Path(__file__).with_name("tf_broadcaster_process.py")
sys.path.insert(0, str(HELPER.parent))
from tf_broadcaster_process import LINK_OPTICAL, WORLD_CAMERA_LINK  # noqa: E402


@pytest.fixture(scope="module")
def broadcaster():
    """The broadcaster process, on this run's ROS_DOMAIN_ID (inherited environment)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, str(HELPER)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = process.stdout.read()
    assert "broadcasting" in output, output


def check_tree(buffer: Buffer) -> None:
    timeout = Duration(seconds=10.0)
    optical_from_world = buffer.lookup_transform("camera_optical", "world", Time(), timeout)
    np.testing.assert_allclose(transform_to_matrix(optical_from_world), invert(WORLD_CAMERA_LINK @ LINK_OPTICAL),
                               atol=1e-9)
    latest = buffer.lookup_transform("camera_optical", "gripper", Time(), timeout)
    assert latest.header.stamp.sec > 0

    # A stamp 0.5 s past the newest data: not there yet, the lookup waits for the broadcaster to get there.
    future = Time.from_msg(latest.header.stamp) + Duration(seconds=0.5)
    assert not buffer.can_transform("world", "gripper", future)
    world_from_gripper = transform_to_matrix(buffer.lookup_transform("world", "gripper", future, Duration(seconds=5)))
    # the broadcaster rotates about z at 1 rad/s and rises at 1 m/s: z and the yaw angle agree
    yaw = math.atan2(world_from_gripper[1, 0], world_from_gripper[0, 0])
    assert math.remainder(yaw - world_from_gripper[2, 3], 2 * math.pi) == pytest.approx(0.0, abs=1e-6)


def test_listener_spun_by_an_executor_thread(ros, broadcaster):
    node = ros.node("tf_listener_test")
    buffer = Buffer(cache_time=Duration(seconds=30.0))
    TransformListener(buffer, node)  # its subscriptions go with the node at teardown
    check_tree(buffer)


def test_listener_with_its_own_spin_thread(ros, broadcaster):
    node = ros.node("tf_listener_thread_test", spin=False)
    buffer = Buffer()
    listener = TransformListener(buffer, node, spin_thread=True)
    check_tree(buffer)
    listener.unregister()


def test_a_flood_of_bad_transforms_logs_a_bounded_number_of_lines(ros, capfd):
    """NaN and non-unit quaternions on /tf at full rate: each is rejected, and the ERROR really is throttled
    (rclpy throttles per logger object: the buffer keeps one)."""
    listener_node = ros.node("tf_flood_listener")
    buffer = Buffer()
    TransformListener(buffer, listener_node)
    heard = []
    listener_node.create_subscription(TFMessage, "/tf", lambda msg: heard.extend(
        t for t in msg.transforms if t.child_frame_id == "flood_child"), 1000)
    publisher_node = ros.node("tf_flood_publisher")
    publisher = publisher_node.create_publisher(TFMessage, "/tf", 1000)
    deadline = time.monotonic() + 10.0
    while publisher.get_subscription_count() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    bad = []
    for k in range(300):
        transform = matrix_to_transform_stamped(np.eye(4), "flood_parent", "flood_child",
                                                Time(seconds=1 + k * 0.01).to_msg())
        if k % 2:
            transform.transform.rotation.w = float("nan")
        else:
            transform.transform.rotation.w = 2.0   # not a unit quaternion
        bad.append(TFMessage(transforms=[transform]))
    started = time.monotonic()
    for msg in bad:
        publisher.publish(msg)
    deadline = time.monotonic() + 20.0
    while len(heard) < len(bad) and time.monotonic() < deadline:   # wait for the event: all delivered
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert len(heard) == len(bad)
    assert not buffer.can_transform("flood_parent", "flood_child", Time())   # none of them was stored
    lines = [line for line in capfd.readouterr().err.splitlines() if "ignoring transform" in line]
    assert 1 <= len(lines) <= 2 + int(elapsed / 5.0), lines[:5]   # one per 5 s throttle window
