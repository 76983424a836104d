"""Conversions between ROS messages and numpy: images (cv_bridge-like), camera_info, transforms, stamps.

``image_to_array`` / ``array_to_image`` mirror cv_bridge's ``imgmsg_to_cv2(msg, "passthrough")`` /
``cv2_to_imgmsg(array, encoding)`` for the encodings this package meets, without OpenCV. Differences from
cv_bridge, on purpose: no colour conversion on the way in (use ``color_to_rgb``), the result is always a
native-endian copy that owns its memory, and every malformed message raises ``ImageConversionError`` that
names the bad field and what was expected (cv_bridge would raise an opaque ``CvBridgeError``/numpy error).

Transforms are 4x4 homogeneous matrices and quaternions are (x, y, z, w), as in ``core.transforms``.

Lens distortion: ``camera_info_to_intrinsics`` reads K only. When a driver publishes non-zero D (Orbbec colour,
RealSense D455 colour; registered depth is in the colour camera's distorted pixel grid), resample the images
with ``undistort_depth`` / ``undistort_color`` first: the result is the pinhole image of the same K.
``rgbd_to_arrays`` does the whole conversion of a synchronised colour/depth/camera_info frame, undistorting
when D is non-zero.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose, Quaternion, Transform, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from damage_perception.core import image_codec
from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.transforms import matrix_to_quaternion, transform_from_quaternion


class ConversionError(ValueError):
    """A message cannot be converted; the message says which field is wrong."""


class ImageConversionError(ConversionError):
    """A sensor_msgs/Image has an unsupported encoding or inconsistent size, step or data."""


class CameraInfoError(ConversionError):
    """A sensor_msgs/CameraInfo does not describe a usable pinhole camera."""


ENCODINGS = image_codec.ENCODINGS
DEPTH_MM_ENCODINGS = image_codec.DEPTH_MM_ENCODINGS
DEPTH_M_ENCODINGS = image_codec.DEPTH_M_ENCODINGS


def _decoded(decode, msg: Image) -> np.ndarray:
    """``decode`` (a ``core.image_codec`` function) over the message's fields; ImageConversionError on bad ones."""
    try:
        return decode(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
    except image_codec.ImageDecodeError as error:
        raise ImageConversionError(str(error)) from None


# -- images -----------------------------------------------------------------------------------------
def image_to_array(msg: Image) -> np.ndarray:
    """The pixels of ``msg`` as an (H, W) or (H, W, C) native-endian array (a copy).

    Honours ``step`` (row padding) and ``is_bigendian``; raises ImageConversionError on any inconsistency.
    """
    return _decoded(image_codec.decode_pixels, msg)


def array_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """An Image message holding ``array`` (little-endian, unpadded: step = width * bytes per pixel)."""
    try:
        spec = image_codec.pixel_format(encoding)
        array = np.asarray(array)
        if array.dtype != np.dtype(spec.dtype):
            raise ImageConversionError(f"encoding '{encoding}' needs dtype {np.dtype(spec.dtype)}, got {array.dtype}")
        height, width, step, data = image_codec.encode_pixels(array, encoding)
    except image_codec.ImageDecodeError as error:
        raise ImageConversionError(str(error)) from None
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data = height, width, encoding, 0, step, data
    return msg


def color_to_rgb(msg: Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from an rgb8, bgr8, rgba8, bgra8 or mono8 image."""
    return _decoded(image_codec.decode_color, msg)


def depth_to_meters(msg: Image) -> np.ndarray:
    """An (H, W) float32 depth image in metres, NaN where the sensor had no reading.

    16UC1 / mono16 are millimetres, 32FC1 metres; no reading is ``core.image_codec``'s one rule (not finite
    and positive: NaN, +-inf, negative, zero).
    """
    return _decoded(image_codec.decode_depth, msg)


# -- camera_info -----------------------------------------------------------------------------------
def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """Pinhole intrinsics from K, width and height.

    The distortion (D, distortion_model) is ignored: the model assumes an undistorted image. Drivers that
    publish non-zero D need ``undistort_depth`` (and ``undistort_color``) first; see ``is_distorted``.
    """
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"camera_info image size must be positive, got width={width} height={height}")
    k = np.asarray(msg.k, dtype=float)
    if k.shape != (9,):
        raise CameraInfoError(f"camera_info K must have 9 values, got {k.size}")
    fx, fy = k[0], k[4]
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise CameraInfoError(f"camera_info K has no usable focal length (fx={fx}, fy={fy}); "
                              "expected positive finite values (is the camera calibrated?)")
    if not (math.isfinite(k[2]) and math.isfinite(k[5])):
        raise CameraInfoError(f"camera_info K has a non-finite principal point (cx={k[2]}, cy={k[5]})")
    return CameraIntrinsics.from_matrix(k.reshape(3, 3), width, height)


# Distortion models of sensor_msgs/distortion_models.hpp whose coefficients OpenCV takes as they are
# (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tx, ty]]]]). Orbbec's driver labels 8 coefficients plumb_bob.
_OPENCV_MODELS = ("plumb_bob", "rational_polynomial")
_OPENCV_COEFF_COUNTS = (4, 5, 8, 12, 14)
_FISHEYE_MODELS = ("equidistant", "fisheye")


def distortion_of(msg: CameraInfo) -> tuple[str, np.ndarray]:
    """The distortion model (lower case) and coefficients D of a CameraInfo, checked to be usable.

    Returns ``("none", [])`` when D is empty or all zero, whatever the model name says.
    """
    d = np.asarray(msg.d, dtype=float).ravel()
    if d.size == 0 or not np.any(d):
        return "none", np.zeros(0)
    model = str(msg.distortion_model).strip().lower()
    if not np.all(np.isfinite(d)):
        raise CameraInfoError(f"camera_info D has non-finite coefficients: {d.tolist()}")
    if model in _OPENCV_MODELS and d.size in _OPENCV_COEFF_COUNTS:
        return model, d
    if model in _FISHEYE_MODELS and d.size == 4:
        return "equidistant", d
    raise CameraInfoError(f"camera_info distortion_model '{msg.distortion_model}' with {d.size} coefficients is "
                          f"not supported; expected plumb_bob / rational_polynomial with "
                          f"{'/'.join(map(str, _OPENCV_COEFF_COUNTS))} or equidistant with 4 (or all-zero D)")


def is_distorted(msg: CameraInfo) -> bool:
    """True when the images of ``msg`` need ``undistort_depth`` / ``undistort_color`` before K describes them."""
    return distortion_of(msg)[0] != "none"


@lru_cache(maxsize=8)
def _undistort_maps(model: str, d: tuple[float, ...], k: tuple[float, ...], width: int,
                    height: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps from the undistorted image of K (R = I) to the distorted image; cached per camera."""
    import cv2  # only cameras with lens distortion need OpenCV
    k_matrix, coeffs = np.asarray(k).reshape(3, 3), np.asarray(d)
    if model == "equidistant":
        return cv2.fisheye.initUndistortRectifyMap(k_matrix, coeffs, np.eye(3), k_matrix, (width, height),
                                                   cv2.CV_32FC1)
    return cv2.initUndistortRectifyMap(k_matrix, coeffs, np.eye(3), k_matrix, (width, height), cv2.CV_32FC1)


def _undistort(image: np.ndarray, msg: CameraInfo, nearest: bool, border: float) -> np.ndarray:
    model, d = distortion_of(msg)
    intrinsics = camera_info_to_intrinsics(msg)
    if image.shape[:2] != (intrinsics.height, intrinsics.width):
        raise CameraInfoError(f"image is {image.shape[1]}x{image.shape[0]}, camera_info says "
                              f"{intrinsics.width}x{intrinsics.height}")
    if model == "none":
        return image
    map_x, map_y = _undistort_maps(model, tuple(d), tuple(intrinsics.matrix.ravel()), intrinsics.width,
                                   intrinsics.height)
    import cv2
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def undistort_depth(depth_m: np.ndarray, camera_info: CameraInfo) -> np.ndarray:
    """A depth image (metres, NaN = no reading) resampled to the undistorted pinhole image of the same K.

    Nearest neighbour, so depths are moved, never blended across an edge; pixels that fall outside the
    distorted image become NaN. Returns ``depth_m`` itself when D is zero. Use the colour camera's
    camera_info for depth registered to colour.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ImageConversionError(f"depth must be a 2-D array, got shape {depth.shape}")
    return _undistort(depth, camera_info, True, float("nan"))


def undistort_color(rgb: np.ndarray, camera_info: CameraInfo) -> np.ndarray:
    """An (H, W, 3) uint8 image resampled (bilinear) to the undistorted pinhole image of the same K (black
    outside the distorted image); ``rgb`` itself when D is zero."""
    return _undistort(np.asarray(rgb), camera_info, False, 0.0)


def rgbd_to_arrays(color: Image, depth: Image, info: CameraInfo
                   ) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    """RGB (H, W, 3) uint8, depth (H, W) float32 metres and pinhole intrinsics of one synchronised RGB-D frame.

    Depth must be registered to colour (same size, described by the colour camera's camera_info), as
    realsense2_camera's ``aligned_depth_to_color`` and Orbbec's ``depth_registration`` publish it. When D is
    non-zero both images are resampled to the undistorted pinhole image of K, so the returned intrinsics
    describe them exactly; with zero D they are returned as converted. Raises ImageConversionError /
    CameraInfoError (both ValueError) naming what does not fit.
    """
    rgb, depth_m = color_to_rgb(color), depth_to_meters(depth)
    if rgb.shape[:2] != depth_m.shape:
        raise ImageConversionError(f"color image is {rgb.shape[1]}x{rgb.shape[0]} but depth image is "
                                   f"{depth_m.shape[1]}x{depth_m.shape[0]}; depth must be registered to color "
                                   "(realsense2_camera: align_depth.enable:=true; Orbbec: depth_registration:=true)")
    intrinsics = camera_info_to_intrinsics(info)
    if depth_m.shape != (intrinsics.height, intrinsics.width):
        raise CameraInfoError(f"images are {depth_m.shape[1]}x{depth_m.shape[0]} but camera_info says "
                              f"{intrinsics.width}x{intrinsics.height}; use the color camera's camera_info")
    if is_distorted(info):
        rgb, depth_m = undistort_color(rgb, info), undistort_depth(depth_m, info)
    return rgb, depth_m, intrinsics


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, header: Header | None = None,
                              frame_id: str | None = None) -> CameraInfo:
    """A CameraInfo of an undistorted pinhole camera: K, P = [K | 0], R = I, plumb_bob with D = 0."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    if frame_id is not None:
        msg.header.frame_id = frame_id
    msg.width, msg.height = intrinsics.width, intrinsics.height
    k = intrinsics.matrix
    msg.k = [float(v) for v in k.ravel()]
    msg.p = [float(v) for v in np.hstack([k, np.zeros((3, 1))]).ravel()]
    msg.r = [float(v) for v in np.eye(3).ravel()]
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    return msg


# -- geometry --------------------------------------------------------------------------------------
def transform_to_matrix(transform: Transform | TransformStamped) -> np.ndarray:
    """4x4 matrix of a Transform (or the transform of a TransformStamped)."""
    if isinstance(transform, TransformStamped):
        transform = transform.transform
    t, q = transform.translation, transform.rotation
    return transform_from_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def matrix_to_transform(matrix: np.ndarray) -> Transform:
    """Transform message of a rigid 4x4 matrix."""
    matrix = np.asarray(matrix, dtype=float)
    x, y, z, w = (float(v) for v in matrix_to_quaternion(matrix[:3, :3]))
    tx, ty, tz = (float(v) for v in matrix[:3, 3])
    return Transform(translation=Vector3(x=tx, y=ty, z=tz), rotation=Quaternion(x=x, y=y, z=z, w=w))


def matrix_to_transform_stamped(matrix: np.ndarray, parent_frame: str, child_frame: str,
                                stamp: TimeMsg | None = None) -> TransformStamped:
    """TransformStamped parent <- child (maps points in ``child_frame`` into ``parent_frame``)."""
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent_frame, child_frame
    if stamp is not None:
        msg.header.stamp = stamp
    msg.transform = matrix_to_transform(matrix)
    return msg


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """4x4 matrix of a Pose (the frame the pose is expressed in <- the posed frame)."""
    p, q = pose.position, pose.orientation
    return transform_from_quaternion((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))


def matrix_to_pose(matrix: np.ndarray) -> Pose:
    """Pose message of a rigid 4x4 matrix."""
    transform = matrix_to_transform(matrix)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (
        transform.translation.x, transform.translation.y, transform.translation.z)
    pose.orientation = transform.rotation
    return pose


# -- time ------------------------------------------------------------------------------------------
def stamp_to_seconds(stamp: TimeMsg) -> float:
    """Seconds of a builtin_interfaces/Time."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> TimeMsg:
    """builtin_interfaces/Time of ``seconds`` (rounded to the nanosecond)."""
    if not math.isfinite(seconds):
        raise ConversionError(f"cannot make a stamp of {seconds} seconds")
    sec, nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return TimeMsg(sec=sec, nanosec=nanosec)
