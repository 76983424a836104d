"""Debug messages: point cloud layout and RGB packing, annotated images, markers, and a trip over DDS."""
import struct

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from damage_perception.ros.conversions import array_to_image, color_to_rgb
from damage_perception.ros.debug_msgs import (annotated_image, damage_markers, heat_colors, pack_rgb,
                                              pointcloud2_to_points, points_to_pointcloud2, unpack_rgb)

STAMP = TimeMsg(sec=12, nanosec=345)


def test_cloud_round_trip_and_layout():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(50, 3)).astype(np.uint8)
    intensity = rng.random(50).astype(np.float32)
    msg = points_to_pointcloud2(points, "gripper_link", STAMP, colors=colors, intensity=intensity)

    assert (msg.header.frame_id, msg.header.stamp) == ("gripper_link", STAMP)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1), ("z", 8, PointField.FLOAT32, 1),
        ("rgb", 12, PointField.FLOAT32, 1), ("intensity", 16, PointField.FLOAT32, 1)]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 50, 20, 1000)
    assert msg.is_bigendian is False and msg.is_dense is True
    assert len(msg.data) == 1000
    # the first point, read as sensor_msgs_py's read_points would: packed little-endian float32s
    assert struct.unpack_from("<3f", bytes(msg.data), 0) == tuple(float(v) for v in points[0])

    back = pointcloud2_to_points(msg)
    np.testing.assert_array_equal(back.points, points)
    np.testing.assert_array_equal(back.colors, colors)
    np.testing.assert_array_equal(back.intensity, intensity)


def test_cloud_without_extras_and_with_nan():
    points = np.array([[0.1, 0.2, 0.3], [np.nan, 0.0, 1.0]])
    msg = points_to_pointcloud2(points, "camera", STAMP)
    assert [f.name for f in msg.fields] == ["x", "y", "z"]
    assert (msg.point_step, msg.row_step, msg.is_dense) == (12, 24, False)
    back = pointcloud2_to_points(msg)
    assert back.colors is None and back.intensity is None
    np.testing.assert_array_equal(back.points, points.astype(np.float32))
    assert pointcloud2_to_points(points_to_pointcloud2(np.zeros((0, 3)), "camera", STAMP)).points.shape == (0, 3)


def test_reader_honours_offsets_padding_and_big_endian():
    """A cloud laid out as a driver might (big-endian, padded points and rows, extra field) reads back."""
    points = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [-1.0, -2.0, -3.0]], np.float32)
    dtype = np.dtype({"names": ["ring", "x", "y", "z"], "formats": [">u2", ">f4", ">f4", ">f4"],
                      "offsets": [0, 4, 8, 12], "itemsize": 32})
    cloud = np.zeros((2, 2), dtype)
    for axis, name in enumerate("xyz"):
        cloud[name] = points[:, axis].reshape(2, 2)
    rows = np.zeros((2, 80), np.uint8)   # 16 bytes of padding per row
    rows[:, :64] = cloud.view(np.uint8).reshape(2, 64)
    msg = PointCloud2(height=2, width=2, point_step=32, row_step=80, is_bigendian=True, data=rows.tobytes(),
                      fields=[PointField(name="ring", offset=0, datatype=PointField.UINT16, count=1)] +
                      [PointField(name=n, offset=4 * (k + 1), datatype=PointField.FLOAT32, count=1)
                       for k, n in enumerate("xyz")])
    np.testing.assert_array_equal(pointcloud2_to_points(msg).points, points)


def test_rgb_packing_is_what_rviz_reads():
    """RViz / PCL read the float's bits as uint32 0x00RRGGBB."""
    orange = np.array([[255, 128, 1]], np.uint8)
    packed = pack_rgb(orange)
    assert packed.dtype == np.float32
    assert struct.unpack("<I", struct.pack("<f", packed[0]))[0] == 0x00FF8001
    msg = points_to_pointcloud2(np.zeros((1, 3)), "camera", STAMP, colors=orange)
    assert bytes(msg.data)[12:16] == bytes([0x01, 0x80, 0xFF, 0x00])  # little-endian b, g, r, 0
    np.testing.assert_array_equal(unpack_rgb(packed), orange)


def test_cloud_rejects_mismatched_extras():
    with pytest.raises(ValueError, match="colors"):
        points_to_pointcloud2(np.zeros((3, 3)), "f", STAMP, colors=np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="intensity"):
        points_to_pointcloud2(np.zeros((3, 3)), "f", STAMP, intensity=np.zeros(4))


def _gray(height=120, width=160):
    return np.full((height, width, 3), 90, np.uint8)


def test_annotated_image_heat_inside_box_only():
    color = _gray()
    heat = np.ones((10, 10))
    box = (60, 100, 80, 140)
    out = annotated_image(color, None, heat, box, [])
    inside = out[box[0]:box[1], box[2]:box[3]]
    expected = np.round(0.45 * 90 + 0.55 * heat_colors(np.ones((1, 1)))[0, 0]).astype(np.uint8)
    assert (inside == expected).all()
    outside = np.ones(color.shape[:2], bool)
    outside[box[0]:box[1], box[2]:box[3]] = False
    assert (out[outside] == 90).all()
    assert out.dtype == np.uint8 and out.shape == color.shape
    assert (color == 90).all()  # the input is not drawn on


