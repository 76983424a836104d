"""Items of the simulated cell as meshes: ``build_item`` turns an ``ItemSpec`` (``sim.catalogue``) into its
textured, damaged ``ItemModel`` held in the gripper.

Kinds (``ItemSpec.kind``, fixed by the SKU's prefix): ``carton`` (SKU-*), ``book`` (BK-*: thin slab, printed cover,
page-block edges), ``mailer`` (ML-*: flat wrinkled pillow), ``bottle`` (BT-*: bottles and jars, held upside
down, label band, cap), ``bag`` (BG-*: coffee / powder pouch, round pillow), ``blister`` (BL-*: backing card with
2-4 clear domes each holding a part; the clear shell is skipped in depth, like a real IR sensor sees through
clear PET, and shows in colour only as a faint highlight).

``build_item`` places the item in the **gripper_link frame**: its base box centred at (0, 0, palm_clearance +
gap + size_z / 2), fingers closed on its +-y sides. A ``GraspPose`` (``build_item(spec, gripper, grasp)``,
drawn per episode by ``random_grasp``) holds it differently: shifted along x, further from the palm and tilted
about the closing axis, so its gripped faces stay flat on the finger pads. The item's own frame (rest
positions, ``faces``, the ``damage`` objects) is then the default grasp's placement; ``surface.vertices``,
``center``, ``damage_center`` and ``T_gripper_item`` are in the gripper frame. ``ItemSpec.size`` is the base
box (bounding box). Damage is placed where the camera sees it during a wrist rotation. Same SKU, same geometry
and artwork; soft kinds (mailer, bag) get instance wrinkles from the item seed (manufacturing jitter)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.artwork import FaceTextures, make_item_textures, sku_rng
from damage_perception.sim.catalogue import BLISTER_CARD, ItemSpec
from damage_perception.sim.damage import INTERIOR, SHELL_TAGS, Appearance, Damage, Spill, SurfaceHits
from damage_perception.sim.damage_placement import DAMAGE_BUILDERS, DAMAGE_SIDES, MESH_SPACING, DamageContext
from damage_perception.sim.geometry import (
    TAG_PART,
    TAG_PLAIN,
    TAG_SHELL,
    TAG_SHELL_EMPTY,
    BoxFace,
    SurfaceMesh,
    box_faces,
    dome_surface,
    grid_box_surface,
)
from damage_perception.sim.grasp import GRIP_GAP, GraspPose
from damage_perception.sim.shapes import BottleShape, PillowShape


@dataclass
class ItemModel:
    """An item in the gripper_link frame: deformed mesh, rest positions, artwork and damage."""

    spec: ItemSpec
    center: np.ndarray
    size: np.ndarray
    faces: list[BoxFace]
    surface: SurfaceMesh
    textures: FaceTextures
    damage: Damage | None
    opening: float | None = None                       # finger opening that holds it (None: size y)
    part_albedo: np.ndarray | None = None              # blister parts
    extra_parts: list = field(default_factory=list)    # (vertices, triangles) in the gripper frame: spill blobs
    extra_albedo: np.ndarray | None = None
    grasp: GraspPose = GraspPose()
    T_gripper_item: np.ndarray = field(default_factory=lambda: np.eye(4))  # gripper_link <- item frame
    mesh: o3d.t.geometry.TriangleMesh = field(init=False)

    def __post_init__(self) -> None:
        self.mesh = self.surface.to_open3d()
        self._rest32 = self.surface.rest.astype(np.float32)
        self._face_origin = np.array([f.origin for f in self.faces])
        self._face_axes = np.array([[f.right / f.width, f.down / f.height] for f in self.faces])
        self._special = bool(np.isin(self.surface.tag, SHELL_TAGS + (TAG_PART,)).any())

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def grip_opening(self) -> float:
        """Finger opening that holds the item (its y extent between the finger pads)."""
        return float(self.size[1]) if self.opening is None else float(self.opening)

    @property
    def damage_center(self) -> np.ndarray | None:
        """Centre of the damage in the gripper frame (at its rest position in the item), None if pristine."""
        if self.damage is None:
            return None
        center = np.asarray(self.damage.center, float)
        return center if self.grasp.is_default else self.T_gripper_item[:3, :3] @ center + self.T_gripper_item[:3, 3]

    @property
    def damage_label(self) -> int:
        """Value of this item's damage in damage masks (index into DAMAGE_LABELS)."""
        return self.spec.damage_label

    @property
    def damaged_triangles(self) -> np.ndarray:
        """Indices of triangles that carry damage (deformed, cut, torn, stained, opened)."""
        tags = self.surface.tag
        if self.damage is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero((tags != TAG_PLAIN) & (tags != TAG_SHELL) & (tags != TAG_PART))

    def hits(self, triangle: np.ndarray, uv: np.ndarray, normal: np.ndarray, direction: np.ndarray) -> SurfaceHits:
        """Rest positions etc. of ray hits (primitive ids, primitive_uvs, normals and ray directions)."""
        tri = self.surface.triangles[triangle]
        rest = self._rest32
        u, v = uv[:, :1], uv[:, 1:]
        points = rest[tri[:, 0]]
        points += u * (rest[tri[:, 1]] - points) + v * (rest[tri[:, 2]] - points)
        cos = np.einsum("ij,ij->i", normal, direction)
        hits = SurfaceHits(triangle, points, self.surface.face[triangle], self.surface.tag[triangle], cos > 0)
        hits.cos = cos
        return hits

    def appearance(self, hits: SurfaceHits) -> Appearance:
        """Albedo from the artwork at the rest positions; inside dark; clear shells see-through; damage applied."""
        rel = hits.rest - self._face_origin[hits.face].astype(np.float32)
        uv = np.einsum("nkj,nj->nk", self._face_axes[hits.face], rel)
        albedo = self.textures.sample(hits.face.astype(np.intp), uv)
        albedo[hits.backface] = INTERIOR
        look = Appearance(albedo, hits.backface.copy(), np.zeros(len(hits.face), bool), ~hits.backface)
        if self._special:
            shell = np.isin(hits.tag, SHELL_TAGS)
            if shell.any():
                look.albedo[shell] = 0.25
                look.damaged[shell] = False
                look.see_through[shell] = True
                look.sheen = np.zeros(len(shell), np.float32)
                grazing = 1.0 - np.abs(hits.cos[shell]).astype(np.float32)
                look.sheen[shell] = 0.04 + 0.35 * grazing ** 4
                look.damage_through = hits.tag == TAG_SHELL_EMPTY
            part = hits.tag == TAG_PART
            if part.any():
                look.albedo[part] = self.part_albedo * (0.85 + 0.15 * (np.floor(
                    hits.rest[part, 0] / 0.004) % 2))[:, None].astype(np.float32)
                look.damaged[part] = False
                look.lit[part] = True
        if self.damage is not None:
            self.damage.shade(hits, look)
        if look.damage_through is not None:
            look.damaged[hits.tag == TAG_SHELL_EMPTY] = True
        return look



