"""Conventions of real RGB-D drivers (realsense2_camera 4.x, OrbbecSDK_ROS2) on real sensor_msgs messages.

Messages are built field by field as the drivers fill them (see docs/real_cameras.md for the sources):
depth 16UC1 in millimetres (0 = no reading) or 32FC1 in metres, colour rgb8 (bgr8 from other drivers),
depth registered to colour with the colour camera_info, and camera_info D as the drivers publish it.
Undistortion is checked against OpenCV's own projection (cv2.projectPoints / cv2.fisheye.projectPoints).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from damage_perception.core.camera import backproject
from damage_perception.ros.conversions import (
    CameraInfoError,
    ImageConversionError,
    camera_info_to_intrinsics,
    color_to_rgb,
    depth_to_meters,
    distortion_of,
    is_distorted,
    rgbd_to_arrays,
    undistort_color,
    undistort_depth,
)

WIDTH, HEIGHT = 640, 480
K = (615.0, 0.0, 319.5, 0.0, 615.0, 239.5, 0.0, 0.0, 1.0)
HEADER = Header(frame_id="camera_color_optical_frame")

# Coefficients as each driver / model publishes them; strong enough that a corner moves by several pixels.
DISTORTIONS = {
    "plumb_bob_5": ("plumb_bob", [-0.12, 0.05, 0.001, -0.002, 0.01]),               # RealSense D455 colour
    "orbbec_plumb_bob_8": ("plumb_bob", [0.30, -0.10, 0.001, -0.001, 0.02, 0.45, -0.05, 0.01]),  # Orbbec
    "rational_polynomial_8": ("rational_polynomial", [0.30, -0.10, 0.001, -0.001, 0.02, 0.45, -0.05, 0.01]),
    "equidistant_4": ("equidistant", [0.10, -0.05, 0.01, 0.0]),
}


def camera_info(model: str = "plumb_bob", d=(0.0,) * 5, width: int = WIDTH, height: int = HEIGHT) -> CameraInfo:
    """A CameraInfo as a driver publishes it: K, R = I, P = [K | 0], the driver's D."""
    info = CameraInfo(header=HEADER, width=width, height=height, distortion_model=model)
    info.d = [float(v) for v in d]
    info.k = list(K)
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [K[0], 0.0, K[2], 0.0, 0.0, K[4], K[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def driver_image(array: np.ndarray, encoding: str) -> Image:
    """An Image filled the way the C++ drivers fill it: little-endian, step = width * bytes per pixel."""
    array = np.ascontiguousarray(array)
    return Image(header=HEADER, height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
                 step=array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3 else 1),
                 data=array.astype(array.dtype.newbyteorder("<")).tobytes())


def depth_scene_mm() -> np.ndarray:
    """A tilted plane 0.4-0.9 m away in millimetres, with sensor holes (0) like a RealSense frame."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    depth = (400 + 0.5 * u + 0.4 * v).astype(np.uint16)
    rng = np.random.default_rng(3)
    depth[rng.random(depth.shape) < 0.05] = 0
    depth[200:230, 300:340] = 0  # a shadow
    return depth


def color_scene_rgb() -> np.ndarray:
    """Colour with three different channels, so a swapped channel order shows."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([u % 256, v % 256, (u + 2 * v) % 256], axis=2).astype(np.uint8)


# -- depth units --------------------------------------------------------------------------------------------
def test_16uc1_millimetres_and_32fc1_metres_give_the_same_metres():
    depth_mm = depth_scene_mm()
    metres = np.where(depth_mm > 0, depth_mm / 1000.0, np.nan).astype(np.float32)  # as a 32FC1 driver writes it
    from_mm = depth_to_meters(driver_image(depth_mm, "16UC1"))
    from_m = depth_to_meters(driver_image(metres, "32FC1"))

    assert from_mm.dtype == from_m.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(from_mm), depth_mm == 0)
    np.testing.assert_array_equal(np.isnan(from_m), depth_mm == 0)
    np.testing.assert_allclose(from_mm, from_m, rtol=1e-6, equal_nan=True)
    assert np.nanmin(from_mm) == pytest.approx(0.4, abs=1e-3)  # metres, not millimetres
    assert np.nanmax(from_mm) < 1.0


def test_32fc1_no_reading_conventions_all_become_nan():
    """Gazebo writes +-inf outside the clip range (REP 117), other drivers NaN or 0."""
    metres = np.full((2, 4), 0.5, dtype=np.float32)
    metres[0, :] = [np.inf, -np.inf, np.nan, 0.0]
    depth = depth_to_meters(driver_image(metres, "32FC1"))
    assert np.isnan(depth[0]).all()
    np.testing.assert_array_equal(depth[1], 0.5)


def test_unsupported_depth_encoding_is_rejected_by_name():
    with pytest.raises(ImageConversionError, match="'rgb8' is not a depth image"):
        depth_to_meters(driver_image(color_scene_rgb(), "rgb8"))


