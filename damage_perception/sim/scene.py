"""Layout of the simulated pick cell: camera, presentation pose, static clutter and lighting (world frame, z up).

Frames match urdf/inspection_cell.urdf:
- ``camera_link`` (REP 103 body frame: x forward, y left, z up) at ``camera_position``, yawed and pitched to
  look at ``camera_target``; ``camera_color_optical_frame`` is camera_link rotated by rpy (-pi/2, 0, -pi/2).
- ``inspection_pose`` at ``inspection_position`` with +z pointing down (rpy (pi, 0, 0)): the item hangs below
  the gripper and the wrist turns it about a vertical axis.
- ``gripper_link`` = inspection_pose rotated about its z by the wrist angle.

Episode variation: ``SceneConfig.jittered(rng)`` returns a copy with the camera's intrinsics and pose and the
lighting drawn within ``SceneJitter``'s ranges (realistic spread between cells / recalibrations / times of
day). The default ``SceneConfig()`` has no jitter. A ``CellRenderer`` caches the static scene of its config:
give it a jittered config with ``CellRenderer.set_scene`` (or build a new renderer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.transforms import invert, make_transform, rotation_about_z, transform_from_xyz_rpy

OPTICAL_FROM_LINK_RPY = (-math.pi / 2, 0.0, -math.pi / 2)


@dataclass(frozen=True)
class StaticBox:
    """An axis-aligned box of fixed clutter in the world frame (wall, floor, forearm)."""

    name: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    albedo: tuple[float, float, float]


def _default_static_boxes() -> tuple[StaticBox, ...]:
    return (
        StaticBox("wall", (1.35, 0.0, 0.8), (0.1, 4.0, 2.0), (0.72, 0.72, 0.68)),
        StaticBox("floor", (0.8, 0.0, -0.05), (3.0, 4.0, 0.1), (0.38, 0.40, 0.44)),
        StaticBox("table", (0.95, 0.0, 0.18), (0.5, 1.2, 0.04), (0.55, 0.47, 0.36)),
        StaticBox("forearm", (0.72, 0.0, 0.84), (0.30, 0.08, 0.08), (0.85, 0.55, 0.12)),
        StaticBox("upper_arm", (0.86, 0.0, 1.05), (0.08, 0.09, 0.40), (0.85, 0.55, 0.12)),
    )


@dataclass(frozen=True)
class SceneJitter:
    """Half-ranges of the per-episode variation of a ``SceneConfig`` (uniform draws; see SceneConfig.jittered).

    Camera: focal lengths scale by a common factor within +-``focal`` (fx and fy differ by at most
    +-``aspect`` more, both stay within +-``focal``), the principal point moves by up to +-``principal_px`` px
    per axis, the camera moves by up to +-``position`` m per world axis (its look-at direction kept) and turns by
    up to +-``angle_deg`` about each of its own roll, pitch and yaw axes. Lighting: the light's direction turns
    by up to +-``light_azimuth_deg`` about the vertical and +-``light_elevation_deg`` in elevation; ambient
    and diffuse intensities scale within +-``ambient`` / +-``diffuse`` (relative)."""

    focal: float = 0.05
    aspect: float = 0.005
    principal_px: float = 10.0
    position: float = 0.025
    angle_deg: float = 2.5
    light_azimuth_deg: float = 45.0
    light_elevation_deg: float = 15.0
    ambient: float = 0.25
    diffuse: float = 0.2


NO_JITTER = SceneJitter(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class SceneConfig:
    """Camera, presentation pose, static clutter and lights of the simulated cell."""

    intrinsics: CameraIntrinsics = field(
        default_factory=lambda: CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5))
    camera_position: tuple[float, float, float] = (0.0, 0.0, 0.40)
    camera_target: tuple[float, float, float] = (0.60, 0.0, 0.45)
    camera_rpy_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # camera_link turned by this after look-at
    inspection_position: tuple[float, float, float] = (0.60, 0.0, 0.62)
    static_boxes: tuple[StaticBox, ...] = field(default_factory=_default_static_boxes)
    light_direction: tuple[float, float, float] = (0.5, 0.6, -0.6)  # direction light travels, world frame
    ambient: float = 0.35
    diffuse: float = 0.75
    wrist_length: float = 0.14       # wrist cylinder above the palm, gripper frame z in [-palm - wrist, -palm]
    wrist_radius: float = 0.035
    palm_thickness: float = 0.04
    empty_opening: float = 0.01      # finger opening with an empty gripper

    @property
    def T_world_camera_link(self) -> np.ndarray:
        """world <- camera_link: at camera_position, x axis towards camera_target, no roll."""
        d = np.subtract(self.camera_target, self.camera_position)
        yaw = math.atan2(d[1], d[0])
        pitch = -math.atan2(d[2], math.hypot(d[0], d[1]))  # positive pitch looks down (REP 103)
        look_at = transform_from_xyz_rpy(self.camera_position, (0.0, pitch, yaw))
        if any(self.camera_rpy_offset):
            look_at = look_at @ transform_from_xyz_rpy((0.0, 0.0, 0.0), self.camera_rpy_offset)
        return look_at

    @property
    def T_camera_link_optical(self) -> np.ndarray:
        """camera_link <- camera_color_optical_frame."""
        return transform_from_xyz_rpy((0.0, 0.0, 0.0), OPTICAL_FROM_LINK_RPY)

    @property
    def T_world_optical(self) -> np.ndarray:
        """world <- camera_color_optical_frame."""
        return self.T_world_camera_link @ self.T_camera_link_optical

    @property
    def T_world_inspection(self) -> np.ndarray:
        """world <- inspection_pose (+z pointing down)."""
        return transform_from_xyz_rpy(self.inspection_position, (math.pi, 0.0, 0.0))

    def T_world_gripper(self, wrist_angle: float) -> np.ndarray:
        """world <- gripper_link at a wrist angle (rotation about inspection_pose z)."""
        return self.T_world_inspection @ make_transform(rotation=rotation_about_z(wrist_angle))

    def wrist_angle_facing(self, direction_gripper) -> float:
        """Wrist angle that turns a gripper-frame direction (its x, y part) towards the camera."""
        camera = invert(self.T_world_inspection) @ np.append(self.camera_position, 1.0)
        return float(math.remainder(math.atan2(camera[1], camera[0])
                                    - math.atan2(direction_gripper[1], direction_gripper[0]), 2 * math.pi))

    @property
    def light_unit(self) -> np.ndarray:
        """Unit direction the light travels in (world frame)."""
        d = np.asarray(self.light_direction, dtype=float)
        return d / np.linalg.norm(d)

    def jittered(self, rng: np.random.Generator, jitter: SceneJitter = SceneJitter()) -> SceneConfig:
        """A copy with camera intrinsics, camera pose and lighting drawn within ``jitter`` (deterministic in the
        generator's state; always draws the same number of values). ``NO_JITTER`` returns an equal config."""
        k = self.intrinsics
        u = rng.uniform(-1.0, 1.0, 14)
        scale = 1.0 + ((1.0 + jitter.focal) / (1.0 + jitter.aspect) - 1.0) * u[0]  # |fx / fx0 - 1| <= focal
        fx = k.fx * scale * (1.0 + jitter.aspect * u[1])
        fy = k.fy * scale * (1.0 - jitter.aspect * u[1])
        intrinsics = CameraIntrinsics(k.width, k.height, fx, fy, k.cx + jitter.principal_px * u[2],
                                      k.cy + jitter.principal_px * u[3])
        shift = jitter.position * u[4:7]
        rpy = np.radians(jitter.angle_deg) * u[7:10]
        light = self.light_unit
        azimuth = math.atan2(light[1], light[0]) + math.radians(jitter.light_azimuth_deg) * u[10]
        elevation = math.asin(float(np.clip(light[2], -1.0, 1.0))) + math.radians(jitter.light_elevation_deg) * u[11]
        elevation = min(elevation, -math.radians(10.0))  # the light keeps shining downwards
        light_direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                           math.sin(elevation))
        if not any((jitter.light_azimuth_deg, jitter.light_elevation_deg)):
            light_direction = self.light_direction
        return replace(
            self, intrinsics=intrinsics,
            camera_position=tuple(float(v) for v in np.add(self.camera_position, shift)),
            camera_target=tuple(float(v) for v in np.add(self.camera_target, shift)),
            camera_rpy_offset=tuple(float(v) for v in np.add(self.camera_rpy_offset, rpy)),
            light_direction=tuple(float(v) for v in light_direction),
            ambient=float(self.ambient * (1.0 + jitter.ambient * u[12])),
            diffuse=float(self.diffuse * (1.0 + jitter.diffuse * u[13])))
