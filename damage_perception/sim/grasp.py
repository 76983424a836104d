"""How the simulated gripper holds an item: ``GraspPose`` relative to the default grasp, and ``random_grasp``
drawing one per episode within the item kind's ranges (so its gripped faces stay flat on the finger pads)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.transforms import make_transform
from damage_perception.sim.catalogue import ItemSpec

GRIP_GAP = 0.003       # between the palm clearance plane and the item's top


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


def grasp_offset_x_limit(spec: ItemSpec, gripper: GripperGeometry) -> float:
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


def random_grasp(rng: np.random.Generator, spec: ItemSpec, gripper: GripperGeometry = GripperGeometry(),
                 scale: float = 1.0) -> GraspPose:
    """A grasp of ``spec`` drawn uniformly within its kind's ranges (times ``scale``, 0 = the default grasp):
    offset_x within +-grasp_offset_x_limit, offset_z in [0, GRASP_MAX_OFFSET_Z], tilt within
    +-GRASP_TILT_DEG. Always draws three values from ``rng``."""
    u = rng.uniform(-1.0, 1.0, 3)
    return GraspPose(offset_x=float(scale * grasp_offset_x_limit(spec, gripper) * u[0]),
                     offset_z=float(scale * GRASP_MAX_OFFSET_Z * (u[1] + 1.0) / 2),
                     tilt=float(scale * math.radians(GRASP_TILT_DEG[spec.kind]) * u[2]))

