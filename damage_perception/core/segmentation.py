"""Segment the item held in the gripper from one depth view.

Depth -> points (camera frame) -> gripper frame -> crop box -> remove finger boxes -> statistical outlier
removal -> largest DBSCAN cluster = the item -> back to an image mask. Clustering runs on a voxel grid
(a few thousand voxels instead of tens of thousands of points) and the result is mapped back to every pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import open3d as o3d

from damage_perception.core.gripper import GripperGeometry, points_in_box
from damage_perception.core.transforms import apply, invert


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of :func:`segment_item` (metres unless stated)."""

    crop_min: tuple[float, float, float] = (-0.16, -0.16, 0.0)  # box around the item, in the gripper frame
    crop_max: tuple[float, float, float] = (0.16, 0.16, 0.32)
    finger_margin: float = 0.008       # finger boxes are inflated by this much before removal
    voxel_size: float = 0.004
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 2.5
    cluster_eps: float = 0.012         # DBSCAN neighbourhood; > voxel diagonal so a surface stays connected
    cluster_min_points: int = 6
    min_item_points: int = 400         # fewer pixels than this on the largest cluster: "no item"
    mask_closing_px: int = 5           # closes the pixel holes that depth dropouts leave in the mask


@dataclass
class ItemSegment:
    """The item found in one view (``found`` False with ``reason`` when there is none)."""

    found: bool
    mask: np.ndarray                   # (H, W) bool, the item's pixels
    points: np.ndarray                 # (N, 3) item points in the gripper frame
    pixels: np.ndarray                 # (N,) flat pixel index of each point
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # points left after each stage, for diagnostics


def segment_item(points_camera: np.ndarray, gripper_from_camera: np.ndarray,
                 finger_poses: list[np.ndarray], gripper: GripperGeometry,
                 config: SegmentationConfig = SegmentationConfig()) -> ItemSegment:
    """Find the held item in an organised (H, W, 3) cloud of camera-frame points (NaN = no reading).

    ``gripper_from_camera`` maps camera points into the gripper frame; ``finger_poses`` are the
    gripper <- finger transforms at the same time.
    """
    height, width = points_camera.shape[:2]
    flat = points_camera.reshape(-1, 3)
    pixels = np.flatnonzero(np.isfinite(flat[:, 2]))
    counts = {"valid": int(pixels.size)}
    points = apply(gripper_from_camera, flat[pixels])

    keep = _inside_crop(points, gripper, config)
    counts["cropped"] = int(keep.sum())
    for finger_pose in finger_poses:
        keep &= ~points_in_box(points, invert(finger_pose), gripper.finger_size, config.finger_margin)
    counts["without_fingers"] = int(keep.sum())
    points, pixels = points[keep], pixels[keep]

    keep = _largest_cluster(points, config)
    points, pixels = points[keep], pixels[keep]
    counts["item"] = int(pixels.size)
    empty_mask = np.zeros((height, width), dtype=bool)
    if pixels.size < config.min_item_points:
        reason = (f"no item in the gripper: {pixels.size} points between the fingers "
                  f"(need {config.min_item_points})")
        return ItemSegment(False, empty_mask, points, pixels, reason, counts)
    return ItemSegment(True, _pixel_mask(pixels, height, width, config.mask_closing_px),
                       points, pixels, "", counts)


def _inside_crop(points: np.ndarray, gripper: GripperGeometry, config: SegmentationConfig) -> np.ndarray:
    low = np.array(config.crop_min, dtype=float)
    low[2] = max(low[2], gripper.palm_clearance)  # nearer the palm than this is the palm itself
    return np.all((points >= low) & (points <= np.array(config.crop_max)), axis=1)


def _largest_cluster(points: np.ndarray, config: SegmentationConfig) -> np.ndarray:
    """Mask of the points in the largest cluster of voxels that survives outlier removal."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    keys = np.floor(points / config.voxel_size).astype(np.int64)
    unique_keys, voxel_of_point = np.unique(keys, axis=0, return_inverse=True)
    voxel_of_point = voxel_of_point.reshape(-1)
    sums = np.zeros((len(unique_keys), 3))
    np.add.at(sums, voxel_of_point, points)
    voxel_counts = np.bincount(voxel_of_point, minlength=len(unique_keys))
    centres = sums / voxel_counts[:, None]

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres))
    kept_voxels = np.arange(len(centres))
    if len(centres) > config.outlier_neighbors:
        cloud, inlier_ids = cloud.remove_statistical_outlier(config.outlier_neighbors,
                                                             config.outlier_std_ratio)
        kept_voxels = np.asarray(inlier_ids, dtype=np.int64)
    if len(kept_voxels) == 0:
        return np.zeros(len(points), dtype=bool)
    labels = np.asarray(cloud.cluster_dbscan(config.cluster_eps, config.cluster_min_points))
    if labels.max(initial=-1) < 0:
        return np.zeros(len(points), dtype=bool)
    # The item is the cluster holding the most points (not voxels): dense near surfaces win.
    weights = voxel_counts[kept_voxels]
    valid = labels >= 0
    largest = np.argmax(np.bincount(labels[valid], weights=weights[valid]))
    in_item = np.zeros(len(centres), dtype=bool)
    in_item[kept_voxels[labels == largest]] = True
    return in_item[voxel_of_point]


def _pixel_mask(pixels: np.ndarray, height: int, width: int, closing_px: int) -> np.ndarray:
    mask = np.zeros(height * width, dtype=np.uint8)
    mask[pixels] = 1
    mask = mask.reshape(height, width)
    if closing_px > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (closing_px, closing_px))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return mask.astype(bool)


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(predicted, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(predicted, truth).sum() / union)
