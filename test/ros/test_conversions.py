"""Image, camera_info, geometry and stamp conversions."""
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.transforms import rotation_about_z, transform_from_xyz_rpy
from damage_perception.ros.conversions import (
    CameraInfoError,
    ImageConversionError,
    array_to_image,
    camera_info_to_intrinsics,
    color_to_rgb,
    depth_to_meters,
    image_to_array,
    intrinsics_to_camera_info,
    matrix_to_pose,
    matrix_to_transform,
    matrix_to_transform_stamped,
    pose_to_matrix,
    seconds_to_stamp,
    stamp_to_seconds,
    transform_to_matrix,
)

RNG = np.random.default_rng(7)
SAMPLES = {
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "mono16": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.normal(1.0, 0.5, (5, 7)).astype(np.float32),
}
BPP = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2, "16UC1": 2, "32FC1": 4}


def raw_image(encoding: str, height: int, width: int, step: int, data: bytes, bigendian: bool = False) -> Image:
    return Image(encoding=encoding, height=height, width=width, step=step, data=data,
                 is_bigendian=int(bigendian))


@pytest.mark.parametrize("encoding", sorted(SAMPLES))
def test_round_trip_every_encoding(encoding):
    array = SAMPLES[encoding]
    header = Header(frame_id="cam", stamp=TimeMsg(sec=3, nanosec=4))
    msg = array_to_image(array, encoding, header)
    assert (msg.height, msg.width, msg.step) == (5, 7, 7 * BPP[encoding])
    assert msg.encoding == encoding and msg.header.frame_id == "cam" and msg.header.stamp.sec == 3
    back = image_to_array(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable and back.flags.c_contiguous


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "16UC1", "32FC1", "bgra8"])
def test_row_padding_is_skipped(encoding):
    array = SAMPLES[encoding]
    row = array.shape[1] * BPP[encoding]
    step = row + 5  # odd padding: multi-byte pixels of later rows are not aligned
    rows = np.frombuffer(array.astype(array.dtype.newbyteorder("<")).tobytes(), np.uint8).reshape(5, row)
    padded = np.concatenate([rows, np.full((5, 5), 0xAB, np.uint8)], axis=1)
    back = image_to_array(raw_image(encoding, 5, 7, step, padded.tobytes()))
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_big_endian_data_is_read_in_native_order(encoding):
    array = SAMPLES[encoding]
    data = array.astype(array.dtype.newbyteorder(">")).tobytes()
    back = image_to_array(raw_image(encoding, 5, 7, 7 * BPP[encoding], data, bigendian=True))
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_color_to_rgb_converts_channel_orders():
    rgb = SAMPLES["rgb8"]
    np.testing.assert_array_equal(color_to_rgb(array_to_image(rgb, "rgb8")), rgb)
    np.testing.assert_array_equal(color_to_rgb(array_to_image(rgb[:, :, ::-1].copy(), "bgr8")), rgb)
    alpha = np.full((5, 7, 1), 9, np.uint8)
    np.testing.assert_array_equal(color_to_rgb(array_to_image(np.concatenate([rgb, alpha], 2), "rgba8")), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], alpha], 2)
    np.testing.assert_array_equal(color_to_rgb(array_to_image(bgra, "bgra8")), rgb)
    gray = color_to_rgb(array_to_image(SAMPLES["mono8"], "mono8"))
    assert gray.shape == (5, 7, 3) and (gray == SAMPLES["mono8"][:, :, None]).all()
    with pytest.raises(ImageConversionError, match="not a colour image"):
        color_to_rgb(array_to_image(SAMPLES["16UC1"], "16UC1"))


def test_depth_16uc1_mm_and_32fc1_m_agree():
    mm = RNG.integers(300, 2000, (6, 8)).astype(np.uint16)
    mm[0, 0] = 0
    metres = mm.astype(np.float32) / 1000.0
    metres[0, 0] = np.nan
    metres[1, 1] = 0.0
    mm[1, 1] = 0
    from16 = depth_to_meters(array_to_image(mm, "16UC1"))
    from32 = depth_to_meters(array_to_image(metres, "32FC1"))
    assert from16.dtype == np.float32 and from32.dtype == np.float32
    np.testing.assert_allclose(from16, from32, rtol=1e-6, equal_nan=True)
    assert np.isnan(from16[0, 0]) and np.isnan(from16[1, 1]) and np.isnan(from32[1, 1])
    assert depth_to_meters(array_to_image(mm, "mono16"))[2, 2] == pytest.approx(mm[2, 2] / 1000.0)


def test_32fc1_non_finite_and_non_positive_are_no_reading():
    depth = np.array([[1.0, np.inf, -np.inf], [np.nan, -0.5, 0.0]], np.float32)
    out = depth_to_meters(array_to_image(depth, "32FC1"))
    assert out[0, 0] == 1.0 and np.isnan(out).sum() == 5


def test_depth_rejects_non_depth_encodings():
    with pytest.raises(ImageConversionError, match=r"only 16UC1 \(mm\) and 32FC1 \(m\)"):
        depth_to_meters(array_to_image(SAMPLES["rgb8"], "rgb8"))


