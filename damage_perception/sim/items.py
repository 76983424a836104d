"""Items of the simulated cell: a seeded catalogue of SKUs of several kinds and their textured, damaged meshes.

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
``center``, ``damage_center`` and ``T_gripper_item`` are in the gripper frame. ``ItemSpec.size`` is the base box (bounding box). Damage is
placed where the camera sees it during a wrist rotation. Same SKU, same geometry and artwork; soft kinds
(mailer, bag) get instance wrinkles from the item seed (manufacturing jitter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import make_transform
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.sim.artwork import (PRINTED_DAMAGE_ARTS, FaceTextures, make_item_textures, sku_rng)
from damage_perception.sim.damage import (INTERIOR, SHELL_TAGS, Appearance, Damage, Deconstruction, Dent, Hole,
                                          MissingPart, Spill, SurfaceHits, Tear, _ragged_coeffs)
from damage_perception.sim.geometry import (TAG_PART, TAG_PLAIN, TAG_SHELL, TAG_SHELL_EMPTY, BoxFace,
                                            SurfaceMesh, box_faces, dome_surface, grid_box_surface)
from damage_perception.sim.shapes import BottleShape, PillowShape

ALL_KINDS = ("carton", "book", "mailer", "bottle", "bag", "blister")
KIND_PREFIX = {"SKU": "carton", "BK": "book", "ML": "mailer", "BT": "bottle", "BG": "bag", "BL": "blister"}
KIND_DAMAGES = {
    "carton": ("crush", "hole", "tear", "deconstruction", "spill"),
    "book": ("crush", "tear", "spill"),
    "mailer": ("hole", "spill"),
    "bottle": ("crush", "spill"),
    "bag": ("crush", "hole", "spill"),
    "blister": ("crush", "tear", "spill", "missing_part"),
}
SKU_POOL = tuple(f"SKU-{code}" for code in (1041, 1187, 2203, 2650, 3012, 3379, 4128, 4471, 5206, 5893,
                                            6310, 7754))
KIND_POOLS = {
    "carton": SKU_POOL,
    "book": ("BK-1203", "BK-2210", "BK-3307", "BK-4519", "BK-5602", "BK-6618"),
    "mailer": ("ML-1101", "ML-2290", "ML-3345", "ML-4412", "ML-5531", "ML-6650"),
    "bottle": ("BT-1150", "BT-2261", "BT-3372", "BT-4483", "BT-5594", "BT-6605", "BT-7716", "BT-8827"),
    "bag": ("BG-1120", "BG-2231", "BG-3342", "BG-4453", "BG-5564", "BG-6675"),
    "blister": ("BL-1130", "BL-2241", "BL-3352", "BL-4463", "BL-5574", "BL-6685"),
}
GRIP_GAP = 0.003       # between the palm clearance plane and the item's top
MESH_SPACING = 0.005   # vertex spacing of the item surface
SIDE_FACES = (0, 1, 2, 3)  # +x, -x, +y, -y (face order of box_faces)
BLISTER_CARD = 0.0015  # card thickness
PRINTED_ART_RATE = 0.25  # share of SKUs (of any kind) with damage-like printed artwork
VERSION_CHANGE_RATE = 0.3  # share of a catalogue's SKUs that change packaging partway through


def sku_kind(sku: str) -> str:
    """Kind of a SKU from its prefix (unknown prefixes are cartons)."""
    return KIND_PREFIX.get(sku.split("-")[0], "carton")


def sku_printed_art(sku: str) -> str:
    """The damage-like printed artwork a SKU carries ('' for none); deterministic."""
    rng = sku_rng(sku, "printed-art")
    return str(rng.choice(PRINTED_DAMAGE_ARTS)) if rng.random() < PRINTED_ART_RATE else ""




@dataclass(frozen=True)
class ItemSpec:
    """One catalogue entry: which SKU, its size (base box: x, y = gripping axis, z = approach; metres), its damage,
    kind (from the SKU), packaging version and damage-like printed artwork (texture only, not damage)."""

    item_id: str
    sku: str
    size: tuple[float, float, float]
    damage: str = "pristine"   # pristine | one of DAMAGE_TYPES allowed for the kind (KIND_DAMAGES)
    severity: float = 0.0      # 0 (pristine) .. 1 (obvious)
    seed: int = 0
    kind: str = "carton"
    packaging_version: int = 0
    printed_damage_art: str = ""  # "" or one of artwork.PRINTED_DAMAGE_ARTS

    def __post_init__(self) -> None:
        if self.kind not in ALL_KINDS:
            raise ValueError(f"unknown item kind '{self.kind}'")
        if self.damage != "pristine" and self.damage not in KIND_DAMAGES[self.kind]:
            raise ValueError(f"unknown damage '{self.damage}' for a {self.kind}")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")
        if self.printed_damage_art and self.printed_damage_art not in PRINTED_DAMAGE_ARTS:
            raise ValueError(f"unknown printed damage art '{self.printed_damage_art}'")

    @property
    def damage_label(self) -> int:
        """Index of the damage in DAMAGE_LABELS (0 for pristine)."""
        return 0 if self.damage == "pristine" else DAMAGE_LABELS.index(self.damage)


def _mm(*values: float) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in values)


def sku_size(sku: str) -> tuple[float, float, float]:
    """Base-box size of a SKU (deterministic, rounded to mm). Cartons: x, z in 6..25 cm, y (gripped) in 6..15 cm."""
    rng = sku_rng(sku, "size")
    kind = sku_kind(sku)
    if kind == "carton":
        return _mm(rng.uniform(0.06, 0.25), rng.uniform(0.06, 0.15), rng.uniform(0.06, 0.25))
    if kind == "book":
        return _mm(rng.uniform(0.12, 0.20), rng.uniform(0.012, 0.045), rng.uniform(0.17, 0.24))
    if kind == "mailer":
        return _mm(rng.uniform(0.15, 0.25), rng.uniform(0.02, 0.045), rng.uniform(0.18, 0.25))
    if kind == "bag":
        return _mm(rng.uniform(0.10, 0.16), rng.uniform(0.05, 0.09), rng.uniform(0.15, 0.23))
    if kind == "bottle":
        jar = rng.random() < 0.35
        radius = rng.uniform(0.04, 0.06) if jar else rng.uniform(0.028, 0.045)
        height = rng.uniform(0.08, 0.13) if jar else rng.uniform(0.14, 0.24)
        return _mm(2 * radius, 2 * radius, height)
    dome = rng.uniform(0.012, 0.02)  # blister: card width, card + domes on both sides of the grip plane, height
    return _mm(rng.uniform(0.09, 0.14), BLISTER_CARD + 2 * dome, rng.uniform(0.15, 0.22))


def sku_spec(sku: str, damage: str = "pristine", severity: float = 0.0, seed: int = 0, item_id: str = "",
             packaging_version: int = 0, printed_damage_art: str | None = None) -> ItemSpec:
    """An ItemSpec of ``sku`` with its kind, size and (unless given) printed artwork."""
    art = sku_printed_art(sku) if printed_damage_art is None else printed_damage_art
    return ItemSpec(item_id or f"{sku}-{damage}-{seed}", sku, sku_size(sku), damage,
                    0.0 if damage == "pristine" else severity, seed, sku_kind(sku), packaging_version, art)


def make_catalogue(n_items: int, damage_rate: float, seed: int, sku_pool: tuple[str, ...] | None = None,
                   kinds: tuple[str, ...] = ALL_KINDS) -> list[ItemSpec]:
    """A seeded list of items of mixed kinds: a kind uniformly, a SKU of it; SKUs repeat; damage types uniform
    among those of the kind, severity uniform in 0.3..1. ``sku_pool`` overrides the kinds' pools. Some SKUs
    (VERSION_CHANGE_RATE) switch to packaging version 1 at a seeded point in the catalogue."""
    rng = np.random.default_rng(seed)
    pools = [sku_pool] if sku_pool is not None else [KIND_POOLS[k] for k in kinds]
    drawn = []
    for index in range(n_items):
        pool = pools[int(rng.integers(len(pools)))]
        sku = str(pool[int(rng.integers(len(pool)))])
        kind = sku_kind(sku)
        damaged = bool(rng.random() < damage_rate)
        allowed = KIND_DAMAGES[kind]
        damage = str(allowed[int(rng.integers(len(allowed)))]) if damaged else "pristine"
        severity = round(float(rng.uniform(0.3, 1.0)), 3) if damaged else 0.0
        drawn.append((sku, damage, severity, int(rng.integers(2**31 - 1))))
    versions = np.random.default_rng([seed, 1])
    change_at = {}
    for sku in sorted({d[0] for d in drawn}):
        change = versions.random() < VERSION_CHANGE_RATE
        at = int(versions.integers(max(1, n_items // 3), max(2, 2 * n_items // 3 + 1)))
        change_at[sku] = at if change else n_items
    return [sku_spec(sku, damage, severity, item_seed, f"item-{seed}-{index:03d}",
                     packaging_version=int(index >= change_at[sku]))
            for index, (sku, damage, severity, item_seed) in enumerate(drawn)]


@dataclass(frozen=True)
class GraspPose:
    """Where the item sits between the fingers, relative to the default grasp (item centred under the palm, its
    top ``GRIP_GAP`` from the palm clearance plane, axis-aligned).

    The item turns by ``tilt`` (rad) about the gripper's y axis (the closing axis, so the gripped +-y faces stay
    parallel to the finger pads) about its centre, then shifts by ``offset_x`` (m) along x (across the pad) and
    by ``offset_z`` (m, >= 0) away from the palm; the shift along z is corrected so that the item's point
    closest to the palm stays ``offset_z`` further from it than in the default grasp (a tilt never pushes the
    item into the palm). ``GraspPose()`` is the default grasp."""

    offset_x: float = 0.0
    offset_z: float = 0.0
    tilt: float = 0.0

    def __post_init__(self) -> None:
        if self.offset_z < 0:
            raise ValueError(f"offset_z must be >= 0 (the palm is in the way), got {self.offset_z}")

    @property
    def is_default(self) -> bool:
        return self.offset_x == 0.0 and self.offset_z == 0.0 and self.tilt == 0.0

    def transform(self, center: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """gripper_link <- item frame (the default grasp's placement) for an item of ``center`` whose surface
        ``vertices`` (item frame) define its point closest to the palm."""
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        center = np.asarray(center, float)
        lowest = float(np.min((np.asarray(vertices) - center) @ rotation[2] + center[2]))
        lift = float(np.min(np.asarray(vertices)[:, 2])) - lowest
        return make_transform(center + np.array([self.offset_x, 0.0, self.offset_z + lift]) - rotation @ center,
                              rotation)


# Half-ranges of random_grasp, by kind: tilt (deg); offset_x as a share of the room the pads leave on the face
# (round and soft items: at most what keeps the contact on the pad); offset_z (m).
GRASP_TILT_DEG = {"carton": 6.0, "book": 6.0, "mailer": 5.0, "bag": 5.0, "bottle": 4.0, "blister": 2.5}
GRASP_MAX_OFFSET_Z = 0.02
GRASP_MAX_OFFSET_X = 0.03


def grasp_offset_x_limit(spec: "ItemSpec", gripper: GripperGeometry) -> float:
    """Largest |offset_x| of ``random_grasp`` for ``spec``: the pad stays on the gripped face (1 cm margin);
    bottles (round: the contact line is the bottle's axis) keep it within the pad, soft pillows within their
    thick middle."""
    pad_half = gripper.finger_size[0] / 2
    if spec.kind == "bottle":
        return max(0.0, pad_half - 0.004)
    room = max(0.0, spec.size[0] / 2 - pad_half - 0.01)
    if spec.kind in ("mailer", "bag"):
        room = min(room, 0.2 * spec.size[0] / 2)
    return min(room, GRASP_MAX_OFFSET_X)


def random_grasp(rng: np.random.Generator, spec: "ItemSpec", gripper: GripperGeometry = GripperGeometry(),
                 scale: float = 1.0) -> GraspPose:
    """A grasp of ``spec`` drawn uniformly within its kind's ranges (times ``scale``, 0 = the default grasp):
    offset_x within +-grasp_offset_x_limit, offset_z in [0, GRASP_MAX_OFFSET_Z], tilt within
    +-GRASP_TILT_DEG. Always draws three values from ``rng``."""
    u = rng.uniform(-1.0, 1.0, 3)
    return GraspPose(offset_x=float(scale * grasp_offset_x_limit(spec, gripper) * u[0]),
                     offset_z=float(scale * GRASP_MAX_OFFSET_Z * (u[1] + 1.0) / 2),
                     tilt=float(scale * math.radians(GRASP_TILT_DEG[spec.kind]) * u[2]))


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


def _finger_clear(point: np.ndarray, reach: float, gripper: GripperGeometry,
                  to_gripper: np.ndarray | None = None) -> bool:
    """Whether a damage of radius ``reach`` at ``point`` (item frame; ``to_gripper``: gripper <- item, None for
    the default grasp) stays clear of the finger pads."""
    if to_gripper is not None:
        point = to_gripper[:3, :3] @ point + to_gripper[:3, 3]
    return not (abs(point[0]) < gripper.finger_size[0] / 2 + reach and point[2] < gripper.finger_size[2] + reach)


def _face_point(face: BoxFace, margin: float, rng: np.random.Generator) -> np.ndarray:
    """A random point on a face at least ``margin`` (clipped to half the face) from its edges."""
    mu = min(margin / face.width, 0.45)
    mv = min(margin / face.height, 0.45)
    return face.from_uv([[rng.uniform(mu, 1 - mu), rng.uniform(mv, 1 - mv)]])[0]


def _pick_face_point(faces: list[BoxFace], margin: float, gripper: GripperGeometry,
                     rng: np.random.Generator, sides: tuple[int, ...] = SIDE_FACES,
                     to_gripper: np.ndarray | None = None) -> tuple[BoxFace, np.ndarray]:
    """A visible side face and a point on it clear of the fingers (falls back to the first two sides)."""
    for _ in range(40):
        face = faces[int(rng.choice(sides))]
        point = _face_point(face, margin, rng)
        if face.index < 2 or _finger_clear(point, margin, gripper, to_gripper):
            return face, point
    face = faces[sides[int(rng.integers(min(2, len(sides))))]]
    return face, _face_point(face, margin, rng)


@dataclass
class _Context:
    """What damage builders need to know of the item."""

    spec: ItemSpec
    faces: list[BoxFace]
    size: np.ndarray
    center: np.ndarray
    gripper: GripperGeometry
    sides: tuple[int, ...]           # faces damage may sit on
    opening: float
    blister: dict | None = None
    to_gripper: np.ndarray | None = None  # gripper <- item frame (None: default grasp)

    @property
    def smallest_side(self) -> float:
        return min(min(self.faces[i].width, self.faces[i].height) for i in self.sides)


def _make_dent(ctx: _Context, rng) -> Dent:
    spec, faces, size, center, gripper = ctx.spec, ctx.faces, ctx.size, ctx.center, ctx.gripper
    half = size / 2
    radius = min(0.02 + 0.03 * spec.severity, 0.45 * size.min())
    depth = min(0.005 + 0.025 * spec.severity, 0.25 * size.min())
    if spec.kind == "blister":  # a bent corner of the card
        radius = min(0.02 + 0.03 * spec.severity, 0.4 * size[0])
        depth = 0.004 + 0.012 * spec.severity
        sx, sy = rng.choice([-1.0, 1.0], size=2)
        point = center + np.array([sx * half[0], 0.0, half[2]])
        outward = np.array([0.0, -sy, 0.0])
    else:
        options = ["face", "edge"] if spec.kind in ("bottle", "bag") else ["face", "edge", "bottom_edge", "corner"]
        probs = [0.6, 0.4] if len(options) == 2 else [0.45, 0.25, 0.15, 0.15]
        where = rng.choice(options, p=probs)
        sx, sy = rng.choice([-1.0, 1.0], size=2)
        if where == "face":
            face, point = _pick_face_point(faces, 0.3 * radius, gripper, rng, ctx.sides, ctx.to_gripper)
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


def _make_hole(ctx: _Context, rng) -> Hole:
    radius = min(0.008 + 0.022 * ctx.spec.severity, 0.25 * ctx.smallest_side)
    face, point = _pick_face_point(ctx.faces, 1.4 * radius + 0.01, ctx.gripper, rng, ctx.sides,
                                   ctx.to_gripper)
    return Hole(point=point, face=face, radius=radius, coeffs=_ragged_coeffs(rng, 0.25))


def _make_tear(ctx: _Context, rng) -> Tear:
    spec, smallest_side = ctx.spec, ctx.smallest_side
    width = min(0.02 + 0.035 * spec.severity, 0.3 * smallest_side)
    length = min(0.015 + 0.03 * spec.severity, 0.4 * smallest_side)
    face, hinge = _pick_face_point(ctx.faces, 1.2 * max(width, length), ctx.gripper, rng, ctx.sides,
                                   ctx.to_gripper)
    phi = rng.uniform(0, 2 * np.pi)
    hinge_dir = np.cos(phi) * face.right + np.sin(phi) * face.down
    hinge = hinge - np.cross(face.normal, hinge_dir) * length / 2  # centre the flap on the picked point
    return Tear(face=face, hinge_point=hinge, hinge_dir=hinge_dir, width=width, length=length,
                angle=0.35 + 0.8 * spec.severity, coeffs=_ragged_coeffs(rng, 0.35), spacing=MESH_SPACING)


LIQUIDS = np.array([(0.35, 0.2, 0.1), (0.6, 0.1, 0.12), (0.2, 0.35, 0.7), (0.55, 0.5, 0.15)], np.float32)
POWDERS = np.array([(0.95, 0.94, 0.9), (0.35, 0.24, 0.16), (0.9, 0.85, 0.7)], np.float32)


def _make_spill(ctx: _Context, rng) -> Spill:
    """A stain on a side face and a blob of the same stuff on the outer side or the tip of a finger."""
    sev, gripper = ctx.spec.severity, ctx.gripper
    radius = min(0.01 + 0.03 * sev, 0.35 * ctx.smallest_side)
    sides = (2,) if ctx.spec.kind == "blister" else ctx.sides  # the blister's back: no domes in the way
    face, point = _pick_face_point(ctx.faces, radius, gripper, rng, sides, ctx.to_gripper)
    liquid = bool(rng.random() < (0.2 if ctx.spec.kind == "bag" else 0.7))
    table = LIQUIDS if liquid else POWDERS
    stain = table[int(rng.integers(len(table)))]
    sign = float(rng.choice([-1.0, 1.0]))
    fx, ft, fl = gripper.finger_size
    y_finger = sign * (ctx.opening / 2 + ft / 2)
    h = 0.0015 + 0.002 * sev
    if rng.random() < 0.6:  # on the outer side of the finger
        c = np.array([rng.uniform(-0.2, 0.2) * fx, y_finger + sign * ft / 2, rng.uniform(0.45, 0.75) * fl])
        radii = np.array([min(0.004 + 0.006 * sev, 0.45 * fx), h, 0.006 + 0.014 * sev])
        blob = dome_surface(c, radii, axis=1, sign=sign, n_theta=4, n_phi=16)
    else:  # a drip hanging from the finger tip
        c = np.array([0.0, y_finger, fl])
        radii = np.array([0.45 * fx * (0.5 + 0.5 * sev), 0.45 * ft, 0.002 + 0.006 * sev])
        blob = dome_surface(c, radii, axis=2, sign=1.0, n_theta=4, n_phi=16)
    return Spill(face=face, point=point, radius=radius, coeffs=_ragged_coeffs(rng, 0.4), liquid=liquid,
                 stain=stain, blob=blob)


def _make_deconstruction(ctx: _Context, rng) -> Deconstruction:
    """The far end's flap (half of the +z face, split at the taped seam) open, contents sticking out."""
    sev, size, center = ctx.spec.severity, ctx.size, ctx.center
    sy = float(rng.choice([-1.0, 1.0]))
    protrude = 0.008 + 0.05 * sev
    content_size = np.array([0.6 * size[0], 0.35 * size[1], 0.5 * size[2] + protrude])
    content_center = center + np.array([rng.uniform(-0.1, 0.1) * size[0], sy * size[1] / 4,
                                        size[2] / 2 + protrude - content_size[2] / 2])
    return Deconstruction(face=ctx.faces[4], side=np.array([0.0, sy, 0.0]), half_extent=size[1] / 2,
                          angle=0.4 + 1.4 * sev, content_center=content_center, content_size=content_size,
                          content_albedo=np.asarray(0.3 + 0.65 * rng.random(3), np.float32),
                          spacing=MESH_SPACING)


def _make_missing_part(ctx: _Context, rng) -> MissingPart:
    """The most (severity 1) to least (severity 0.3) conspicuous part of the set is missing."""
    domes = ctx.blister["domes"]
    order = np.argsort([-d["volume"] for d in domes])
    index = int(order[int(round((1.0 - ctx.spec.severity) / 0.7 * (len(domes) - 1)))])
    dome = domes[min(index, len(domes) - 1)]
    return MissingPart(index=index, dome_center=dome["center"], shell_triangles=dome["shell"],
                       part_triangles=dome["part"])


DAMAGE_BUILDERS = {"crush": _make_dent, "hole": _make_hole, "tear": _make_tear, "spill": _make_spill,
                   "deconstruction": _make_deconstruction, "missing_part": _make_missing_part}
DAMAGE_SIDES = {"carton": SIDE_FACES, "bottle": SIDE_FACES, "book": (2, 3), "mailer": (2, 3), "bag": (2, 3),
                "blister": (2,)}


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
        ctx = _Context(spec, faces, size, center, gripper, DAMAGE_SIDES[kind], opening, blister, to_gripper)
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
