"""Debug messages: point cloud layout and RGB packing, annotated images, markers, and a trip over DDS."""
import struct

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from damage_perception.ros.debug_msgs import (
    damage_markers,
    pack_rgb,
    pointcloud2_to_points,
    points_to_pointcloud2,
    unpack_rgb,
)

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


# -- the node's debug publisher ---------------------------------------------------------------------
def _view(index: int, found: bool = True):
    """A processed 120 x 160 view: an item (rows 40..80, cols 50..110) whose points are (row, col, 0) mm."""
    from damage_perception.core.camera import CameraIntrinsics
    from damage_perception.core.crops import crop_box
    from damage_perception.core.segmentation import ItemSegment
    from damage_perception.core.verdict import ViewResult
    from damage_perception.core.view_pipeline import ViewInput

    color = _gray()
    mask = np.zeros((120, 160), bool)
    mask[40:80, 50:110] = True
    color[mask] = (200, 100, 50)
    pixels = np.flatnonzero(mask)
    rows, cols = np.divmod(pixels, 160)
    points = np.stack([rows, cols, np.zeros_like(rows)], axis=1) * 1e-3
    heat = np.zeros((20, 20), np.float32)
    heat[:10] = 0.9   # the upper half of the crop is hot
    view = ViewInput(np.ones((120, 160), np.float32), CameraIntrinsics(160, 120, 100.0, 100.0, 80.0, 60.0),
                     np.eye(4), [], color)
    if not found:
        return (ViewResult(index, 0.0, False, reason="no item in the gripper"),
                ItemSegment(False, np.zeros_like(mask), np.zeros((0, 3)), np.zeros(0, int)), view)
    result = ViewResult(index, np.pi / 2 * index, True, 0.8, {"crush": 0.1, "hole": 0.7}, np.array([0.06, 0.08, 0.0]),
                        len(points), heatmap=heat, crop_box=crop_box(mask))
    return result, ItemSegment(True, mask, points, pixels), view


def test_debug_helpers():
    from damage_perception_interfaces.msg import DamageTypeScores, DamageVerdict

    from damage_perception.ros.debug_publisher import damage_label, item_report, thin, view_caption
    np.testing.assert_array_equal(thin(5, 10), np.arange(5))
    kept = thin(10_001, 100)
    assert len(kept) == 100 and kept[0] == 0 and kept[-1] == 10_000 and (np.diff(kept) > 0).all()
    result, _, _ = _view(2)
    assert damage_label(result) == "v2 hole"
    assert view_caption(result, "item-9") == ["item-9: view 2 at 180 deg", "damage 0.80 (hole)"]
    missing, _, _ = _view(1, found=False)
    assert view_caption(missing, "x")[1] == "no item: no item in the gripper"
    msg = DamageVerdict(item_id="item-9", sku="S", decision=DamageVerdict.REVIEW, fused_score=0.45, threshold=0.5,
                        type_scores=DamageTypeScores(hole=0.7), reason="close call", model_version="m1")
    report = item_report(msg, [])
    assert (report.decision, report.item_id, report.fused_score, report.model_version) == ("REVIEW", "item-9",
                                                                                          0.45, "m1")
    assert report.damage_types["hole"] == pytest.approx(0.7) and len(report.damage_types) == 6


def test_debug_publisher_over_dds(ros, wait_for, tmp_path):
    """A subscriber in another node gets the item cloud, the annotated image and the markers of each view;
    ``~/save_report`` writes the finished item's report."""
    from damage_perception_interfaces.msg import DamageVerdict
    from rclpy.qos import DurabilityPolicy
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger

    from damage_perception.ros.conversions import image_to_array
    from damage_perception.ros.debug_publisher import DebugConfig, DebugPublisher

    node = ros.node("perception_under_test")
    debug = DebugPublisher(node, DebugConfig(max_cloud_points=1000, report_dir=str(tmp_path / "reports")),
                           "gripper_link", "camera_color_optical_frame")
    listener = ros.node("rviz_stand_in")
    got: dict[str, list] = {"cloud": [], "image": [], "markers": []}
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    late_joiner = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(PointCloud2, "/perception_under_test/debug/item_cloud", got["cloud"].append,
                                 reliable)
    listener.create_subscription(Image, "/perception_under_test/debug/annotated_image", got["image"].append,
                                 reliable)
    listener.create_subscription(MarkerArray, "/perception_under_test/debug/damage_markers",
                                 got["markers"].append, late_joiner)
    client = listener.create_client(Trigger, "/perception_under_test/save_report")
    assert wait_for(lambda: all(p.get_subscription_count() > 0
                                for p in (debug.cloud_pub, debug.image_pub, debug.marker_pub)), 10.0)
    assert client.wait_for_service(timeout_sec=10.0)

    def call() -> Trigger.Response:
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 10.0)
        return future.result()

    assert call().success is False   # nothing inspected yet

    debug.start_item("item-9")
    # the topics keep the newest message only: let each view's arrive before the next view
    debug.view(*_view(0), STAMP)
    assert wait_for(lambda: got["cloud"] and got["image"] and got["markers"], 10.0)
    debug.view(*_view(1), STAMP)
    assert wait_for(lambda: len(got["markers"]) == len(got["image"]) == len(got["cloud"]) == 2, 10.0)
    debug.view(*_view(2, found=False), STAMP)   # no item: an image, but no cloud and no new markers
    assert wait_for(lambda: len(got["image"]) == 3, 10.0)
    assert len(got["cloud"]) == 2 and len(got["markers"]) == 2
    assert len(got["markers"][0].markers) == 3 and len(got["markers"][1].markers) == 5

    cloud = pointcloud2_to_points(got["cloud"][-1])
    assert got["cloud"][-1].header.frame_id == "gripper_link" and len(cloud.points) == 1000   # thinned
    assert (cloud.colors == (200, 100, 50)).all()   # coloured from the item's pixels
    assert set(np.round(cloud.points[:, 0] * 1e3).astype(int)) <= set(range(40, 80))
    image = got["image"][-1]
    assert (image.encoding, image.width, image.height, image.header.frame_id) == (
        "rgb8", 160, 120, "camera_color_optical_frame")
    annotated = image_to_array(got["image"][0])
    # the heat map covers the upper half of the crop: the item's upper rows change, its lower rows do not
    assert (annotated[45:55, 60:100] != (200, 100, 50)).any(axis=-1).all()
    assert (annotated[70:78, 60:100] == (200, 100, 50)).all()
    markers = got["markers"][-1].markers
    assert [m.action for m in markers] == [Marker.DELETEALL] + [Marker.ADD] * 4
    assert all(m.header.frame_id == "gripper_link" for m in markers)
    assert (markers[1].pose.position.x, markers[1].pose.position.y) == (pytest.approx(0.06), pytest.approx(0.08))
    assert [m.text for m in markers[2::2]] == ["v0 hole 0.80", "v1 hole 0.80"]

    debug.finish_item(DamageVerdict(item_id="item-9", sku="S", decision=DamageVerdict.DIVERT, fused_score=0.8,
                                    threshold=0.5, reason="hole", model_version="m1"))
    response = call()
    assert response.success, response.message
    assert response.message == str((tmp_path / "reports" / "item-9.html").resolve())
    text = (tmp_path / "reports" / "item-9.html").read_text()
    assert '<h1 class="decision">DIVERT</h1>' in text and text.count("<h2>View ") == 3
