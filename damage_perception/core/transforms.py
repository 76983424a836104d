"""Rigid transforms as 4x4 matrices, quaternions in ROS order (x, y, z, w), and their interpolation.

transforms3d writes quaternions (w, x, y, z); geometry_msgs/Quaternion is (x, y, z, w). Everything in this
package uses the ROS order, and converts at the one place it calls transforms3d.
"""
from __future__ import annotations

import numpy as np
import transforms3d.axangles as ta
import transforms3d.euler as te
import transforms3d.quaternions as tq


def quaternion_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a (x, y, z, w) quaternion (normalised first)."""
    x, y, z, w = np.asarray(q_xyzw, dtype=float)
    norm = np.sqrt(x * x + y * y + z * z + w * w)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {q_xyzw} has no direction")
    return tq.quat2mat([w / norm, x / norm, y / norm, z / norm])


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion of a 3x3 rotation matrix, with w >= 0."""
    w, x, y, z = tq.mat2quat(np.asarray(rotation, dtype=float)[:3, :3])
    q = np.array([x, y, z, w])
    return -q if w < 0 else q


def make_transform(translation=(0.0, 0.0, 0.0), rotation: np.ndarray | None = None) -> np.ndarray:
    """4x4 homogeneous transform from a translation and a 3x3 rotation (identity if None)."""
    t = np.eye(4)
    if rotation is not None:
        t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def transform_from_xyz_rpy(xyz, rpy) -> np.ndarray:
    """4x4 transform from a URDF-style origin: xyz and fixed-axis roll, pitch, yaw."""
    return make_transform(xyz, te.euler2mat(*rpy, axes="sxyz"))


def transform_from_quaternion(translation, q_xyzw) -> np.ndarray:
    """4x4 transform from a translation and a (x, y, z, w) quaternion."""
    return make_transform(translation, quaternion_to_matrix(q_xyzw))


def invert(transform: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    inv = np.eye(4)
    r = transform[:3, :3]
    inv[:3, :3] = r.T
    inv[:3, 3] = -r.T @ transform[:3, 3]
    return inv


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (..., 3) points."""
    points = np.asarray(points)
    return points @ transform[:3, :3].T + transform[:3, 3]


def rotation_about_axis(axis: np.ndarray, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about ``axis`` (normalised first)."""
    return ta.axangle2mat(np.asarray(axis, dtype=float), angle)


def rotation_about_z(angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def slerp(q0_xyzw: np.ndarray, q1_xyzw: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation between two (x, y, z, w) quaternions, the short way round."""
    q0 = np.asarray(q0_xyzw, dtype=float) / np.linalg.norm(q0_xyzw)
    q1 = np.asarray(q1_xyzw, dtype=float) / np.linalg.norm(q1_xyzw)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: linear interpolation is exact enough and avoids 0/0
        q = q0 + fraction * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    return (np.sin((1 - fraction) * theta) * q0 + np.sin(fraction * theta) * q1) / np.sin(theta)


def interpolate_transform(t0: np.ndarray, t1: np.ndarray, fraction: float) -> np.ndarray:
    """Interpolate two rigid transforms: lerp the translation, slerp the rotation."""
    q = slerp(matrix_to_quaternion(t0[:3, :3]), matrix_to_quaternion(t1[:3, :3]), fraction)
    translation = (1 - fraction) * t0[:3, 3] + fraction * t1[:3, 3]
    return transform_from_quaternion(translation, q)


def rotation_angle_between(t0: np.ndarray, t1: np.ndarray) -> float:
    """Angle (rad) of the relative rotation between two transforms."""
    r = t0[:3, :3].T @ t1[:3, :3]
    return float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