def item_center(size, gripper: GripperGeometry) -> np.ndarray:
    """Centre of an item's base box of ``size`` held in the gripper (gripper_link frame)."""
    return np.array([0.0, 0.0, gripper.palm_clearance + GRIP_GAP + size[2] / 2])


def _add_blister(surface: SurfaceMesh, spec: ItemSpec, center: np.ndarray, size: np.ndarray,
                 gripper: GripperGeometry) -> dict:
    """Append 2-4 clear domes (open half-ellipsoids on the -y face of the card) and the part in each."""
    rng = sku_rng(spec.sku, "blister")
    n = int(rng.integers(2, 5))
    cols = 2 if n == 4 else 1
    rows = int(np.ceil(n / cols))
    top = center[2] - size[2] / 2
    z0 = max(gripper.finger_size[2] + 0.008, top + 0.035)
    z1 = center[2] + size[2] / 2 - 0.008
    cell_w, cell_h = size[0] / cols, (z1 - z0) / rows
    dh = (size[1] - BLISTER_CARD) / 2
    y_face = center[1] - BLISTER_CARD / 2
    domes = []
    for i in range(n):
        r, c = divmod(i, cols)
        dc = np.array([center[0] - size[0] / 2 + (c + 0.5) * cell_w, y_face, z0 + (r + 0.5) * cell_h])
        radii = np.array([min(0.4 * cell_w, 0.035), dh, min(0.4 * cell_h, 0.04)])
        v, t = dome_surface(dc, radii, axis=1, sign=-1.0)
        start = len(surface.triangles)
        surface.append(v, v, t, np.full(len(t), -1, np.int8), np.full(len(t), TAG_SHELL, np.uint8))
        shell = np.arange(start, len(surface.triangles))
        scale = rng.uniform(0.45, 0.8)
        half = np.array([0.55 * scale * radii[0], 0.3 * dh, 0.55 * scale * radii[2]])
        box = grid_box_surface(box_faces(dc - np.array([0.0, 0.3 * dh + 1e-4, 0.0]), 2 * half), 0.004)
        start = len(surface.triangles)
        surface.append(box.vertices, box.rest, box.triangles, np.full(len(box.triangles), -1, np.int8),
                       np.full(len(box.triangles), TAG_PART, np.uint8))
        domes.append({"center": dc - np.array([0.0, dh / 2, 0.0]), "shell": shell,
                      "part": np.arange(start, len(surface.triangles)), "volume": float(np.prod(half))})
    albedo = np.asarray(0.25 + 0.7 * rng.random(3), np.float32) if rng.random() < 0.6 else \
        np.array([0.62, 0.63, 0.66], np.float32)
    return {"domes": domes, "part_albedo": albedo}


