"""Conversions between ``rosbags`` message objects and numpy, without rclpy.

``rosbags`` deserialises CDR into its own dataclasses (same field names as the ROS messages); these helpers
turn them into the arrays of ``View`` and back. Encodings as in ``damage_perception.ros.conversions``:
color rgb8/bgr8/rgba8/bgra8/mono8; depth ``16UC1``/``mono16`` millimetres (0 = no reading) or ``32FC1``
metres (non-finite or <= 0 = no reading). Depth comes back as float32 metres with **0** where there is no
reading (as in our dataset format). ``step`` (row padding) and ``is_bigendian`` are honoured.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.transforms import matrix_to_quaternion, transform_from_quaternion

# numpy base type and channels of each supported encoding
ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "mono8": ("u1", 1), "8UC1": ("u1", 1), "mono16": ("u2", 1), "16UC1": ("u2", 1), "32FC1": ("f4", 1),
}
DEPTH_MM_ENCODINGS = ("16UC1", "mono16")

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
STRING = "std_msgs/msg/String"
INTERFACES_PACKAGE = "damage_perception_interfaces"
DAMAGE_VERDICT = f"{INTERFACES_PACKAGE}/msg/DamageVerdict"


def default_typestore() -> Typestore:
    """The ROS 2 Jazzy typestore of ``rosbags`` (has sensor_msgs, tf2_msgs, std_msgs)."""
    return get_typestore(Stores.ROS2_JAZZY)


def interface_msg_dir() -> Path:
    """The .msg files of ``damage_perception_interfaces``: the source tree's, else the installed share."""
    source = Path(__file__).resolve().parents[3] / "interfaces" / INTERFACES_PACKAGE / "msg"
    if source.is_dir():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(INTERFACES_PACKAGE)) / "msg"


def perception_typestore() -> Typestore:
    """The default typestore with our messages (DamageVerdict, DamageTypeScores) registered from their .msg
    files, so that a recording of the cell's ``verdict`` topic carries its own definition."""
    typestore = default_typestore()
    types = {}
    for path in sorted(interface_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{INTERFACES_PACKAGE}/msg/{path.stem}"))
    typestore.register(types)
    return typestore


def register_bag_types(typestore: Typestore, connections: Iterable[Any]) -> Typestore:
    """Register the message definitions a bag carries for the types ``typestore`` does not know yet."""
    types = {}
    for connection in connections:
        msgdef = getattr(connection, "msgdef", None)
        if connection.msgtype not in typestore.fielddefs and msgdef is not None and msgdef.data \
                and msgdef.format == MessageDefinitionFormat.MSG:
            types.update(get_types_from_msg(msgdef.data, connection.msgtype))
    if types:
        typestore.register({name: t for name, t in types.items() if name not in typestore.fielddefs})
    return typestore


# -- time ------------------------------------------------------------------------------------------
def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int, typestore: Typestore) -> Any:
    """builtin_interfaces/Time of ``ns`` nanoseconds."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return typestore.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def seconds_to_ns(seconds: float) -> int:
    """Nanoseconds of ``seconds``, rounded."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot make a stamp of {seconds} seconds")
    return int(round(seconds * 1e9))


def header(ns: int, frame_id: str, typestore: Typestore) -> Any:
    """std_msgs/Header."""
    return typestore.types["std_msgs/msg/Header"](stamp=ns_to_stamp(ns, typestore), frame_id=frame_id)


# -- images ----------------------------------------------------------------------------------------
def image_to_array(msg: Any) -> np.ndarray:
    """Pixels of a sensor_msgs/Image as an (H, W) or (H, W, C) native-endian array (a copy)."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding '{msg.encoding}'; expected one of {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * np.dtype(dtype).itemsize * channels
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data, np.uint8)
    if height <= 0 or width <= 0 or step < row_bytes or data.size < step * height:
        raise ValueError(f"inconsistent image: {width}x{height}, step {step}, {data.size} bytes, "
                         f"encoding '{msg.encoding}'")
    rows = np.ascontiguousarray(data[:step * height].reshape(height, step)[:, :row_bytes])
    pixels = rows.view(np.dtype((">" if msg.is_bigendian else "<") + dtype)).astype(np.dtype("=" + dtype))
    return pixels.reshape((height, width) if channels == 1 else (height, width, channels))


def color_to_rgb(msg: Any) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an rgb8, bgr8, rgba8, bgra8 or mono8 image."""
    pixels = image_to_array(msg)
    if msg.encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    if msg.encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if msg.encoding != "rgb8":
        raise ValueError(f"encoding '{msg.encoding}' is not a colour image")
    return pixels


