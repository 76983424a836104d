"""Parallel-gripper geometry and frame conventions shared by the node, the simulated cell and the URDF.

Frames (REP 103 for the camera):
- ``gripper_link``: origin at the centre of the palm face; +z is the approach axis, pointing from the palm
  towards the fingertips (into the held item); +y is the closing axis; x = y cross z.
- ``gripper_left_finger`` / ``gripper_right_finger``: at the centre of each finger's box, left at +y.
  A real cell publishes them from joint states (robot_state_publisher); the node removes every point inside
  each finger box (inflated by a margin) so the fingers are never mistaken for the item.
- The held item occupies z > ``palm_clearance`` in ``gripper_link``; points closer to the palm are the palm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.transforms import make_transform


@dataclass(frozen=True)
class GripperGeometry:
    """Dimensions (metres) of a two-finger parallel gripper, matching urdf/ and the simulated cell."""

    finger_size: tuple[float, float, float] = (0.022, 0.012, 0.065)  # x, y (thickness), z (length)
    palm_radius: float = 0.045
    palm_clearance: float = 0.004
    max_opening: float = 0.16
    finger_frames: tuple[str, str] = ("gripper_left_finger", "gripper_right_finger")

    def finger_transforms(self, opening: float) -> tuple[np.ndarray, np.ndarray]:
        """gripper_link <- finger transforms (left, right) for a given inner opening (metres)."""
        opening = float(np.clip(opening, 0.0, self.max_opening))
        offset_y = opening / 2.0 + self.finger_size[1] / 2.0
        z = self.finger_size[2] / 2.0
        return make_transform((0.0, offset_y, z)), make_transform((0.0, -offset_y, z))


def points_in_box(points: np.ndarray, box_from_frame: np.ndarray, size, margin=0.0) -> np.ndarray:
    """Mask of (N, 3) points (in some frame F) inside a box of ``size`` centred on a frame B.

    ``box_from_frame`` is the B <- F transform (the inverse of the box's pose in F); ``margin`` grows the box
    on every side, by one value or by (x, y, z).
    """
    local = points @ box_from_frame[:3, :3].T + box_from_frame[:3, 3]
    half = np.broadcast_to(np.asarray(size, dtype=float) / 2.0 + margin, (3,))
    return within_bounds(local, -half, half)


def within_bounds(points: np.ndarray, low, high) -> np.ndarray:
    """Mask of (..., 3) points with ``low <= point <= high`` on every axis (bounds inclusive)."""
    # Three column comparisons instead of np.all(..., axis=-1): the same mask, a seventh of the time on the
    # tens of thousands of points a view has (the reduction over a length-3 axis is slow in numpy).
    inside = (points[..., 0] >= low[0]) & (points[..., 0] <= high[0])
    inside &= (points[..., 1] >= low[1]) & (points[..., 1] <= high[1])
    inside &= (points[..., 2] >= low[2]) & (points[..., 2] <= high[2])
    return inside
