"""Approximate-time synchronisation: the matching rule, and subscribers over real DDS."""
import threading

import pytest
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from damage_perception.ros.sync import ApproximateTimeSynchronizer, SimpleFilter, Subscriber


def stamped(msg_type, seconds: float, frame: str = ""):
    msg = msg_type()
    ns = int(round(seconds * 1e9))
    msg.header.stamp = TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    msg.header.frame_id = frame
    return msg


def seconds(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class Inputs:
    """N plain filters feeding a synchronizer; collects what it emits."""

    def __init__(self, n: int, queue_size: int = 10, slop: float = 0.02) -> None:
        self.filters = [SimpleFilter() for _ in range(n)]
        self.sync = ApproximateTimeSynchronizer(self.filters, queue_size, slop)
        self.out = []
        self.sync.registerCallback(lambda *msgs: self.out.append(msgs))

    def send(self, index: int, msg) -> None:
        self.filters[index].signalMessage(msg)


def test_pairs_within_slop_and_drops_outside():
    inputs = Inputs(2, slop=0.02)
    inputs.send(0, stamped(Image, 1.000))
    inputs.send(1, stamped(Image, 1.050))  # 50 ms off: no pair
    assert inputs.out == []
    inputs.send(1, stamped(Image, 1.010))  # 10 ms off: pair with 1.000
    assert [(seconds(a), seconds(b)) for a, b in inputs.out] == [(1.0, 1.01)]
    inputs.send(0, stamped(Image, 1.045))  # pairs with the waiting 1.050
    assert [(seconds(a), seconds(b)) for a, b in inputs.out][-1] == (1.045, 1.05)
    inputs.send(0, stamped(Image, 1.047))  # its partner was used: nothing
    assert len(inputs.out) == 2


def test_picks_the_nearest_partner():
    inputs = Inputs(2, slop=0.05)
    inputs.send(1, stamped(Image, 2.000))
    inputs.send(1, stamped(Image, 2.030))
    inputs.send(0, stamped(Image, 2.025))
    assert [(seconds(a), seconds(b)) for a, b in inputs.out] == [(2.025, 2.03)]


def test_three_inputs_color_depth_camera_info():
    inputs = Inputs(3, slop=0.02)
    callback_args = []
    inputs.sync.registerCallback(lambda c, d, i, tag: callback_args.append(tag), "extra")
    inputs.send(0, stamped(Image, 5.000, "color"))
    inputs.send(2, stamped(CameraInfo, 5.005, "info"))
    assert inputs.out == []
    inputs.send(1, stamped(Image, 5.030, "depth"))  # spread 30 ms > slop
    assert inputs.out == []
    inputs.send(1, stamped(Image, 5.012, "depth"))
    assert len(inputs.out) == 1 and callback_args == ["extra"]
    color, depth, info = inputs.out[0]
    assert (color.header.frame_id, depth.header.frame_id, info.header.frame_id) == ("color", "depth", "info")
    assert isinstance(info, CameraInfo) and seconds(depth) == pytest.approx(5.012)


def test_spread_must_be_below_slop_not_just_each_pair():
    inputs = Inputs(3, slop=0.02)
    inputs.send(0, stamped(Image, 1.000))
    inputs.send(1, stamped(Image, 1.018))
    inputs.send(2, stamped(CameraInfo, 0.985))  # both within 20 ms of it, but the spread is 33 ms
    assert inputs.out == []


def test_queue_size_bounds_each_input():
    inputs = Inputs(2, queue_size=3, slop=0.001)
    for k in range(10):
        inputs.send(0, stamped(Image, 1.0 + k))
    assert len(inputs.sync.queues[0]) == 3
    inputs.send(1, stamped(Image, 1.0))  # the oldest was dropped
    assert inputs.out == []
    inputs.send(1, stamped(Image, 10.0))
    assert len(inputs.out) == 1


def test_thread_safe_under_concurrent_inputs():
    inputs = Inputs(2, queue_size=2000, slop=0.0005)
    stamps = [1.0 + 0.01 * k for k in range(500)]
    threads = [threading.Thread(target=lambda i=i: [inputs.send(i, stamped(Image, s)) for s in stamps])
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inputs.out) == len(stamps)
    assert sorted(round(seconds(a), 6) for a, _ in inputs.out) == [round(s, 6) for s in stamps]


def test_subscribers_with_sensor_qos_hear_best_effort_and_reliable_publishers(ros, wait_for):
    node = ros.node("sync_test")
    subs = [Subscriber(node, Image, "sync_test/color", qos_profile=qos_profile_sensor_data),
            Subscriber(node, Image, "sync_test/depth", qos_profile=qos_profile_sensor_data),
            Subscriber(node, CameraInfo, "sync_test/info", qos_profile=qos_profile_sensor_data)]
    sync = ApproximateTimeSynchronizer(subs, queue_size=10, slop=0.01)
    frames = []
    sync.registerCallback(lambda *msgs: frames.append(msgs))
    heard = []
    subs[0].registerCallback(lambda msg: heard.append(msg.header.frame_id))

    publisher_node = ros.node("sync_test_publisher", spin=False)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    color_best_effort = publisher_node.create_publisher(Image, "sync_test/color", qos_profile_sensor_data)
    color_reliable = publisher_node.create_publisher(Image, "sync_test/color", reliable)
    depth_pub = publisher_node.create_publisher(Image, "sync_test/depth", reliable)
    info_pub = publisher_node.create_publisher(CameraInfo, "sync_test/info", qos_profile_sensor_data)

    def publish(k: int) -> None:
        t = 100.0 + 0.1 * k
        color_best_effort.publish(stamped(Image, t, "best_effort"))
        color_reliable.publish(stamped(Image, t + 0.05, "reliable"))  # outside slop: never synchronised
        depth_pub.publish(stamped(Image, t + 0.004, "depth"))
        info_pub.publish(stamped(CameraInfo, t - 0.003, "info"))

    k = 0

    def done() -> bool:
        nonlocal k
        publish(k)
        k += 1
        return len(frames) >= 3 and {"best_effort", "reliable"} <= set(heard)

    assert wait_for(done, timeout=10.0, poll=0.05), (len(frames), set(heard))
    for color, depth, info in frames:
        assert color.header.frame_id == "best_effort" and depth.header.frame_id == "depth"
        assert isinstance(info, CameraInfo)
        assert seconds(depth) - seconds(color) == pytest.approx(0.004, abs=1e-6)