def depth_to_meters(msg: Any) -> np.ndarray:
    """(H, W) float32 metres of a 16UC1/mono16 (mm) or 32FC1 (m) image; 0 = no reading."""
    pixels = image_to_array(msg)
    if msg.encoding in DEPTH_MM_ENCODINGS:
        return pixels.astype(np.float32) * np.float32(0.001)
    if msg.encoding != "32FC1":
        raise ValueError(f"encoding '{msg.encoding}' is not a depth image (16UC1 mm or 32FC1 m)")
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(pixels) & (pixels > 0), pixels, 0).astype(np.float32)


def array_to_image(array: np.ndarray, encoding: str, header_msg: Any, typestore: Typestore) -> Any:
    """sensor_msgs/Image holding ``array`` (little-endian, unpadded)."""
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=np.dtype("<" + dtype))
    if array.shape[2:] != ((channels,) if channels > 1 else ()) or array.ndim != (3 if channels > 1 else 2):
        raise ValueError(f"encoding '{encoding}' needs {channels} channel(s), got shape {array.shape}")
    height, width = array.shape[:2]
    return typestore.types[IMAGE](
        header=header_msg, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * np.dtype(dtype).itemsize * channels, data=array.view(np.uint8).reshape(-1))


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """uint16 millimetres of a depth image in metres; 0 for no reading and beyond 65.535 m."""
    depth = np.asarray(depth_m, np.float64)
    mm = np.where(np.isfinite(depth) & (depth > 0), np.round(depth * 1000.0), 0.0)
    return np.where(mm <= 65535, mm, 0).astype(np.uint16)


# -- camera_info -----------------------------------------------------------------------------------
def camera_info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """Pinhole intrinsics from K, width and height (distortion ignored: images are assumed rectified)."""
    k = np.asarray(msg.k, dtype=float).reshape(3, 3)
    return CameraIntrinsics.from_matrix(k, int(msg.width), int(msg.height))


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, header_msg: Any, typestore: Typestore) -> Any:
    """CameraInfo of an undistorted pinhole camera: K, P = [K | 0], R = I, plumb_bob with D = 0."""
    types = typestore.types
    k = intrinsics.matrix
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[CAMERA_INFO](
        header=header_msg, height=intrinsics.height, width=intrinsics.width, distortion_model="plumb_bob",
        d=np.zeros(5), k=k.ravel().astype(float), r=np.eye(3).ravel(),
        p=np.hstack([k, np.zeros((3, 1))]).ravel().astype(float), binning_x=0, binning_y=0, roi=roi)


# -- transforms ------------------------------------------------------------------------------------
def transform_to_matrix(transform: Any) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform."""
    t, q = transform.translation, transform.rotation
    return transform_from_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def matrix_to_transform_stamped(matrix: np.ndarray, parent: str, child: str, ns: int,
                                typestore: Typestore) -> Any:
    """geometry_msgs/TransformStamped parent <- child of a rigid 4x4 matrix."""
    types = typestore.types
    matrix = np.asarray(matrix, dtype=float)
    x, y, z, w = (float(v) for v in matrix_to_quaternion(matrix[:3, :3]))
    tx, ty, tz = (float(v) for v in matrix[:3, 3])
    transform = types["geometry_msgs/msg/Transform"](
        translation=types["geometry_msgs/msg/Vector3"](x=tx, y=ty, z=tz),
        rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
    return types["geometry_msgs/msg/TransformStamped"](header=header(ns, parent, typestore),
                                                       child_frame_id=child, transform=transform)
