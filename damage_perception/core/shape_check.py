"""3D check of an item against its SKU's reference geometry.

The reference is the union of the gallery's item clouds (gripper frame). A view's item cloud is registered
to it with point-to-point ICP (grasps differ by millimetres and degrees), then two departures are measured:

- ``extra``: the share of the view's points farther than ``tolerance`` from the reference: material where a
  pristine item has none (contents breaking out, a spill, a torn flap, a crushed face);
- ``missing``: the share of reference points the camera should see (hidden-point removal from the camera
  position) that have no view point within ``tolerance``: a part of a set gone, a hole.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

TOLERANCE_M = 0.006
MAX_POINTS = 2500       # points of either cloud used (randomly thinned, seeded)
POINT_VOXEL = 0.003     # m; item clouds are thinned to this spacing (one point per cell)


@dataclass
class ReferenceShape:
    """A SKU's pristine geometry in the gripper frame."""

    points: np.ndarray      # (N, 3) float32

    @cached_property
    def tree(self) -> cKDTree:
        """Nearest-neighbour index of ``points``, built once per gallery rather than once per view."""
        return cKDTree(np.asarray(self.points, np.float64))

    @cached_property
    def center(self) -> np.ndarray:
        """Mean of ``points`` (the origin for an empty shape)."""
        return self.points.mean(axis=0) if len(self.points) else np.zeros(3)

    @cached_property
    def icp_target(self) -> o3d.geometry.PointCloud:
        """The thinned reference ICP registers views to (the same seeded thinning for every view)."""
        return _cloud(_thin(self.points, MAX_POINTS))


@dataclass
class ShapeScores:
    """How one view's cloud departs from the reference."""

    extra: float
    missing: float
    fitness: float          # ICP inlier share (within 2 x tolerance)
    location: np.ndarray | None  # gripper frame, centroid of the departing points


def thin_points(points: np.ndarray, voxel: float = POINT_VOXEL) -> np.ndarray:
    """One point (the first) per ``voxel``-sized cell."""
    if len(points) == 0:
        return np.zeros((0, 3), np.float32)
    cells = np.floor(points / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    # One int64 per cell: a 1-D unique is ~20x faster than unique(axis=0) on rows; same first indices.
    keys = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]
    _, first = np.unique(keys, return_index=True)
    return points[np.sort(first)].astype(np.float32)


def build_reference(clouds: list[np.ndarray], voxel: float = 0.003) -> ReferenceShape:
    """The reference shape from gallery clouds (gripper frame), thinned to ``voxel``."""
    points = np.concatenate([c for c in clouds if len(c)] or [np.zeros((0, 3), np.float32)])
    if len(points) == 0:
        return ReferenceShape(np.zeros((0, 3), np.float32))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return ReferenceShape(np.asarray(cloud.voxel_down_sample(voxel).points, np.float32))


def _thin(points: np.ndarray, limit: int) -> np.ndarray:
    if len(points) <= limit:
        return points
    return points[np.random.default_rng(0).choice(len(points), limit, replace=False)]


def _cloud(points: np.ndarray) -> o3d.geometry.PointCloud:
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))


def shape_scores(points: np.ndarray, camera_position: np.ndarray, reference: ReferenceShape,
                 tolerance: float = TOLERANCE_M) -> ShapeScores:
    """Register a view's item points (gripper frame) to the reference and measure extra and missing shares."""
    if len(points) < 20 or len(reference.points) < 20:
        return ShapeScores(0.0, 0.0, 0.0, None)
    # ICP runs on thinned clouds; the shares are measured against the full clouds, since a thinned
    # reference leaves gaps wider than the tolerance (pristine views then showed ~5 % "extra" points).
    query = _cloud(_thin(points, MAX_POINTS))
    target = reference.icp_target
    registration = _icp(query, target, 3 * tolerance)
    query.transform(registration.transformation)
    aligned = np.asarray(query.points)
    extra_mask = reference.tree.query(aligned)[0] > tolerance
    # Reference points the camera sees: the camera moved into the reference's frame with the registration.
    reference_points = np.asarray(target.points)
    diameter = float(np.linalg.norm(reference_points.max(axis=0) - reference_points.min(axis=0)))
    camera_in_target = (registration.transformation @ np.append(camera_position, 1.0))[:3]
    _, visible = target.hidden_point_removal(camera_in_target, diameter * 100)
    visible_points = reference_points[np.asarray(visible, int)]
    missing_mask = np.zeros(0, bool)
    if len(visible_points):
        full_query = _cloud(points).transform(registration.transformation)
        missing_mask = cKDTree(np.asarray(full_query.points)).query(visible_points)[0] > tolerance
    departing = np.concatenate([aligned[extra_mask], visible_points[missing_mask]])
    location = None
    if len(departing):
        location = (np.linalg.inv(registration.transformation) @ np.append(departing.mean(axis=0), 1.0))[:3]
    return ShapeScores(float(extra_mask.mean()), float(missing_mask.mean()) if len(missing_mask) else 0.0,
                       float(registration.fitness), location)


def _icp(query: o3d.geometry.PointCloud, target: o3d.geometry.PointCloud, distance: float,
         start: np.ndarray | None = None, iterations: int = 20):
    return o3d.pipelines.registration.registration_icp(
        query, target, distance, np.eye(4) if start is None else start,
        o3d.pipelines.registration.TransformationEstimationPointToPoint(),
        o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=iterations))


@dataclass
class Registration:
    """reference <- view (gripper frames) and how well it fits."""

    transform: np.ndarray   # 4x4
    fitness: float          # share of the view's points within the final correspondence distance


REGISTRATION_POINTS = 600   # the view's points ICP uses for the registered comparison (seeded thinning)
REGISTRATION_STAGES = ((0.04, 15), (0.012, 10), (0.005, 10))   # (correspondence distance m, iterations)


def register(points: np.ndarray, reference: ReferenceShape) -> Registration:
    """Register a view's item points (gripper frame) to the reference shape: ICP from the identity (grasps
    differ by centimetres and degrees), coarse to fine (``REGISTRATION_STAGES``): a single narrow stage
    stalled on one pristine view in ten (measured on a validation study: the 90th percentile of the
    regional "missing" share of pristine views fell from 0.38 to 0.06 with the three stages)."""
    if len(points) < 20 or len(reference.points) < 20:
        return Registration(np.eye(4), 0.0)
    query = _cloud(_thin(points, REGISTRATION_POINTS))
    transform, fitness = np.eye(4), 0.0
    for distance, iterations in REGISTRATION_STAGES:
        result = _icp(query, reference.icp_target, distance, transform, iterations)
        transform, fitness = np.asarray(result.transformation), float(result.fitness)
    return Registration(transform, fitness)