# -- colour order -------------------------------------------------------------------------------------------
def test_bgr8_and_rgb8_give_the_same_rgb_array():
    rgb = color_scene_rgb()
    from_rgb = color_to_rgb(driver_image(rgb, "rgb8"))
    from_bgr = color_to_rgb(driver_image(rgb[:, :, ::-1], "bgr8"))
    np.testing.assert_array_equal(from_rgb, rgb)
    np.testing.assert_array_equal(from_bgr, rgb)
    assert from_bgr.flags["C_CONTIGUOUS"]


# -- registration ---------------------------------------------------------------------------------------
def test_depth_aligned_to_colour_converts_with_the_colour_camera_info():
    """realsense aligned_depth_to_color / Orbbec depth_registration: depth in the colour frame, same size."""
    depth_mm, rgb = depth_scene_mm(), color_scene_rgb()
    color_out, depth_out, intrinsics = rgbd_to_arrays(driver_image(rgb, "rgb8"), driver_image(depth_mm, "16UC1"),
                                                      camera_info())
    np.testing.assert_array_equal(color_out, rgb)
    np.testing.assert_array_equal(np.isnan(depth_out), depth_mm == 0)
    assert (intrinsics.width, intrinsics.height, intrinsics.fx, intrinsics.cx) == (WIDTH, HEIGHT, 615.0, 319.5)
    points = backproject(depth_out, intrinsics)
    v, u = 100, 500  # X = (u - cx) z / fx at the pixel's own depth
    z = depth_mm[v, u] / 1000.0
    np.testing.assert_allclose(points[v, u], [(u - 319.5) * z / 615.0, (v - 239.5) * z / 615.0, z], rtol=1e-5)


def test_unregistered_depth_is_rejected_with_the_driver_setting_to_fix_it():
    """realsense /depth/image_rect_raw (848x480 in the depth camera's frame) is not registered to colour."""
    raw_depth = np.full((480, 848), 500, dtype=np.uint16)
    with pytest.raises(ImageConversionError, match="registered to color.*align_depth.enable"):
        rgbd_to_arrays(driver_image(color_scene_rgb(), "rgb8"), driver_image(raw_depth, "16UC1"), camera_info())


def test_camera_info_of_another_resolution_is_rejected():
    info = camera_info(width=1280, height=720)
    with pytest.raises(CameraInfoError, match="camera_info says 1280x720"):
        rgbd_to_arrays(driver_image(color_scene_rgb(), "rgb8"), driver_image(depth_scene_mm(), "16UC1"), info)


# -- lens distortion ------------------------------------------------------------------------------------
def project(points: np.ndarray, model: str, d: list[float]) -> np.ndarray:
    """OpenCV's projection of camera-frame points into the distorted image: (N, 2) pixels."""
    k = np.asarray(K).reshape(3, 3)
    if model == "equidistant":
        pixels, _ = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, np.asarray(d))
    else:
        pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, np.asarray(d))
    return pixels.reshape(-1, 2)


def lens_points():
    """Camera-frame points towards the corners and edges of the image, where lenses distort most."""
    pixels = np.array([[560.0, 420.0], [80.0, 60.0], [600.0, 70.0], [50.0, 400.0], [20.0, 240.0], [620.0, 240.0]])
    z = np.array([0.45, 0.6, 0.75, 0.5, 0.65, 0.55])
    return np.column_stack([(pixels[:, 0] - K[2]) * z / K[0], (pixels[:, 1] - K[5]) * z / K[4], z]), pixels


@pytest.mark.parametrize("name", sorted(DISTORTIONS))
def test_undistort_moves_each_point_to_its_pinhole_pixel(name):
    """Patches drawn where OpenCV projects known points through the lens end up at K's pinhole pixels."""
    model, d = DISTORTIONS[name]
    info = camera_info(model, d)
    assert is_distorted(info)
    points, pinhole = lens_points()
    distorted = project(points, model, d)
    assert np.all(np.linalg.norm(distorted - pinhole, axis=1) > 4.0), "the lens must move every test point"

    depth = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    rgb = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index, ((du, dv), z) in enumerate(zip(np.rint(distorted).astype(int), points[:, 2])):
        depth[dv - 2:dv + 3, du - 2:du + 3] = z
        rgb[dv - 2:dv + 3, du - 2:du + 3] = (40 * (index + 1), 255, 7)

    color_out, depth_out, intrinsics = rgbd_to_arrays(
        driver_image(rgb, "rgb8"), driver_image(np.where(np.isnan(depth), 0, np.rint(depth * 1000)).astype(np.uint16),
                                                "16UC1"), info)
    np.testing.assert_array_equal(intrinsics.matrix.ravel(), K)  # the undistorted image keeps K
    for index, ((pu, pv), point) in enumerate(zip(np.rint(pinhole).astype(int), points)):
        assert np.isnan(depth[pv, pu]), "before undistortion the pinhole pixel is empty"
        assert depth_out[pv, pu] == pytest.approx(point[2], abs=1e-3), f"point {index} not at its pinhole pixel"
        assert tuple(color_out[pv, pu]) == (40 * (index + 1), 255, 7)
        # back-projected with K, the pixel is the original 3-D point (within half a pixel at its depth)
        np.testing.assert_allclose(backproject(depth_out, intrinsics)[pv, pu], point, atol=0.6 * point[2] / K[0]
                                   + 1e-3)
    # Nearest-neighbour depth: no value is invented between the patch and the background.
    values = np.unique(depth_out[np.isfinite(depth_out)])
    assert np.abs(values[:, None] - points[None, :, 2]).min(axis=1).max() < 1e-6