def test_annotated_image_heat_below_threshold_is_not_drawn():
    heat = np.zeros((20, 20))
    heat[10:, :] = 1.0   # only the lower half of the box is hot
    out = annotated_image(_gray(), None, heat, (0, 40, 0, 40), [])
    assert (out[2:18, :40] == 90).all()
    assert (out[22:40, :40] != 90).any(axis=-1).all()


def test_annotated_image_clips_a_box_leaving_the_image():
    heat = np.zeros((10, 10))
    heat[:, :5] = 1.0   # left half hot: at columns 140..159 of the box (120, 200) that reaches past 160
    out = annotated_image(_gray(), None, heat, (-20, 40, 120, 200), [])
    assert (out[:40, 120:160] != 90).any(axis=-1).all()
    assert (out[40:, :] == 90).all() and (out[:, :120] == 90).all()
    untouched = annotated_image(_gray(), None, np.ones((4, 4)), (200, 300, -50, -10), [])
    assert (untouched == 90).all()


def test_annotated_image_outline_and_text():
    mask = np.zeros((120, 160), bool)
    mask[50:90, 60:120] = True
    out = annotated_image(_gray(), mask, None, None, ["DIVERT 0.81", "crush, view 3"])
    assert (out[50, 60:120] == (0, 255, 255)).all()   # the outline runs along the mask's edge
    assert (out[70, 90] == 90).all()                   # the inside of the item is untouched
    assert (out[:30, :60] != 90).any()                  # text band at the top left
    assert (out[100:, 130:] == 90).all()
    message = array_to_image(out, "rgb8")
    np.testing.assert_array_equal(color_to_rgb(message), out)


def test_damage_markers():
    markers = damage_markers([np.array([0.1, 0.0, 0.2]), np.array([0.0, -0.1, 0.3])], ["crush", "hole"],
                             [0.9, 0.1], "gripper_link", STAMP, ns="dmg", lifetime_s=2.5)
    first, *rest = markers.markers
    assert first.action == Marker.DELETEALL
    assert len(rest) == 4
    assert [m.type for m in rest] == [Marker.SPHERE, Marker.TEXT_VIEW_FACING] * 2
    assert [m.id for m in rest] == [0, 1, 2, 3]
    assert all(m.ns == "dmg" and m.header.frame_id == "gripper_link" and m.header.stamp == STAMP for m in rest)
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (2, 500_000_000) for m in rest)
    sphere, text = rest[0], rest[1]
    assert (sphere.pose.position.x, sphere.pose.position.z) == (pytest.approx(0.1), pytest.approx(0.2))
    assert sphere.color.r > sphere.color.g and sphere.color.a == 1.0        # high score: red
    assert rest[2].color.g > rest[2].color.r                                 # low score: green
    assert text.text == "crush 0.90" and rest[3].text == "hole 0.10"
    assert text.pose.position.z > sphere.pose.position.z
    assert len(damage_markers([], [], [], "f", STAMP).markers) == 1
    with pytest.raises(ValueError):
        damage_markers([np.zeros(3)], [], [0.5], "f", STAMP)


def test_cloud_and_markers_over_dds(ros, wait_for):
    """Both messages survive serialisation through rclpy and DDS in one process."""
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    publisher_node, listener_node = ros.node("debug_publisher"), ros.node("debug_listener")
    received: dict[str, object] = {}
    listener_node.create_subscription(PointCloud2, "debug/cloud", lambda m: received.setdefault("cloud", m), qos)
    listener_node.create_subscription(MarkerArray, "debug/markers", lambda m: received.setdefault("markers", m), qos)
    cloud_pub = publisher_node.create_publisher(PointCloud2, "debug/cloud", qos)
    marker_pub = publisher_node.create_publisher(MarkerArray, "debug/markers", qos)

    points = np.random.default_rng(1).normal(size=(500, 3)).astype(np.float32)
    colors = np.tile(np.array([[255, 128, 1]], np.uint8), (500, 1))
    cloud = points_to_pointcloud2(points, "gripper_link", STAMP, colors=colors)
    markers = damage_markers([np.array([0.1, 0.0, 0.2])], ["crush"], [0.9], "gripper_link", STAMP)
    assert wait_for(lambda: cloud_pub.get_subscription_count() > 0 and marker_pub.get_subscription_count() > 0,
                    10.0)

    def publish_until_received() -> bool:
        cloud_pub.publish(cloud)
        marker_pub.publish(markers)
        return wait_for(lambda: len(received) == 2, 0.5)

    assert wait_for(publish_until_received, 10.0)
    back = pointcloud2_to_points(received["cloud"])
    np.testing.assert_array_equal(back.points, points)
    np.testing.assert_array_equal(back.colors, colors)
    assert [m.action for m in received["markers"].markers] == [Marker.DELETEALL, Marker.ADD, Marker.ADD]
    assert received["markers"].markers[2].text == "crush 0.90"
