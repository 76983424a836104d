"""Segment the item held in the gripper from one depth view.

Depth -> points (camera frame) -> gripper frame -> crop box -> remove finger boxes -> statistical outlier
removal -> largest DBSCAN cluster = the item -> its filled image silhouette is the mask; other clusters
seen inside that silhouette (the far wall through a hole) are part of the item too. Clustering runs on a
voxel grid (a few thousand voxels instead of tens of thousands of points), mapped back to every pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import open3d as o3d

from damage_perception.core.clustering import dbscan_labels
from damage_perception.core.gripper import GripperGeometry, points_in_box, within_bounds
from damage_perception.core.transforms import apply, invert


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of :func:`segment_item` (metres unless stated)."""

    crop_min: tuple[float, float, float] = (-0.16, -0.16, 0.0)  # box around the item, in the gripper frame
    crop_max: tuple[float, float, float] = (0.16, 0.16, 0.40)
    finger_margin: float = 0.008       # finger boxes grow this much along the closing axis (edge pixels) ...
    finger_side_margin: float = 0.003  # ... and this much across it, so the item face around a pad stays
    voxel_size: float = 0.004
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 2.5
    cluster_eps: float = 0.012         # DBSCAN neighbourhood; > voxel diagonal so a surface stays connected
    cluster_min_points: int = 6
    min_item_points: int = 150         # fewer points than this on the largest cluster: "no item"
    mask_closing_px: int = 5           # closes the gaps that depth dropouts leave along the mask edge
    touch_px: int = 3                  # other clusters this close to the item in the image are part of it ...
    min_attached_points: int = 100     # ... when they have at least this many points


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
    valid = np.isfinite(flat[:, 2])
    counts = {"valid": int(valid.sum())}
    # Cheap gate on depth alone before transforming: the crop box spans a known depth range.
    near, far = _depth_range_of_crop(invert(gripper_from_camera), gripper, config)
    pixels = np.flatnonzero(valid & (flat[:, 2] >= near) & (flat[:, 2] <= far))
    points = apply(gripper_from_camera, flat[pixels])

    keep = _inside_crop(points, gripper, config)
    points, pixels = points[keep], pixels[keep]
    counts["cropped"] = int(pixels.size)
    keep = np.ones(len(points), dtype=bool)
    for finger_pose in finger_poses:
        margin = (config.finger_side_margin, config.finger_margin, config.finger_side_margin)
        keep &= ~points_in_box(points, invert(finger_pose), gripper.finger_size, margin)
    points, pixels = points[keep], pixels[keep]
    counts["without_fingers"] = int(pixels.size)

    labels = _cluster_labels(points, config)
    main = labels == _largest_label(labels)
    empty_mask = np.zeros((height, width), dtype=bool)
    if main.sum() < config.min_item_points:
        counts["item"] = int(main.sum())
        reason = (f"no item in the gripper: {int(main.sum())} points between the fingers "
                  f"(need {config.min_item_points})")
        return ItemSegment(False, empty_mask, points[main], pixels[main], reason, counts)
    silhouette = _filled_silhouette(pixels[main], height, width, config.mask_closing_px)
    # Clusters that touch the item in the image belong to what the gripper holds (contents sticking out of
    # an opened flap, a torn-off flap); clusters inside its silhouette are seen through it (the far wall
    # through a hole).
    item = main | np.isin(labels, _touching_labels(labels, pixels, silhouette, config))
    if item.sum() > main.sum():
        silhouette = _filled_silhouette(pixels[item], height, width, config.mask_closing_px)
    keep = item | ((labels >= 0) & silhouette.reshape(-1)[pixels])
    counts["item"] = int(keep.sum())
    return ItemSegment(True, silhouette, points[keep], pixels[keep], "", counts)


