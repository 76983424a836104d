"""Debug messages an RViz user expects, built from plain numpy: point clouds and damage markers.

``points_to_pointcloud2`` / ``pointcloud2_to_points`` lay points out as sensor_msgs_py.point_cloud2's
``create_cloud`` / ``read_points`` do (packed float32 fields, height 1, little-endian), without needing
sensor_msgs_py. Colours use the PCL / RViz convention: one float32 field ``rgb`` whose 32 bits are the
integer ``r << 16 | g << 8 | b``.

The annotated image is drawn by ``visualization/drawing.py`` (shared with the HTML report); publish it with
``conversions.array_to_image(image, "rgb8", header)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

SPHERE_DIAMETER = 0.02    # m
TEXT_HEIGHT = 0.015       # m, of the marker text's capital letters

_POINTFIELD_DTYPES = {PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2",
                      PointField.UINT16: "u2", PointField.INT32: "i4", PointField.UINT32: "u4",
                      PointField.FLOAT32: "f4", PointField.FLOAT64: "f8"}


# -- point clouds ------------------------------------------------------------------------------------
class CloudPoints(NamedTuple):
    """What ``pointcloud2_to_points`` reads back."""

    points: np.ndarray              # (N, 3) float32
    colors: np.ndarray | None       # (N, 3) uint8 RGB, when the cloud has an ``rgb`` field
    intensity: np.ndarray | None    # (N,) float32, when the cloud has an ``intensity`` field


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """(N,) float32 whose bits are ``r << 16 | g << 8 | b``: the ``rgb`` field RViz and PCL read."""
    colors = np.asarray(colors, np.uint32)
    packed = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    return packed.astype("<u4").view("<f4")


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB of a packed ``rgb`` float32 field."""
    bits = np.ascontiguousarray(rgb, np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=1).astype(np.uint8)


def points_to_pointcloud2(points: np.ndarray, frame_id: str, stamp: TimeMsg,
                          colors: np.ndarray | None = None,
                          intensity: np.ndarray | None = None) -> PointCloud2:
    """An unorganised (height 1) PointCloud2 with float32 x, y, z, then ``rgb`` and/or ``intensity``.

    ``is_dense`` is True only when every coordinate is finite. Large clouds are slow to publish from
    Python: thin them first.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    count = len(points)
    names = ["x", "y", "z"]
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (count, 3):
            raise ValueError(f"colors must have shape ({count}, 3), got {colors.shape}")
        names.append("rgb")
    if intensity is not None:
        intensity = np.asarray(intensity, dtype=float).reshape(-1)
        if intensity.shape != (count,):
            raise ValueError(f"intensity must have {count} values, got {intensity.shape[0]}")
        names.append("intensity")
    dtype = np.dtype([(name, "<f4") for name in names])
    cloud = np.empty(count, dtype)
    for axis, name in enumerate("xyz"):
        cloud[name] = points[:, axis]
    if colors is not None:
        cloud["rgb"] = pack_rgb(colors)
    if intensity is not None:
        cloud["intensity"] = intensity

    msg = PointCloud2()
    msg.header.frame_id, msg.header.stamp = frame_id, stamp
    msg.height, msg.width = 1, count
    msg.fields = [PointField(name=name, offset=dtype.fields[name][1], datatype=PointField.FLOAT32, count=1)
                  for name in names]
    msg.is_bigendian = False
    msg.point_step = dtype.itemsize
    msg.row_step = dtype.itemsize * count
    msg.is_dense = bool(np.isfinite(points).all())
    msg.data = cloud.tobytes()
    return msg


def pointcloud2_to_points(msg: PointCloud2) -> CloudPoints:
    """Points (and colours / intensity when present) of any PointCloud2 with float x, y, z fields.

    Honours field offsets, ``point_step``, ``row_step`` padding and ``is_bigendian``; points are in row
    order; non-finite points are kept.
    """
    order = ">" if msg.is_bigendian else "<"
    fields = {field.name: field for field in msg.fields}
    missing = {"x", "y", "z"} - set(fields)
    if missing:
        raise ValueError(f"point cloud has no {', '.join(sorted(missing))} field")
    wanted = [name for name in ("x", "y", "z", "rgb", "intensity") if name in fields]
    dtype = np.dtype({"names": wanted,
                      "formats": [order + _POINTFIELD_DTYPES[fields[name].datatype] for name in wanted],
                      "offsets": [fields[name].offset for name in wanted], "itemsize": msg.point_step})
    height, width = int(msg.height), int(msg.width)
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if data.size < msg.row_step * height or msg.row_step < msg.point_step * width:
        raise ValueError(f"point cloud data has {data.size} bytes for {height} rows of {msg.row_step} bytes "
                         f"({width} points of {msg.point_step} bytes)")
    rows = data[:msg.row_step * height].reshape(height, msg.row_step)[:, :msg.point_step * width]
    cloud = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    points = np.stack([cloud[name].astype(np.float32) for name in "xyz"], axis=1)
    colors = unpack_rgb(cloud["rgb"].astype(np.float32)) if "rgb" in fields else None
    intensity = cloud["intensity"].astype(np.float32) if "intensity" in fields else None
    return CloudPoints(points, colors, intensity)


# -- markers -----------------------------------------------------------------------------------------
def score_rgba(score: float) -> tuple[float, float, float, float]:
    """Green at 0, yellow at 0.5, red at 1."""
    score = float(np.clip(score, 0.0, 1.0))
    return min(1.0, 2.0 * score), min(1.0, 2.0 * (1.0 - score)), 0.0, 1.0


def damage_markers(locations: Sequence[np.ndarray], labels: Sequence[str], scores: Sequence[float],
                   frame_id: str, stamp: TimeMsg, ns: str = "damage", lifetime_s: float = 5.0) -> MarkerArray:
    """DELETEALL, then per damage a sphere coloured by score (id 2k) and its "label score" text (id 2k+1)."""
    if not len(locations) == len(labels) == len(scores):
        raise ValueError(f"need as many labels and scores as locations, got {len(locations)}, {len(labels)}, "
                         f"{len(scores)}")
    sec, nanosec = divmod(int(round(lifetime_s * 1e9)), 1_000_000_000)
    lifetime = DurationMsg(sec=sec, nanosec=nanosec)
    clear = Marker(action=Marker.DELETEALL, ns=ns)
    clear.header.frame_id, clear.header.stamp = frame_id, stamp
    markers = [clear]
    for k, (location, label, score) in enumerate(zip(locations, labels, scores)):
        x, y, z = (float(v) for v in np.asarray(location, float).reshape(3))
        r, g, b, a = score_rgba(score)
        sphere = Marker(ns=ns, id=2 * k, type=Marker.SPHERE, action=Marker.ADD, lifetime=lifetime)
        sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z = x, y, z
        sphere.pose.orientation.w = 1.0
        sphere.scale.x = sphere.scale.y = sphere.scale.z = SPHERE_DIAMETER
        sphere.color.r, sphere.color.g, sphere.color.b, sphere.color.a = r, g, b, a
        text = Marker(ns=ns, id=2 * k + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, lifetime=lifetime,
                      text=f"{label} {float(score):.2f}")
        text.pose.position.x, text.pose.position.y = x, y
        text.pose.position.z = z + SPHERE_DIAMETER
        text.pose.orientation.w = 1.0
        text.scale.z = TEXT_HEIGHT
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        for marker in (sphere, text):
            marker.header.frame_id, marker.header.stamp = frame_id, stamp
        markers.extend((sphere, text))
    return MarkerArray(markers=markers)