def _grip_opening(vertices: np.ndarray, size: np.ndarray, gripper: GripperGeometry) -> float:
    """2 * the largest |y| of the surface between the finger pads (x within the pad, z along the finger)."""
    pad = (np.abs(vertices[:, 0]) < gripper.finger_size[0] / 2) & (vertices[:, 2] < gripper.finger_size[2])
    return float(2 * np.abs(vertices[pad, 1]).max()) if pad.any() else float(size[1])


def build_item(spec: ItemSpec, gripper: GripperGeometry, grasp: GraspPose | None = None) -> ItemModel:
    """The item of ``spec`` in the gripper_link frame, shaped, textured and damaged, held as ``grasp`` says (None
    or ``GraspPose()``: the default grasp, exactly as before grasps existed). The fingers close on the item as
    held; damage is placed clear of the fingers of this grasp."""
    grasp = GraspPose() if grasp is None else grasp
    size = np.asarray(spec.size, float)
    center = item_center(size, gripper)
    kind = spec.kind
    if kind == "blister":  # the card is the base box; domes are added on its -y face
        faces = box_faces(center, np.array([size[0], BLISTER_CARD, size[2]]))
    else:
        faces = box_faces(center, size)
    surface = grid_box_surface(faces, MESH_SPACING)
    bottle = None
    if kind in ("mailer", "bag"):
        shape = PillowShape(seed=spec.seed) if kind == "mailer" else \
            PillowShape(power=2.0, exponent=0.5, floor=0.06, wrinkle=0.12, wrinkle_scale=0.04, seed=spec.seed)
        surface.vertices = shape(surface.rest, center, size)
    elif kind == "bottle":
        rng = sku_rng(spec.sku, "bottle")
        jar = size[2] < 1.6 * size[0]
        bottle = BottleShape(shoulder=rng.uniform(0.78, 0.84), neck=0.88, cap=0.9,
                             neck_ratio=rng.uniform(0.8, 0.9)) if jar else \
            BottleShape(shoulder=rng.uniform(0.55, 0.68), neck=rng.uniform(0.76, 0.82), cap=rng.uniform(0.86, 0.9),
                        neck_ratio=rng.uniform(0.35, 0.5))
        surface.vertices = bottle(surface.rest, center, size)
    to_gripper = None if grasp.is_default else grasp.transform(center, surface.vertices)
    held = surface.vertices if to_gripper is None else surface.vertices @ to_gripper[:3, :3].T + to_gripper[:3, 3]
    opening = _grip_opening(held, size, gripper)
    blister = _add_blister(surface, spec, center, size, gripper) if kind == "blister" else None
    damage = None
    if spec.damage != "pristine":
        rng = np.random.default_rng(spec.seed)
        ctx = DamageContext(spec, faces, size, center, gripper, DAMAGE_SIDES[kind], opening, blister, to_gripper)
        damage = DAMAGE_BUILDERS[spec.damage](ctx, rng)
        damage.apply(surface)
    if to_gripper is not None:  # rest positions (texture, damage) stay in the item frame
        surface.vertices = surface.vertices @ to_gripper[:3, :3].T + to_gripper[:3, 3]
        center = to_gripper[:3, :3] @ center + to_gripper[:3, 3]
    textures = make_item_textures(spec.sku, faces, kind, spec.packaging_version, spec.printed_damage_art,
                                  bottle.profile if bottle is not None else (0.6, 0.75, 0.9))
    extra, extra_albedo = [], None
    if isinstance(damage, Spill) and damage.blob is not None:
        extra, extra_albedo = [damage.blob], damage.stain
    return ItemModel(spec, center, size, faces, surface, textures, damage,
                     opening=None if kind == "carton" else opening,
                     part_albedo=None if blister is None else blister["part_albedo"],
                     extra_parts=extra, extra_albedo=extra_albedo, grasp=grasp,
                     T_gripper_item=np.eye(4) if to_gripper is None else to_gripper)
