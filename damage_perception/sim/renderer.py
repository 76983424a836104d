"""Ray-cast RGB-D renderer of the simulated cell with exact ground truth.

Two ``open3d.t.geometry.RaycastingScene``s: the static one (wall, floor, table, forearm; world frame) is cast
once at construction; the moving one (item, fingers, palm, wrist; gripper_link frame) is built once per item
and, per frame, only the camera rays inside the projected bounding box of the moving parts are transformed
into the gripper frame and cast. Hits in see-through parts of the item (holes, outside torn flaps) are cast
on from just behind the hit.

The static pass depends on the ``SceneConfig`` (camera, lights): for a per-episode config (episode variation)
call ``set_scene`` (re-casts the static scene, ~0.1 s; keeps the held item unless the gripper's parts
changed) or build a new renderer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import invert
from damage_perception.sim.geometry import box_mesh, cylinder_mesh, tensor_mesh
from damage_perception.sim.items import ItemModel
from damage_perception.sim.scene import SceneConfig
from damage_perception.sim.sensor import ColorModel, DepthModel, apply_color_model, apply_depth_model

# Labels of what each pixel's first hit is.
(LABEL_NONE, LABEL_STATIC, LABEL_ITEM, LABEL_LEFT_FINGER, LABEL_RIGHT_FINGER, LABEL_PALM, LABEL_WRIST,
 LABEL_SPILL) = range(8)
PART_TABLE = np.array([(0, 0, 0), (0, 0, 0), (0, 0, 0), (0.22, 0.22, 0.25), (0.22, 0.22, 0.25),
                       (0.50, 0.50, 0.55), (0.62, 0.62, 0.66), (0.5, 0.5, 0.5)], np.float32)  # albedo by label
SPILL_LABEL = DAMAGE_LABELS.index("spill")
MAX_SEE_THROUGH = 3  # casts on after see-through hits
RAY_NUDGE = 1e-4     # metres to step past a see-through hit


@dataclass
class RenderedView:
    """One rendered RGB-D frame with ground truth (images are H x W)."""

    color: np.ndarray            # uint8 RGB
    depth_m: np.ndarray          # float32 metres after the sensor model, 0 = no reading, 1 mm steps
    depth_clean_m: np.ndarray    # float32 metres, exact (0 = nothing hit)
    item_mask: np.ndarray        # bool: first hit is the item
    damage_mask: np.ndarray      # uint8 label (index into DAMAGE_LABELS, 0 none): damaged item surface, the inside
    #                              seen through it, or a spill blob on the gripper (outside item_mask)
    finger_mask: np.ndarray      # bool: first hit is a finger
    T_optical_gripper: np.ndarray
    T_world_gripper: np.ndarray
    finger_transforms: tuple[np.ndarray, np.ndarray]
    wrist_angle: float
    intrinsics: CameraIntrinsics


@dataclass
class _Hits:
    """Hits of a batch of rays: index of the ray, distance, label, radiance, |cos incidence|, damage flag."""

    ray: np.ndarray
    t: np.ndarray
    label: np.ndarray
    radiance: np.ndarray
    cos: np.ndarray
    damaged: np.ndarray          # uint8 damage label


def _camera_rays(intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (H, W, 3) in the optical frame and their z components (depth per unit t)."""
    u = np.arange(intrinsics.width, dtype=np.float64)[None, :]
    v = np.arange(intrinsics.height, dtype=np.float64)[:, None]
    x = np.broadcast_to((u - intrinsics.cx) / intrinsics.fx, (intrinsics.height, intrinsics.width))
    y = np.broadcast_to((v - intrinsics.cy) / intrinsics.fy, (intrinsics.height, intrinsics.width))
    d = np.stack([x, y, np.ones_like(x)], axis=-1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d.astype(np.float32), d[..., 2].astype(np.float32)


def _static_key(config: SceneConfig) -> tuple:
    """What the static pass depends on."""
    return (config.intrinsics, config.camera_position, config.camera_target, config.camera_rpy_offset,
            config.static_boxes, config.light_direction, config.ambient, config.diffuse)


def _moving_key(config: SceneConfig) -> tuple:
    """What the moving scene depends on (besides the item)."""
    return (config.wrist_length, config.wrist_radius, config.palm_thickness, config.empty_opening)


def _cast(scene: o3d.t.geometry.RaycastingScene, origins: np.ndarray, directions: np.ndarray) -> dict:
    rays = np.empty((len(directions), 6), np.float32)
    rays[:, :3], rays[:, 3:] = origins, directions
    return {k: v.numpy() for k, v in scene.cast_rays(o3d.core.Tensor(rays)).items()}


class CellRenderer:
    """Renders what the cell's camera sees of the gripper (and its item) at a wrist angle."""

    def __init__(self, config: SceneConfig, gripper: GripperGeometry,
                 depth_model: DepthModel = DepthModel(), color_model: ColorModel = ColorModel()) -> None:
        self.gripper = gripper
        self.item: ItemModel | None = None
        self.set_scene(config, depth_model, color_model)

    def set_scene(self, config: SceneConfig, depth_model: DepthModel | None = None,
                  color_model: ColorModel | None = None) -> None:
        """Render with ``config`` (and the sensor models given; None keeps the current ones) from now on.

        Re-casts the static scene when the camera, clutter or lights changed; rebuilds the moving scene (keeping
        the held item) only when the palm, wrist or empty opening changed."""
        old = getattr(self, "config", None)
        self.config = config
        if depth_model is not None or old is None:
            self.depth_model = DepthModel() if depth_model is None else depth_model
        if color_model is not None or old is None:
            self.color_model = ColorModel() if color_model is None else color_model
        if old is None or _static_key(old) != _static_key(config):
            self.intrinsics = config.intrinsics
            self.T_world_optical = config.T_world_optical
            self._optical_world = invert(self.T_world_optical)
            if old is None or old.intrinsics != config.intrinsics:
                self._rays, self._ray_z = _camera_rays(self.intrinsics)
            self._light_world = config.light_unit
            self._static = self._render_static()
        if old is None or _moving_key(old) != _moving_key(config):
            self.set_item(self.item)

    # --- static part -----------------------------------------------------------------------------------
    def _render_static(self) -> _Hits:
        """Cast all camera rays once against the static clutter (world frame) and shade them."""
        scene = o3d.t.geometry.RaycastingScene()
        for box in self.config.static_boxes:
            scene.add_triangles(box_mesh(box.center, box.size))
        directions = self._rays.reshape(-1, 3) @ self.T_world_optical[:3, :3].T.astype(np.float32)
        out = _cast(scene, self.T_world_optical[:3, 3], directions)
        t = out["t_hit"]
        hit = np.isfinite(t)
        gid = np.where(hit, out["geometry_ids"], 0).astype(np.intp)
        points = self.T_world_optical[:3, 3] + directions * np.where(hit, t, 0)[:, None]
        tiles = (np.floor(points / 0.25).astype(np.int64).sum(axis=1) % 2).astype(np.float32)
        albedo = np.array([b.albedo for b in self.config.static_boxes], np.float32)[gid]
        albedo *= (0.94 + 0.06 * tiles)[:, None]
        normal = out["primitive_normals"]
        radiance = np.where(hit[:, None], self._shade(albedo, normal, self._light_world, np.ones(len(t), bool)), 0)
        cos = np.abs(np.einsum("ij,ij->i", normal, directions))
        label = np.where(hit, LABEL_STATIC, LABEL_NONE).astype(np.uint8)
        return _Hits(np.arange(len(t)), t, label, radiance.astype(np.float32), cos.astype(np.float32),
                     np.zeros(len(t), np.uint8))

    def _shade(self, albedo: np.ndarray, normal: np.ndarray, light: np.ndarray, lit: np.ndarray) -> np.ndarray:
        """Lambertian: albedo * (ambient + diffuse * max(0, n . -light)); unlit points get ambient only."""
        lambert = np.maximum(normal @ -light.astype(np.float32), 0.0) * lit
        return albedo * (self.config.ambient + self.config.diffuse * lambert)[:, None].astype(np.float32)

    # --- moving part -----------------------------------------------------------------------------------
    def set_item(self, item: ItemModel | None) -> None:
        """Hold ``item`` (or nothing: fingers closed to the empty opening); rebuilds the moving scene."""
        self.item = item
        opening = item.grip_opening if item is not None else self.config.empty_opening
        self.finger_transforms = self.gripper.finger_transforms(opening)
        palm_bottom = -self.config.palm_thickness
        wrist_top = palm_bottom - self.config.wrist_length
        parts = [(LABEL_ITEM, item.mesh)] if item is not None else []
        parts += [(label, box_mesh(pose[:3, 3], self.gripper.finger_size))
                  for label, pose in zip((LABEL_LEFT_FINGER, LABEL_RIGHT_FINGER), self.finger_transforms)]
        parts += [(LABEL_SPILL, tensor_mesh(*blob)) for blob in (item.extra_parts if item is not None else [])]
        parts += [(LABEL_PALM, cylinder_mesh(self.gripper.palm_radius, palm_bottom, 0.0)),
                  (LABEL_WRIST, cylinder_mesh(self.config.wrist_radius, wrist_top, palm_bottom))]
        self._scene = o3d.t.geometry.RaycastingScene()
        labels = {self._scene.add_triangles(mesh): label for label, mesh in parts}
        self._label_of_geometry = np.array([labels[i] for i in range(len(labels))], np.uint8)
        corners = [item.surface.vertices] + [v for v, _ in item.extra_parts] if item is not None else []
        half = np.array([self.gripper.palm_radius, self.gripper.palm_radius, 0.0])
        fingers = np.array([p[:3, 3] for p in self.finger_transforms])
        extent = np.vstack(corners + [fingers + np.array(self.gripper.finger_size) / 2,
                                      fingers - np.array(self.gripper.finger_size) / 2,
                                      half, -half + np.array([0, 0, wrist_top])])
        self._bounds = np.array([extent.min(axis=0), extent.max(axis=0)])

    def _roi(self, T_optical_gripper: np.ndarray) -> tuple[slice, slice]:
        """Image rows/cols that can see the moving parts (projected bounding box, with a margin)."""
        lo, hi = self._bounds
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        p = corners @ T_optical_gripper[:3, :3].T + T_optical_gripper[:3, 3]
        k = self.intrinsics
        if np.any(p[:, 2] < 0.05):
            return slice(0, k.height), slice(0, k.width)
        u = k.fx * p[:, 0] / p[:, 2] + k.cx
        v = k.fy * p[:, 1] / p[:, 2] + k.cy
        c0, c1 = int(np.clip(np.floor(u.min()) - 2, 0, k.width)), int(np.clip(np.ceil(u.max()) + 3, 0, k.width))
        r0, r1 = int(np.clip(np.floor(v.min()) - 2, 0, k.height)), int(np.clip(np.ceil(v.max()) + 3, 0, k.height))
        return slice(r0, r1), slice(c0, c1)

    def _cast_moving(self, origin: np.ndarray, directions: np.ndarray, light: np.ndarray) -> _Hits:
        """Cast rays (gripper frame) at the moving scene, following see-through item hits, and shade hits."""
        results: list[_Hits] = []
        active = np.arange(len(directions))
        offset = np.zeros(len(directions), np.float32)
        sheen = carried = None  # highlight and damage label picked up by rays passing clear shells
        for attempt in range(MAX_SEE_THROUGH + 1):
            if len(active) == 0:
                break
            d = directions if attempt == 0 else directions[active]
            origins = origin if attempt == 0 else origin + d * offset[active, None]
            out = _cast(self._scene, origins, d)
            hit = np.flatnonzero(np.isfinite(out["t_hit"]))
            ray, t, d = active[hit], out["t_hit"][hit], d[hit]
            label = self._label_of_geometry[out["geometry_ids"][hit]]
            normal = out["primitive_normals"][hit]
            albedo = PART_TABLE[label]
            damaged = np.zeros(len(ray), np.uint8)
            lit = np.ones(len(ray), bool)
            through = np.zeros(len(ray), bool)
            on_item = np.flatnonzero(label == LABEL_ITEM)
            if len(on_item):
                hits = self.item.hits(out["primitive_ids"][hit[on_item]].astype(np.intp),
                                      out["primitive_uvs"][hit[on_item]], normal[on_item], d[on_item])
                look = self.item.appearance(hits)
                albedo[on_item], lit[on_item] = look.albedo, look.lit
                damaged[on_item] = look.damaged * np.uint8(self.item.damage_label)
                through[on_item] = look.see_through
                normal[on_item[hits.backface]] *= -1.0
                if look.sheen is not None or look.damage_through is not None:
                    if sheen is None:
                        sheen = np.zeros(len(directions), np.float32)
                        carried = np.zeros(len(directions), np.uint8)
                    passing = look.see_through & (attempt < MAX_SEE_THROUGH)
                    if look.sheen is not None:
                        sheen[ray[on_item[passing]]] += look.sheen[passing]
                    if look.damage_through is not None:
                        marks = passing & look.damage_through
                        carried[ray[on_item[marks]]] = self.item.damage_label
            spill = label == LABEL_SPILL
            if spill.any():
                albedo[spill] = self.item.extra_albedo
                damaged[spill] = SPILL_LABEL
            if attempt == MAX_SEE_THROUGH:
                through[:] = False
            done = ~through
            cos = np.abs(np.einsum("ij,ij->i", normal[done], d[done]))
            radiance = self._shade(albedo[done], normal[done], light, lit[done])
            if sheen is not None:
                radiance += sheen[ray[done], None]
                damaged[done] = np.maximum(damaged[done], carried[ray[done]])
            results.append(_Hits(ray[done], offset[ray[done]] + t[done], label[done], radiance, cos, damaged[done]))
            active = ray[through]
            offset[active] += t[through] + RAY_NUDGE
        if not results:
            empty = np.zeros(0)
            return _Hits(empty.astype(np.intp), empty.astype(np.float32), empty.astype(np.uint8),
                         np.zeros((0, 3), np.float32), empty.astype(np.float32), empty.astype(np.uint8))
        return _Hits(*(np.concatenate([getattr(r, f) for r in results]) for f in
                       ("ray", "t", "label", "radiance", "cos", "damaged")))

    # --- frame -----------------------------------------------------------------------------------------
    def render(self, wrist_angle: float, rng: np.random.Generator) -> RenderedView:
        """Render colour, depth and ground truth at a wrist angle; noise drawn from ``rng``."""
        T_world_gripper = self.config.T_world_gripper(wrist_angle)
        T_optical_gripper = self._optical_world @ T_world_gripper
        T_gripper_optical = invert(T_optical_gripper)
        rows, cols = self._roi(T_optical_gripper)
        height, width = self.intrinsics.height, self.intrinsics.width

        rays = np.ascontiguousarray(self._rays[rows, cols]).reshape(-1, 3)
        pixels = (np.arange(height)[rows, None] * width + np.arange(width)[None, cols]).ravel()
        light = T_world_gripper[:3, :3].T @ self._light_world
        moving = self._cast_moving(T_gripper_optical[:3, 3].astype(np.float32),
                                   rays @ T_gripper_optical[:3, :3].T.astype(np.float32), light)

        static = self._static
        t, label, radiance = static.t.copy(), static.label.copy(), static.radiance.copy()
        cos, damaged = static.cos.copy(), np.zeros(height * width, np.uint8)
        closer = moving.t < t[pixels[moving.ray]]
        pix = pixels[moving.ray[closer]]
        t[pix], label[pix], radiance[pix] = moving.t[closer], moving.label[closer], moving.radiance[closer]
        cos[pix], damaged[pix] = moving.cos[closer], moving.damaged[closer]

        shape = (height, width)
        depth_clean = np.where(np.isfinite(t), t * self._ray_z.ravel(), 0.0).astype(np.float32).reshape(shape)
        depth = apply_depth_model(depth_clean, cos.reshape(shape), rng, self.depth_model)
        color = apply_color_model(radiance.reshape(height, width, 3), rng, self.color_model)
        label = label.reshape(shape)
        item_mask = label == LABEL_ITEM
        return RenderedView(
            color=color, depth_m=depth, depth_clean_m=depth_clean,
            item_mask=item_mask,
            damage_mask=np.where(item_mask | (label == LABEL_SPILL), damaged.reshape(shape), 0).astype(np.uint8),
            finger_mask=(label == LABEL_LEFT_FINGER) | (label == LABEL_RIGHT_FINGER),
            T_optical_gripper=T_optical_gripper, T_world_gripper=T_world_gripper,
            finger_transforms=tuple(p.copy() for p in self.finger_transforms),
            wrist_angle=float(wrist_angle), intrinsics=self.intrinsics)
