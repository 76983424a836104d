"""Frames of the simulated cell."""
import math

import numpy as np

from damage_perception.core.transforms import apply, invert


def test_camera_looks_at_target(scene):
    optical = scene.T_world_optical
    to_target = np.subtract(scene.camera_target, scene.camera_position)
    assert np.allclose(optical[:3, 2], to_target / np.linalg.norm(to_target), atol=1e-9)
    assert np.allclose(optical[:3, 3], scene.camera_position)
    assert optical[1, 0] < -0.99          # optical x (image right) is world -y
    assert optical[2, 1] < -0.99          # optical y (image down) is about world -z
    link = scene.T_world_camera_link
    assert np.allclose(link[:3, 0], optical[:3, 2])  # camera_link x forward = optical z
    pitch = -math.asin(link[2, 0])
    assert math.isclose(pitch, -0.0831412, abs_tol=1e-6)  # as in urdf/inspection_cell.urdf


def test_inspection_pose_points_down_and_wrist_turns_about_vertical(scene):
    inspection = scene.T_world_inspection
    assert np.allclose(inspection[:3, 2], [0, 0, -1])
    assert np.allclose(inspection[:3, 3], scene.inspection_position)
    turned = scene.T_world_gripper(0.7)
    assert np.allclose(turned[:3, 2], [0, 0, -1])
    assert np.allclose(turned[:3, 3], inspection[:3, 3])
    assert math.isclose(math.atan2(turned[1, 0], turned[0, 0]), -0.7, abs_tol=1e-9)


def test_wrist_angle_facing_turns_direction_to_camera(scene):
    for direction in ([1, 0, 0], [0, -1, 0], [0.3, 0.8, 0.0]):
        angle = scene.wrist_angle_facing(direction)
        world_dir = scene.T_world_gripper(angle)[:3, :3] @ np.asarray(direction, float)
        to_camera = np.subtract(scene.camera_position, scene.inspection_position)
        to_camera[2] = 0
        assert np.dot(world_dir / np.linalg.norm(world_dir), to_camera / np.linalg.norm(to_camera)) > 0.999


def test_inspection_point_projects_into_image(scene):
    point = apply(invert(scene.T_world_optical), np.asarray(scene.inspection_position))
    assert 0.5 < point[2] < 0.7
    u = scene.intrinsics.fx * point[0] / point[2] + scene.intrinsics.cx
    v = scene.intrinsics.fy * point[1] / point[2] + scene.intrinsics.cy
    assert 0 < u < scene.intrinsics.width and 0 < v < scene.intrinsics.height