@pytest.mark.parametrize("name", sorted(DISTORTIONS))
def test_undistort_depth_matches_opencv_undistort_points(name):
    """Every valid pixel of the result came from where cv2 says its pinhole ray hits the distorted image."""
    model, d = DISTORTIONS[name]
    info = camera_info(model, d)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    code = (v * WIDTH + u).astype(np.float32)  # each distorted pixel holds its own index
    out = undistort_depth(code, info)
    samples = np.array([[500, 400], [100, 80], [320, 240], [630, 20]], dtype=float)
    rays = np.column_stack([(samples[:, 0] - K[2]) / K[0], (samples[:, 1] - K[5]) / K[4], np.ones(len(samples))])
    expected = np.rint(project(rays, model, d)).astype(int)
    for (su, sv), (eu, ev) in zip(samples.astype(int), expected):
        got_v, got_u = divmod(int(out[sv, su]), WIDTH)
        assert abs(got_u - eu) <= 1 and abs(got_v - ev) <= 1, (name, (su, sv), (got_u, got_v), (eu, ev))


@pytest.mark.parametrize("model, d", [("plumb_bob", [0.0] * 5), ("rational_polynomial", [0.0] * 8),
                                      ("plumb_bob", []), ("", []), ("equidistant", [0.0] * 4)])
def test_zero_distortion_is_a_no_op(model, d):
    """RealSense D435 colour and Gazebo publish D = 0; some drivers leave D empty."""
    info = camera_info(model, d)
    assert not is_distorted(info) and distortion_of(info)[0] == "none"
    depth = depth_to_meters(driver_image(depth_scene_mm(), "16UC1"))
    rgb = color_scene_rgb()
    assert undistort_depth(depth, info) is depth
    assert undistort_color(rgb, info) is rgb
    _, depth_out, _ = rgbd_to_arrays(driver_image(rgb, "rgb8"), driver_image(depth_scene_mm(), "16UC1"), info)
    np.testing.assert_array_equal(depth_out, depth)


@pytest.mark.parametrize("model, d, message", [
    ("kannala_brandt", [0.1, 0.01, 0.0, 0.0], r"distortion_model 'kannala_brandt' with 4 coefficients is not "
                                              r"supported; expected plumb_bob / rational_polynomial"),
    ("plumb_bob", [0.1, 0.01, 0.0], "with 3 coefficients is not supported"),
    ("equidistant", [0.1, 0.01, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0], "'equidistant' with 8 coefficients"),  # Orbbec KB4
    ("plumb_bob", [0.1, float("nan"), 0.0, 0.0, 0.0], "non-finite coefficients"),
])
def test_unsupported_distortion_raises_camera_info_error(model, d, message):
    info = camera_info(model, d)
    with pytest.raises(CameraInfoError, match=message):
        is_distorted(info)
    with pytest.raises(CameraInfoError, match=message):
        rgbd_to_arrays(driver_image(color_scene_rgb(), "rgb8"), driver_image(depth_scene_mm(), "16UC1"), info)
    camera_info_to_intrinsics(info)  # K alone is still readable: only the images cannot be undistorted


# -- driver presets ---------------------------------------------------------------------------------------------
CONFIG = Path(__file__).resolve().parents[2] / "config"
PRESETS = {
    "realsense_d435": ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
                       "/camera/camera/color/camera_info"),
    "orbbec_femto": ("/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info"),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_camera_preset_loads_over_the_node_parameters(preset):
    """As damage_perception.launch.py camera:=NAME does: rcl parses both files, the preset wins for the topics."""
    from rclpy.parameter import Parameter

    from damage_perception.nodes.perception_node import DamagePerceptionNode

    base, camera = CONFIG / "damage_perception.yaml", CONFIG / "cameras" / f"{preset}.yaml"
    overrides = yaml.safe_load(camera.read_text())["damage_perception"]["ros__parameters"]
    threshold = yaml.safe_load(base.read_text())["damage_perception"]["ros__parameters"]["decision"]["divert_threshold"]
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = DamagePerceptionNode(
            context=context, cli_args=["--ros-args", "--params-file", str(base), "--params-file", str(camera)],
            parameter_overrides=[Parameter("model_path", Parameter.Type.STRING, "")])  # no model load
        try:
            topics = tuple(node.get_parameter(name).value for name in ("color_topic", "depth_topic",
                                                                         "camera_info_topic"))
            assert topics == PRESETS[preset]
            for name, value in overrides.items():
                assert node.get_parameter(name).value == value, name
            assert threshold != 0.5   # not the dataclass default: the check below shows the base file applies
            assert node.get_parameter("decision.divert_threshold").value == threshold
            assert node.get_parameter("camera_frame").value == "camera_color_optical_frame"
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