@pytest.mark.parametrize("msg, pattern", [
    (raw_image("yuv422", 2, 2, 4, bytes(8)), r"unsupported image encoding 'yuv422'; expected one of"),
    (raw_image("", 2, 2, 4, bytes(8)), r"unsupported image encoding ''"),
    (raw_image("rgb8", 0, 2, 6, b""), r"size must be positive, got width=2 height=0"),
    (raw_image("rgb8", 2, 0, 0, b""), r"size must be positive, got width=0 height=2"),
    (raw_image("rgb8", 2, 2, 5, bytes(10)), r"step 5 is smaller than width\*bytes_per_pixel = 2\*3 = 6"),
    (raw_image("16UC1", 2, 3, 6, bytes(11)), r"data has 11 bytes, expected step\*height = 6\*2 = 12"),
    (raw_image("32FC1", 4, 4, 16, b""), r"data has 0 bytes, expected step\*height = 16\*4 = 64"),
])
def test_malformed_images_raise_informative_errors(msg, pattern):
    with pytest.raises(ImageConversionError, match=pattern):
        image_to_array(msg)
    assert issubclass(ImageConversionError, ValueError)


@pytest.mark.parametrize("array, encoding, pattern", [
    (np.zeros((2, 2), np.uint8), "rgb8", r"needs an array of shape \(H, W, 3\), got \(2, 2\)"),
    (np.zeros((2, 2), np.float64), "32FC1", r"needs dtype float32, got float64"),
    (np.zeros((2, 2), np.uint16), "bayer_rggb8", r"unsupported image encoding"),
    (np.zeros((0, 2), np.uint16), "16UC1", r"size must be positive"),
])
def test_array_to_image_rejects_mismatches(array, encoding, pattern):
    with pytest.raises(ImageConversionError, match=pattern):
        array_to_image(array, encoding)


def test_camera_info_round_trip_and_backprojection():
    intrinsics = CameraIntrinsics(640, 480, 616.4, 616.2, 310.3, 236.6)
    info = intrinsics_to_camera_info(intrinsics, Header(stamp=TimeMsg(sec=1)), frame_id="cam")
    assert info.header.frame_id == "cam" and info.distortion_model == "plumb_bob"
    assert list(info.d) == [0.0] * 5 and list(info.r) == [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    assert list(info.p) == [616.4, 0.0, 310.3, 0.0, 0.0, 616.2, 236.6, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert camera_info_to_intrinsics(info) == intrinsics
    points = backproject(np.full((480, 640), 2.0, np.float32), camera_info_to_intrinsics(info))
    assert points[0, 0, 0] == pytest.approx(-310.3 * 2.0 / 616.4, rel=1e-5)


@pytest.mark.parametrize("change, pattern", [
    ({"k": [0.0] * 9}, r"no usable focal length \(fx=0.0, fy=0.0\)"),
    ({"k": [math.nan, 0, 320, 0, 500, 240, 0, 0, 1]}, r"no usable focal length"),
    ({"width": 0}, r"image size must be positive, got width=0 height=480"),
    ({"k": [500, 0, math.inf, 0, 500, 240, 0, 0, 1]}, r"non-finite principal point"),
])
def test_unusable_camera_info_is_rejected(change, pattern):
    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1])
    for name, value in change.items():
        setattr(info, name, value)
    with pytest.raises(CameraInfoError, match=pattern):
        camera_info_to_intrinsics(info)


def test_transform_and_pose_round_trips():
    matrix = transform_from_xyz_rpy((0.1, -0.2, 0.3), (0.4, -0.5, 2.9))
    np.testing.assert_allclose(transform_to_matrix(matrix_to_transform(matrix)), matrix, atol=1e-12)
    np.testing.assert_allclose(pose_to_matrix(matrix_to_pose(matrix)), matrix, atol=1e-12)
    stamped = matrix_to_transform_stamped(matrix, "world", "camera", TimeMsg(sec=5, nanosec=6))
    assert isinstance(stamped, TransformStamped)
    assert (stamped.header.frame_id, stamped.child_frame_id, stamped.header.stamp.nanosec) == ("world", "camera", 6)
    np.testing.assert_allclose(transform_to_matrix(stamped), matrix, atol=1e-12)
    quarter = matrix_to_transform(np.block([[rotation_about_z(math.pi / 2), np.zeros((3, 1))], [np.zeros(3), 1]]))
    assert quarter.rotation.z == pytest.approx(math.sqrt(0.5)) and quarter.rotation.w == pytest.approx(math.sqrt(0.5))


def test_stamp_conversions():
    assert stamp_to_seconds(TimeMsg(sec=12, nanosec=500_000_000)) == 12.5
    stamp = seconds_to_stamp(1700000000.123456789)
    assert stamp.sec == 1700000000 and abs(stamp.nanosec - 123456789) < 300
    assert seconds_to_stamp(0.9999999999) == TimeMsg(sec=1, nanosec=0)
    assert seconds_to_stamp(-0.25) == TimeMsg(sec=-1, nanosec=750_000_000)
    with pytest.raises(ValueError):
        seconds_to_stamp(math.nan)
