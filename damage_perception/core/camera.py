"""Pinhole camera model and depth back-projection (REP 103 optical frame: x right, y down, z forward)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.image_codec import valid_depth


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of a rectified (or undistorted-enough) image."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not (np.isfinite(self.fx) and np.isfinite(self.fy) and self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive and finite, got fx={self.fx} fy={self.fy}")

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> CameraIntrinsics:
        """Build from a 3x3 K matrix."""
        k = np.asarray(k, dtype=float).reshape(3, 3)
        return cls(width=int(width), height=int(height), fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2])

    def scaled(self, factor: float) -> CameraIntrinsics:
        """Intrinsics of the same camera with the image resized by ``factor``."""
        return CameraIntrinsics(
            width=int(round(self.width * factor)), height=int(round(self.height * factor)),
            fx=self.fx * factor, fy=self.fy * factor,
            cx=(self.cx + 0.5) * factor - 0.5, cy=(self.cy + 0.5) * factor - 0.5)


def backproject(depth_m: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Turn a depth image in metres into an (H, W, 3) array of points in the optical frame.

    Pixels without a reading (zero, negative or non-finite depth) become NaN.
    X = (u - cx) * z / fx, Y = (v - cy) * z / fy, Z = z.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]}, camera_info says "
                         f"{intrinsics.width}x{intrinsics.height}")
    valid = valid_depth(depth)
    z = np.where(valid, depth, np.nan).astype(np.float32)
    u = np.arange(intrinsics.width, dtype=np.float32)[None, :]
    v = np.arange(intrinsics.height, dtype=np.float32)[:, None]
    x = (u - intrinsics.cx) * z / intrinsics.fx
    y = (v - intrinsics.cy) * z / intrinsics.fy
    return np.stack([x, y, z], axis=-1)


def project(points: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Project (N, 3) optical-frame points to (N, 2) pixel coordinates (u, v); points behind give NaN."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    z = np.where(points[:, 2] > 0, points[:, 2], np.nan)
    u = intrinsics.fx * points[:, 0] / z + intrinsics.cx
    v = intrinsics.fy * points[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=-1)
