"""Over DDS: an RViz-like subscriber in another process gets the node's debug cloud, image and markers while
an item is inspected (``debug.publish`` left false: subscribing is enough), and ``damage-perception report``
(the node's ``~/save_report``) has the item's HTML report written."""
from __future__ import annotations

import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from damage_perception import cli
from damage_perception.ros.debug_msgs import pointcloud2_to_points
from damage_perception.ros.verdict_msgs import DECISION_NAMES
from test.nodes.conftest import make_client, running

CELL = ("sim_cell_node", "sim_cell.yaml", {"num_items": 2, "damage_rate": 1.0, "seed": 5})
NODE_PARAMS = {"num_views": 3, "goal_deadline": 40.0, "view_timeout": 10.0}


def test_debug_topics_and_report_of_an_inspection(tmp_path, ros_context, capsys):
    reports = tmp_path / "reports"
    node = ("perception_node", "damage_perception.yaml", {**NODE_PARAMS, "debug.report_dir": str(reports)})
    got: dict[str, list] = {"cloud": [], "image": [], "markers": []}
    with running(tmp_path, CELL, node):
        client = make_client(server_timeout=60.0, item_timeout=60.0)
        frames = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        client.create_subscription(PointCloud2, "/damage_perception/debug/item_cloud", got["cloud"].append, frames)
        client.create_subscription(Image, "/damage_perception/debug/annotated_image", got["image"].append, frames)
        client.create_subscription(MarkerArray, "/damage_perception/debug/damage_markers", got["markers"].append,
                                   QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                              durability=DurabilityPolicy.TRANSIENT_LOCAL))
        deadline = time.monotonic() + 10.0   # the node must see the subscriptions before the first view
        while time.monotonic() < deadline and any(
                client.count_publishers(f"/damage_perception/debug/{name}") == 0
                for name in ("item_cloud", "annotated_image", "damage_markers")):
            rclpy.spin_once(client, timeout_sec=0.1)
        time.sleep(0.5)

        outcome = client.run_item()
        assert outcome is not None
        verdict = outcome.verdict
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not (got["cloud"] and len(got["image"]) >= verdict.num_views
                                                   and got["markers"]):
            rclpy.spin_once(client, timeout_sec=0.1)
        capsys.readouterr()
        status = cli.main(["report", "--timeout", "30"])
        printed = capsys.readouterr().out

    assert verdict.num_views == 3, verdict.reason
    assert got["cloud"], "no item cloud received"
    cloud = got["cloud"][-1]
    points = pointcloud2_to_points(cloud)
    assert cloud.header.frame_id == "gripper_link" and 100 <= len(points.points) <= 5000
    assert points.colors is not None
    # the item is held in the gripper: its points lie in the segmentation box around the gripper
    assert (np.abs(points.points[:, :2]) <= 0.16).all() and (points.points[:, 2] >= 0).all()

    assert len(got["image"]) == verdict.num_views   # one annotated image per view
    image = got["image"][-1]
    assert image.encoding == "rgb8" and image.width > 0 and image.height > 0
    assert image.step == 3 * image.width and len(image.data) == image.step * image.height

    assert got["markers"], "no damage markers received"
    markers = got["markers"][-1].markers
    assert markers[0].action == Marker.DELETEALL
    assert len(markers) >= 3 and all(m.header.frame_id == "gripper_link" for m in markers)
    assert {m.type for m in markers[1:]} == {Marker.SPHERE, Marker.TEXT_VIEW_FACING}

    path = reports / f"{outcome.item_id}.html"
    assert status == 0 and printed.strip() == f"report: {path.resolve()}", printed
    text = path.read_text(encoding="utf-8")
    assert f'<h1 class="decision">{DECISION_NAMES[verdict.decision]}</h1>' in text
    assert outcome.item_id in text and text.count("<h2>View ") == verdict.num_views
    assert text.count("data:image/png;base64,") >= 2 * verdict.num_views   # crop and outline of each view
