"""Items of the simulated cell: a seeded catalogue of cartons and their textured, damaged meshes.

``build_item`` places the carton in the **gripper_link frame**: centred at (0, 0, palm_clearance + gap +
size_z / 2), fingers closed on its +-y faces. Damage is placed where the camera sees it during a wrist
rotation: the +-x / +-y side faces (clear of the fingers), their vertical edges and the bottom edges/corners.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.artwork import FaceTextures, make_face_textures, sku_rng
from damage_perception.sim.damage import (INTERIOR, Appearance, Damage, Dent, Hole, SurfaceHits, Tear,
                                          _ragged_coeffs)
from damage_perception.sim.geometry import (TAG_PLAIN, BoxFace, SurfaceMesh, box_faces,
                                            grid_box_surface)

DAMAGE_TYPES = ("crush", "hole", "tear")
SKU_POOL = tuple(f"SKU-{code}" for code in (1041, 1187, 2203, 2650, 3012, 3379, 4128, 4471, 5206, 5893,
                                            6310, 7754))
GRIP_GAP = 0.003       # between the palm clearance plane and the carton's top
MESH_SPACING = 0.005   # vertex spacing of the carton surface
SIDE_FACES = (0, 1, 2, 3)  # +x, -x, +y, -y (face order of box_faces)


@dataclass(frozen=True)
class ItemSpec:
    """One catalogue entry: which SKU, its size (x, y = gripping axis, z = approach; metres) and its damage."""

    item_id: str
    sku: str
    size: tuple[float, float, float]
    damage: str = "pristine"   # pristine | crush | hole | tear
    severity: float = 0.0      # 0 (pristine) .. 1 (obvious)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.damage not in ("pristine",) + DAMAGE_TYPES:
            raise ValueError(f"unknown damage '{self.damage}'")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")


def sku_size(sku: str) -> tuple[float, float, float]:
    """Carton size of a SKU (deterministic): x, z in 6..25 cm, y (gripped) in 6..15 cm, rounded to mm."""
    rng = sku_rng(sku, "size")
    x, y, z = rng.uniform(0.06, 0.25), rng.uniform(0.06, 0.15), rng.uniform(0.06, 0.25)
    return (round(float(x), 3), round(float(y), 3), round(float(z), 3))


def make_catalogue(n_items: int, damage_rate: float, seed: int,
                   sku_pool: tuple[str, ...] = SKU_POOL) -> list[ItemSpec]:
    """A seeded list of items; SKUs repeat, damage types are uniform, severity uniform in 0.3..1."""
    rng = np.random.default_rng(seed)
    items = []
    for index in range(n_items):
        sku = str(sku_pool[int(rng.integers(len(sku_pool)))])
        damaged = bool(rng.random() < damage_rate)
        damage = str(DAMAGE_TYPES[int(rng.integers(len(DAMAGE_TYPES)))]) if damaged else "pristine"
        severity = round(float(rng.uniform(0.3, 1.0)), 3) if damaged else 0.0
        items.append(ItemSpec(f"item-{seed}-{index:03d}", sku, sku_size(sku), damage, severity,
                              int(rng.integers(2**31 - 1))))
    return items


@dataclass
class ItemModel:
    """A carton in the gripper_link frame: deformed mesh, rest positions, artwork and damage."""

    spec: ItemSpec
    center: np.ndarray
    size: np.ndarray
    faces: list[BoxFace]
    surface: SurfaceMesh
    textures: FaceTextures
    damage: Damage | None
    mesh: o3d.t.geometry.TriangleMesh = field(init=False)

    def __post_init__(self) -> None:
        self.mesh = self.surface.to_open3d()
        self._rest32 = self.surface.rest.astype(np.float32)
        self._face_origin = np.array([f.origin for f in self.faces])
        self._face_axes = np.array([[f.right / f.width, f.down / f.height] for f in self.faces])

    @property
    def grip_opening(self) -> float:
        """Finger opening that holds the carton (its y size)."""
        return float(self.size[1])

    @property
    def damage_center(self) -> np.ndarray | None:
        """Centre of the damage in the gripper frame (rest position), None if pristine."""
        return None if self.damage is None else np.asarray(self.damage.center, float)

    @property
    def damaged_triangles(self) -> np.ndarray:
        """Indices of triangles that carry damage (deformed, cut, torn)."""
        tags = self.surface.tag
        if self.damage is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(tags != TAG_PLAIN)

    def hits(self, triangle: np.ndarray, uv: np.ndarray, normal: np.ndarray, direction: np.ndarray) -> SurfaceHits:
        """Rest positions etc. of ray hits (primitive ids, primitive_uvs, normals and ray directions)."""
        tri = self.surface.triangles[triangle]
        rest = self._rest32
        u, v = uv[:, :1], uv[:, 1:]
        points = rest[tri[:, 0]]
        points += u * (rest[tri[:, 1]] - points) + v * (rest[tri[:, 2]] - points)
        backface = np.einsum("ij,ij->i", normal, direction) > 0
        return SurfaceHits(triangle, points, self.surface.face[triangle], self.surface.tag[triangle], backface)

    def appearance(self, hits: SurfaceHits) -> Appearance:
        """Albedo from the artwork at the rest positions; inside of the carton dark; damage applied."""
        rel = hits.rest - self._face_origin[hits.face].astype(np.float32)
        uv = np.einsum("nkj,nj->nk", self._face_axes[hits.face], rel)
        albedo = self.textures.sample(hits.face.astype(np.intp), uv)
        albedo[hits.backface] = INTERIOR
        look = Appearance(albedo, hits.backface.copy(), np.zeros(len(hits.face), bool), ~hits.backface)
        if self.damage is not None:
            self.damage.shade(hits, look)
        return look


def _finger_clear(point: np.ndarray, reach: float, gripper: GripperGeometry) -> bool:
    """Whether a damage of radius ``reach`` at ``point`` stays clear of the finger pads."""
    return not (abs(point[0]) < gripper.finger_size[0] / 2 + reach and point[2] < gripper.finger_size[2] + reach)


def _face_point(face: BoxFace, margin: float, rng: np.random.Generator) -> np.ndarray:
    """A random point on a face at least ``margin`` (clipped to half the face) from its edges."""
    mu = min(margin / face.width, 0.45)
    mv = min(margin / face.height, 0.45)
    return face.from_uv([[rng.uniform(mu, 1 - mu), rng.uniform(mv, 1 - mv)]])[0]


def _pick_face_point(faces: list[BoxFace], margin: float, gripper: GripperGeometry,
                     rng: np.random.Generator) -> tuple[BoxFace, np.ndarray]:
    """A visible side face and a point on it clear of the fingers (falls back to the +-x faces)."""
    for _ in range(40):
        face = faces[int(rng.choice(SIDE_FACES))]
        point = _face_point(face, margin, rng)
        if face.index < 2 or _finger_clear(point, margin, gripper):
            return face, point
    face = faces[int(rng.integers(2))]
    return face, _face_point(face, margin, rng)


def _make_dent(spec: ItemSpec, faces, size, center, gripper, rng) -> Dent:
    half = size / 2
    radius = min(0.02 + 0.03 * spec.severity, 0.45 * size.min())
    depth = min(0.005 + 0.025 * spec.severity, 0.25 * size.min())
    where = rng.choice(["face", "edge", "bottom_edge", "corner"], p=[0.45, 0.25, 0.15, 0.15])
    sx, sy = rng.choice([-1.0, 1.0], size=2)
    if where == "face":
        face, point = _pick_face_point(faces, 0.3 * radius, gripper, rng)
        outward = face.normal
    elif where == "edge":
        z = rng.uniform(min(gripper.finger_size[2], size[2] / 2), size[2]) - half[2]
        point = center + np.array([sx * half[0], sy * half[1], z])
        outward = np.array([sx, sy, 0.0]) / np.sqrt(2)
    elif where == "bottom_edge":
        axis = int(rng.integers(2))
        offset = np.zeros(3)
        offset[axis] = (sx if axis == 0 else sy) * half[axis]
        offset[1 - axis] = rng.uniform(-0.5, 0.5) * size[1 - axis]
        offset[2] = half[2]
        point = center + offset
        outward = (np.sign(offset) * (np.arange(3) != 1 - axis)) / np.sqrt(2)
    else:
        point = center + np.array([sx, sy, 1.0]) * half
        outward = np.array([sx, sy, 1.0]) / np.sqrt(3)
    creases = []
    for _ in range(int(rng.integers(2, 5))):
        e = np.cross(outward, rng.normal(size=3))
        creases.append((point + rng.normal(0, 0.25 * radius, 3), e / np.linalg.norm(e)))
    return Dent(point=point, inward=-outward, radius=radius, depth=depth, creases=np.array(creases))


def _make_hole(spec: ItemSpec, faces, size, center, gripper, rng) -> Hole:
    smallest_side = min(min(f.width, f.height) for f in faces[:4])
    radius = min(0.008 + 0.022 * spec.severity, 0.25 * smallest_side)
    face, point = _pick_face_point(faces, 1.4 * radius + 0.01, gripper, rng)
    return Hole(point=point, face=face, radius=radius, coeffs=_ragged_coeffs(rng, 0.25))


def _make_tear(spec: ItemSpec, faces, size, center, gripper, rng) -> Tear:
    smallest_side = min(min(f.width, f.height) for f in faces[:4])
    width = min(0.02 + 0.035 * spec.severity, 0.3 * smallest_side)
    length = min(0.015 + 0.03 * spec.severity, 0.4 * smallest_side)
    face, hinge = _pick_face_point(faces, 1.2 * max(width, length), gripper, rng)
    phi = rng.uniform(0, 2 * np.pi)
    hinge_dir = np.cos(phi) * face.right + np.sin(phi) * face.down
    hinge = hinge - np.cross(face.normal, hinge_dir) * length / 2  # centre the flap on the picked point
    return Tear(face=face, hinge_point=hinge, hinge_dir=hinge_dir, width=width, length=length,
                angle=0.35 + 0.8 * spec.severity, coeffs=_ragged_coeffs(rng, 0.35), spacing=MESH_SPACING)


DAMAGE_BUILDERS = {"crush": _make_dent, "hole": _make_hole, "tear": _make_tear}


def item_center(size, gripper: GripperGeometry) -> np.ndarray:
    """Centre of a carton of ``size`` held in the gripper (gripper_link frame)."""
    return np.array([0.0, 0.0, gripper.palm_clearance + GRIP_GAP + size[2] / 2])


def build_item(spec: ItemSpec, gripper: GripperGeometry) -> ItemModel:
    """The carton of ``spec`` in the gripper_link frame, textured and damaged."""
    size = np.asarray(spec.size, float)
    center = item_center(size, gripper)
    faces = box_faces(center, size)
    surface = grid_box_surface(faces, MESH_SPACING)
    damage = None
    if spec.damage != "pristine":
        rng = np.random.default_rng(spec.seed)
        damage = DAMAGE_BUILDERS[spec.damage](spec, faces, size, center, gripper, rng)
        damage.apply(surface)
    return ItemModel(spec, center, size, faces, surface, make_face_textures(spec.sku, faces), damage)
