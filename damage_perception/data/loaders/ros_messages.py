"""Conversions between ``rosbags`` message objects and numpy, without rclpy.

``rosbags`` deserialises CDR into its own dataclasses (same field names as the ROS messages); these helpers
turn them into the arrays of ``View`` and back. Encodings as in ``damage_perception.ros.conversions``:
color rgb8/bgr8/rgba8/bgra8/mono8; depth ``16UC1``/``mono16`` millimetres (0 = no reading) or ``32FC1``
metres (non-finite or <= 0 = no reading). Decoding is ``core.image_codec``'s (the same as the live node's):
depth comes back as float32 metres with NaN where there is no reading. ``step`` (row padding) and
``is_bigendian`` are honoured.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from damage_perception.core import image_codec
from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.transforms import matrix_to_quaternion, transform_from_quaternion

ENCODINGS = image_codec.ENCODINGS
DEPTH_MM_ENCODINGS = image_codec.DEPTH_MM_ENCODINGS

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
def _fields(msg: Any) -> tuple:
    data = msg.data if isinstance(msg.data, np.ndarray) else bytes(msg.data)
    return msg.encoding, msg.height, msg.width, msg.step, data, bool(msg.is_bigendian)


def image_to_array(msg: Any) -> np.ndarray:
    """Pixels of a sensor_msgs/Image as an (H, W) or (H, W, C) native-endian array (a copy)."""
    return image_codec.decode_pixels(*_fields(msg))


def color_to_rgb(msg: Any) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an rgb8, bgr8, rgba8, bgra8 or mono8 image."""
    return image_codec.decode_color(*_fields(msg))


def depth_to_meters(msg: Any) -> np.ndarray:
    """(H, W) float32 metres of a 16UC1/mono16 (mm) or 32FC1 (m) image; NaN = no reading (the codec's rule)."""
    return image_codec.decode_depth(*_fields(msg))


def array_to_image(array: np.ndarray, encoding: str, header_msg: Any, typestore: Typestore) -> Any:
    """sensor_msgs/Image holding ``array`` (little-endian, unpadded)."""
    dtype = image_codec.pixel_format(encoding).dtype
    height, width, step, data = image_codec.encode_pixels(np.asarray(array, dtype=np.dtype("<" + dtype)), encoding)
    return typestore.types[IMAGE](header=header_msg, height=height, width=width, encoding=encoding,
                                  is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8).copy())


depth_to_mm = image_codec.depth_to_mm


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
