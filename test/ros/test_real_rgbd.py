"""Real RealSense frames (test/fixtures/real_rgbd, from NVlabs/6dof-graspnet) through the conversions."""
import json
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from std_msgs.msg import Header

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.ros.conversions import (
    array_to_image,
    camera_info_to_intrinsics,
    color_to_rgb,
    depth_to_meters,
    image_to_array,
    intrinsics_to_camera_info,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real_rgbd"


def load(name: str) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    folder = FIXTURES / name
    depth_mm = cv2.imread(str(folder / "depth_mm.png"), cv2.IMREAD_UNCHANGED)
    bgr = cv2.imread(str(folder / "color.png"), cv2.IMREAD_COLOR)
    camera = json.loads((folder / "camera.json").read_text())
    intrinsics = CameraIntrinsics.from_matrix(np.array(camera["K"]), camera["width"], camera["height"])
    return depth_mm, bgr, intrinsics


@pytest.mark.parametrize("name", ["cheezit", "mustard"])
def test_real_depth_backprojects_to_a_table_scene(name):
    depth_mm, _, intrinsics = load(name)
    assert depth_mm.dtype == np.uint16 and depth_mm.shape == (intrinsics.height, intrinsics.width)
    header = Header(frame_id="camera_color_optical_frame")
    depth_msg = array_to_image(depth_mm, "16UC1", header)
    info = intrinsics_to_camera_info(intrinsics, header)
    points = backproject(depth_to_meters(depth_msg), camera_info_to_intrinsics(info))

    valid = np.isfinite(points[..., 2])
    np.testing.assert_array_equal(valid, depth_mm > 0)
    assert valid.mean() > 0.5
    assert 0.3 < np.median(points[valid][:, 2]) < 2.0

    # The table fills the lower part of the image: a plane holds most of those points, within 1 cm.
    lower = points[intrinsics.height * 2 // 3:].reshape(-1, 3)
    lower = lower[np.isfinite(lower[:, 2])]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(lower.astype(np.float64)))
    o3d.utility.random.seed(0)
    plane, inliers = cloud.segment_plane(distance_threshold=0.01, ransac_n=3, num_iterations=200)
    assert len(inliers) > 0.9 * len(lower)
    normal = np.asarray(plane[:3]) / np.linalg.norm(plane[:3])
    assert abs(normal[1]) > 0.5  # seen from above at an angle: the table's normal points up in the image


@pytest.mark.parametrize("name", ["cheezit", "mustard"])
def test_32fc1_of_the_same_depth_gives_identical_points(name):
    depth_mm, _, intrinsics = load(name)
    metres = np.where(depth_mm > 0, depth_mm.astype(np.float32) * np.float32(0.001), np.nan).astype(np.float32)
    from16 = backproject(depth_to_meters(array_to_image(depth_mm, "16UC1")), intrinsics)
    from32 = backproject(depth_to_meters(array_to_image(metres, "32FC1")), intrinsics)
    np.testing.assert_array_equal(from16, from32)


def test_real_color_round_trips_as_bgr8_and_rgb8():
    _, bgr, intrinsics = load("cheezit")
    assert bgr.shape == (intrinsics.height, intrinsics.width, 3)
    rgb = color_to_rgb(array_to_image(bgr, "bgr8"))
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    np.testing.assert_array_equal(image_to_array(array_to_image(rgb, "rgb8")), rgb)