def _touching_labels(labels: np.ndarray, pixels: np.ndarray, silhouette: np.ndarray,
                     config: SegmentationConfig) -> np.ndarray:
    """Labels of the other sizeable clusters with a pixel next to the silhouette."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * config.touch_px + 1, 2 * config.touch_px + 1))
    near = cv2.dilate(silhouette.astype(np.uint8), kernel).reshape(-1).astype(bool)[pixels]
    sizes = np.bincount(labels[labels >= 0])
    candidates = np.unique(labels[near & (labels >= 0)])
    return candidates[sizes[candidates] >= config.min_attached_points]


def _crop_bounds(gripper: GripperGeometry, config: SegmentationConfig) -> tuple[np.ndarray, np.ndarray]:
    low = np.array(config.crop_min, dtype=float)
    low[2] = max(low[2], gripper.palm_clearance)  # nearer the palm than this is the palm itself
    return low, np.array(config.crop_max, dtype=float)


def _depth_range_of_crop(camera_from_gripper: np.ndarray, gripper: GripperGeometry,
                         config: SegmentationConfig) -> tuple[float, float]:
    low, high = _crop_bounds(gripper, config)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                        for z in (low[2], high[2])])
    depths = apply(camera_from_gripper, corners)[:, 2]
    return float(depths.min()), float(depths.max())


def _inside_crop(points: np.ndarray, gripper: GripperGeometry, config: SegmentationConfig) -> np.ndarray:
    low, high = _crop_bounds(gripper, config)
    return within_bounds(points, low, high)


def _cluster_labels(points: np.ndarray, config: SegmentationConfig) -> np.ndarray:
    """DBSCAN cluster of each point (-1: statistical outlier or noise), computed on a voxel grid."""
    labels = np.full(len(points), -1)
    if len(points) == 0:
        return labels
    voxel_of_point, centres = voxel_centres(points, config.voxel_size)
    num_voxels = len(centres)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres))
    kept_voxels = np.arange(num_voxels)
    if num_voxels > config.outlier_neighbors:
        cloud, inlier_ids = cloud.remove_statistical_outlier(config.outlier_neighbors,
                                                             config.outlier_std_ratio)
        kept_voxels = np.asarray(inlier_ids, dtype=np.int64)
    voxel_labels = np.full(num_voxels, -1)
    if len(kept_voxels):
        voxel_labels[kept_voxels] = dbscan_labels(np.asarray(cloud.points), config.cluster_eps,
                                                  config.cluster_min_points)
    return voxel_labels[voxel_of_point]


def _largest_label(labels: np.ndarray) -> int:
    """The cluster holding the most points (not voxels: dense near surfaces win); -2 if none."""
    clustered = labels[labels >= 0]
    return int(np.argmax(np.bincount(clustered))) if clustered.size else -2


def voxel_centres(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """The voxel of each of the (N, 3) ``points`` and the mean point of each occupied voxel ((V, 3))."""
    voxel_of_point, num_voxels = _voxel_index(points, voxel_size)
    voxel_counts = np.bincount(voxel_of_point, minlength=num_voxels)
    centres = np.stack([np.bincount(voxel_of_point, points[:, axis], num_voxels) for axis in range(3)],
                       axis=1) / voxel_counts[:, None]
    return voxel_of_point, centres


def _voxel_index(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, int]:
    """Index of each point's voxel (0..num_voxels-1) and the number of occupied voxels."""
    keys = np.floor(points / voxel_size).astype(np.int64)
    keys -= keys.min(axis=0)
    extent = keys.max(axis=0) + 1
    flat_keys = (keys[:, 0] * extent[1] + keys[:, 1]) * extent[2] + keys[:, 2]  # one int per voxel: fast unique
    _, voxel_of_point = np.unique(flat_keys, return_inverse=True)
    return voxel_of_point.reshape(-1), int(voxel_of_point.max()) + 1


def _filled_silhouette(pixels: np.ndarray, height: int, width: int, closing_px: int) -> np.ndarray:
    """The item's image region: its pixels, closed over dropouts, with enclosed holes filled."""
    mask = np.zeros(height * width, dtype=np.uint8)
    mask[pixels] = 1
    mask = mask.reshape(height, width)
    if closing_px > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (closing_px, closing_px))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
    return mask.astype(bool)


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(predicted, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(predicted, truth).sum() / union)
