"""A first, model-free damage score: how much of the item's surface departs from its fitted faces.

Packaging is mostly flat faces. RANSAC finds the visible faces; points that belong to none of them, grouped
into clusters, are candidate damage. The sign of the departure says what kind: behind the face and shallow
is a dent (crush), far behind is a see-through hole, in front of the face is a torn flap (tear). The score
grows with the damaged area. The learned models of later issues replace this; it stays as a fallback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from damage_perception.core.clustering import dbscan_labels
from damage_perception.core.damage_types import DAMAGE_TYPES


@dataclass(frozen=True)
class GeometricScoreConfig:
    """Parameters of :func:`score_geometry` (metres unless stated)."""

    voxel_size: float = 0.003
    plane_distance: float = 0.004      # RANSAC inlier band: a few sigma of depth noise at 0.6 m
    max_planes: int = 4
    min_plane_fraction: float = 0.06   # smaller planes are not faces of the item
    ransac_iterations: int = 400
    deviation_min: float = 0.007       # off-face points nearer than this to a face are noise
    cluster_eps: float = 0.009
    cluster_min_points: int = 6        # voxels; smaller clusters are noise
    hole_depth: float = 0.035          # deeper than this behind a face: seeing through a hole
    area_scale_cm2: float = 4.0        # damaged area at which the score reaches 1 - 1/e
    seed: int = 0


@dataclass
class GeometricScore:
    """Damage evidence of one view."""

    score: float                       # in [0, 1]
    type_scores: dict[str, float]
    damaged_area_cm2: float
    damage_location: np.ndarray | None  # centre of the largest damaged region, gripper frame
    num_faces: int
    details: dict[str, float] = field(default_factory=dict)


def score_geometry(points: np.ndarray, camera_position: np.ndarray,
                   config: GeometricScoreConfig = GeometricScoreConfig()) -> GeometricScore:
    """Score (N, 3) item points (gripper frame) seen from ``camera_position`` (same frame)."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=float)))
    voxels = np.asarray(cloud.voxel_down_sample(config.voxel_size).points)
    if len(voxels) < 3 * config.cluster_min_points:
        return _no_damage(num_faces=0)
    planes, on_face = _fit_faces(voxels, camera_position, config)
    if not planes:
        return _no_damage(num_faces=0)
    signed = _signed_departure(voxels, planes, on_face)
    candidates = np.flatnonzero(np.abs(signed) >= config.deviation_min)
    clusters = _clusters(voxels[candidates], config)
    return _summarise(voxels, signed, candidates, clusters, len(planes), config)


def _fit_faces(voxels: np.ndarray, camera_position: np.ndarray,
               config: GeometricScoreConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """Planes (a, b, c, d) with outward normals (towards the camera) and the face index of each voxel."""
    rng = np.random.default_rng(config.seed)  # seeded: the same view always scores the same
    face_of = np.full(len(voxels), -1)
    remaining = np.arange(len(voxels))
    planes: list[np.ndarray] = []
    min_inliers = max(3, int(config.min_plane_fraction * len(voxels)))
    while len(planes) < config.max_planes and len(remaining) >= min_inliers:
        plane, inliers = _ransac_plane(voxels[remaining], config, rng)
        if len(inliers) < min_inliers:
            break
        if plane[:3] @ camera_position + plane[3] < 0:  # visible faces face the camera
            plane = -plane
        face_of[remaining[inliers]] = len(planes)
        planes.append(plane)
        remaining = np.delete(remaining, inliers)
    return planes, face_of


def _ransac_plane(points: np.ndarray, config: GeometricScoreConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Best plane of ``ransac_iterations`` random triples, refined by least squares on its inliers."""
    triples = points[rng.integers(0, len(points), size=(config.ransac_iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths > 1e-12
    normals = normals[usable] / lengths[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    # Hypotheses are ranked on a random subset: the ranking is as good and the cost no longer grows with N.
    sample = points[rng.choice(len(points), size=min(len(points), 1500), replace=False)]
    counts = (np.abs(sample @ normals.T + offsets) <= config.plane_distance).sum(axis=0)
    best = int(np.argmax(counts))
    inliers = np.flatnonzero(np.abs(points @ normals[best] + offsets[best]) <= config.plane_distance)
    centroid = points[inliers].mean(axis=0)
    normal = np.linalg.svd(points[inliers] - centroid, full_matrices=False)[2][-1]
    plane = np.append(normal, -normal @ centroid)
    inliers = np.flatnonzero(np.abs(points @ plane[:3] + plane[3]) <= config.plane_distance)
    return plane, inliers


def _signed_departure(voxels: np.ndarray, planes: list[np.ndarray], face_of: np.ndarray) -> np.ndarray:
    """Signed distance of each voxel to the face its nearest face voxel lies on (> 0: in front)."""
    on_face = np.flatnonzero(face_of >= 0)
    _, nearest = cKDTree(voxels[on_face]).query(voxels)
    plane_rows = np.stack(planes)[face_of[on_face[nearest]]]
    signed = np.einsum("ij,ij->i", voxels, plane_rows[:, :3]) + plane_rows[:, 3]
    signed[face_of >= 0] = 0.0
    return signed


def _clusters(points: np.ndarray, config: GeometricScoreConfig) -> np.ndarray:
    if len(points) < config.cluster_min_points:
        return np.full(len(points), -1)
    return dbscan_labels(points, config.cluster_eps, config.cluster_min_points)


def _summarise(voxels, signed, candidates, clusters, num_faces, config) -> GeometricScore:
    voxel_cm2 = (config.voxel_size * 100.0) ** 2
    areas = dict.fromkeys(DAMAGE_TYPES, 0.0)
    largest_size, location = 0, None
    for label in range(clusters.max(initial=-1) + 1):
        members = candidates[clusters == label]
        depth = signed[members]
        areas["tear"] += voxel_cm2 * np.count_nonzero(depth > 0)
        areas["hole"] += voxel_cm2 * np.count_nonzero(depth <= -config.hole_depth)
        areas["crush"] += voxel_cm2 * np.count_nonzero((depth < 0) & (depth > -config.hole_depth))
        if len(members) > largest_size:
            largest_size, location = len(members), voxels[members].mean(axis=0)
    total = sum(areas.values())
    type_scores = {name: _area_to_score(area, config) for name, area in areas.items()}
    return GeometricScore(_area_to_score(total, config), type_scores, total, location, num_faces,
                          {"voxels": float(len(voxels)), "off_face_voxels": float(len(candidates))})


def _area_to_score(area_cm2: float, config: GeometricScoreConfig) -> float:
    return float(1.0 - np.exp(-area_cm2 / config.area_scale_cm2))


def _no_damage(num_faces: int) -> GeometricScore:
    return GeometricScore(0.0, dict.fromkeys(DAMAGE_TYPES, 0.0), 0.0, None, num_faces)
