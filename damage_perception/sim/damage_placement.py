"""Where and how an item's damage is made (``DAMAGE_BUILDERS``, one per damage type): on a face the camera
sees during a wrist rotation, clear of the finger pads, sized to the item."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.catalogue import ItemSpec
from damage_perception.sim.damage import Deconstruction, Dent, Hole, MissingPart, Spill, Tear, ragged_coeffs
from damage_perception.sim.geometry import BoxFace, dome_surface

MESH_SPACING = 0.005   # vertex spacing of the item surface
SIDE_FACES = (0, 1, 2, 3)  # +x, -x, +y, -y (face order of box_faces)


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
class DamageContext:
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


def _make_dent(ctx: DamageContext, rng) -> Dent:
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


def _make_hole(ctx: DamageContext, rng) -> Hole:
    radius = min(0.008 + 0.022 * ctx.spec.severity, 0.25 * ctx.smallest_side)
    face, point = _pick_face_point(ctx.faces, 1.4 * radius + 0.01, ctx.gripper, rng, ctx.sides,
                                   ctx.to_gripper)
    return Hole(point=point, face=face, radius=radius, coeffs=ragged_coeffs(rng, 0.25))


def _make_tear(ctx: DamageContext, rng) -> Tear:
    spec, smallest_side = ctx.spec, ctx.smallest_side
    width = min(0.02 + 0.035 * spec.severity, 0.3 * smallest_side)
    length = min(0.015 + 0.03 * spec.severity, 0.4 * smallest_side)
    face, hinge = _pick_face_point(ctx.faces, 1.2 * max(width, length), ctx.gripper, rng, ctx.sides,
                                   ctx.to_gripper)
    phi = rng.uniform(0, 2 * np.pi)
    hinge_dir = np.cos(phi) * face.right + np.sin(phi) * face.down
    hinge = hinge - np.cross(face.normal, hinge_dir) * length / 2  # centre the flap on the picked point
    return Tear(face=face, hinge_point=hinge, hinge_dir=hinge_dir, width=width, length=length,
                angle=0.35 + 0.8 * spec.severity, coeffs=ragged_coeffs(rng, 0.35), spacing=MESH_SPACING)


LIQUIDS = np.array([(0.35, 0.2, 0.1), (0.6, 0.1, 0.12), (0.2, 0.35, 0.7), (0.55, 0.5, 0.15)], np.float32)
POWDERS = np.array([(0.95, 0.94, 0.9), (0.35, 0.24, 0.16), (0.9, 0.85, 0.7)], np.float32)


def _make_spill(ctx: DamageContext, rng) -> Spill:
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
    return Spill(face=face, point=point, radius=radius, coeffs=ragged_coeffs(rng, 0.4), liquid=liquid,
                 stain=stain, blob=blob)


def _make_deconstruction(ctx: DamageContext, rng) -> Deconstruction:
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


def _make_missing_part(ctx: DamageContext, rng) -> MissingPart:
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

