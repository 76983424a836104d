"""Point clouds of boxes seen from a camera, with optional dents, for tests that need no renderer."""
from __future__ import annotations

import numpy as np


def box_surface(size, camera_position, spacing=0.003, noise=0.0005, seed=0,
                dent_center=None, dent_radius=0.03, dent_depth=0.0, centre=(0.0, 0.0, 0.12)):
    """Points on the faces of an axis-aligned box (centred at ``centre``) that face the camera."""
    rng = np.random.default_rng(seed)
    size, centre = np.asarray(size, float), np.asarray(centre, float)
    half = size / 2
    points = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            face_centre = centre + normal * half[axis]
            if normal @ (np.asarray(camera_position) - face_centre) <= 0:
                continue
            others = [a for a in range(3) if a != axis]
            grid = np.meshgrid(*[np.arange(-half[a], half[a], spacing) for a in others], indexing="ij")
            face = np.zeros((grid[0].size, 3))
            face[:, axis] = face_centre[axis]
            face[:, others[0]] = centre[others[0]] + grid[0].ravel()
            face[:, others[1]] = centre[others[1]] + grid[1].ravel()
            if dent_center is not None and dent_depth > 0:
                distance = np.linalg.norm(face - np.asarray(dent_center), axis=1)
                inside = distance < dent_radius
                face[inside] -= normal * dent_depth * (1 - (distance[inside] / dent_radius) ** 2)[:, None]
            points.append(face)
    cloud = np.concatenate(points)
    return cloud + rng.normal(0.0, noise, cloud.shape)
