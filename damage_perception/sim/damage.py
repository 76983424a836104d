"""Carton damage models: each deforms a ``SurfaceMesh`` once and then adjusts the appearance of ray hits.

- ``Dent`` (crush): vertices pushed inward with a smooth profile around a point on a face, edge or corner;
  crease lines and a darkened ring in colour.
- ``Hole``: a ragged disc cut out of a face, exact to the pixel (straddling triangles are see-through inside
  the outline, so the renderer casts on); rays through it hit the inside of the far wall.
- ``Tear``: a ragged half-ellipse of the printed layer torn along its outline and folded outward about a
  hinge line; the exposed board and the flap's underside are light-brown corrugated cardboard.

All positions are in the item's frame (gripper_link). Appearance works on rest (undeformed) hit positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from damage_perception.sim.geometry import (
    TAG_CONTENT,
    TAG_CUTOUT,
    TAG_DENT,
    TAG_OPEN_FLAP,
    TAG_PART,
    TAG_PLAIN,
    TAG_SHELL,
    TAG_SHELL_EMPTY,
    TAG_STAIN,
    TAG_TEAR_BASE,
    TAG_TEAR_FLAP,
    BoxFace,
    SurfaceMesh,
    box_faces,
    grid_box_surface,
)

INTERIOR = np.array([0.24, 0.16, 0.09], np.float32)      # inside of a carton, in shadow
CORRUGATED = np.array([0.78, 0.62, 0.42], np.float32)    # exposed torn board
FIBRE = np.array([0.93, 0.89, 0.80], np.float32)         # torn paper edge


@dataclass
class SurfaceHits:
    """Ray hits on an item surface: triangle, rest position, face, tag and whether the back side was hit."""

    triangle: np.ndarray  # (N,) int
    rest: np.ndarray      # (N, 3) float64
    face: np.ndarray      # (N,) int8
    tag: np.ndarray       # (N,) uint8
    backface: np.ndarray  # (N,) bool
    cos: np.ndarray | None = None  # (N,) cosine between the surface normal and the ray direction


@dataclass
class Appearance:
    """What the surface looks like at the hits: albedo, damage label and see-through (cast on) flags."""

    albedo: np.ndarray       # (N, 3) float32
    damaged: np.ndarray      # (N,) bool
    see_through: np.ndarray  # (N,) bool
    lit: np.ndarray          # (N,) bool: False in the carton's shadowed inside (ambient light only)
    sheen: np.ndarray | None = None           # (N,) float32: highlight added to the pixel of a see-through hit
    damage_through: np.ndarray | None = None  # (N,) bool: a see-through hit marks what is seen behind it damaged


def _ragged(angle: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """1 + a sum of low harmonics with random phases: a ragged outline radius factor."""
    k = np.arange(2, 2 + len(coeffs))
    return 1.0 + np.sum(coeffs[:, 0] * np.sin(np.multiply.outer(angle, k) + coeffs[:, 1]), axis=-1)


def ragged_coeffs(rng: np.random.Generator, amplitude: float, n: int = 6) -> np.ndarray:
    return np.stack([amplitude * rng.random(n) / np.arange(1, n + 1) ** 0.7, rng.uniform(0, 2 * np.pi, n)], 1)


@dataclass
class Damage:
    """Base class: a damage with a centre (item frame) and per-triangle labels."""

    kind: str = field(init=False, default="")
    center: np.ndarray = field(init=False, default=None)

    def apply(self, mesh: SurfaceMesh) -> None:
        """Deform / cut the mesh and tag damaged triangles."""
        raise NotImplementedError

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        """Adjust albedo, damage and see-through flags of hits in place."""
        raise NotImplementedError


@dataclass
class Dent(Damage):
    """A crush: smooth inward push of ``depth`` metres within ``radius`` of ``point`` along ``inward``."""

    point: np.ndarray = None
    inward: np.ndarray = None
    radius: float = 0.03
    depth: float = 0.01
    creases: np.ndarray = None  # (K, 2, 3): point and unit direction of crease lines

    def __post_init__(self) -> None:
        self.kind, self.center = "crush", np.asarray(self.point, float)

    def _profile(self, rest: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(rest - self.point, axis=-1) / self.radius
        return np.where(d < 1.0, (1.0 - np.minimum(d, 1.0) ** 2) ** 2, 0.0)

    def apply(self, mesh: SurfaceMesh) -> None:
        push = self.depth * self._profile(mesh.rest)
        mesh.vertices = mesh.vertices + push[:, None] * self.inward
        moved = (push > 0.001)[mesh.triangles].any(axis=1)
        mesh.tag[moved & (mesh.tag == TAG_PLAIN)] = TAG_DENT

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        sel = (hits.tag == TAG_DENT) & ~hits.backface
        if not sel.any():
            return
        rest = hits.rest[sel]
        d = np.linalg.norm(rest - self.point, axis=-1) / self.radius
        factor = 1.0 - 0.22 * np.exp(-((d - 0.6) / 0.15) ** 2)
        for q, e in self.creases:
            rel = rest - q
            dist = np.linalg.norm(rel - np.outer(rel @ e, e), axis=-1)
            factor = factor * np.where((dist < 0.0012) & (d < 0.85), 0.55, 1.0)
        look.albedo[sel] *= factor[:, None].astype(np.float32)
        look.damaged[sel] = True


@dataclass
class Hole(Damage):
    """A puncture: ragged disc of ``radius`` on ``face`` around ``point``, with a rim pushed in."""

    point: np.ndarray = None
    face: BoxFace = None
    radius: float = 0.015
    coeffs: np.ndarray = None
    rim_width: float = 0.008
    rim_depth: float = 0.004

    def __post_init__(self) -> None:
        self.kind, self.center = "hole", np.asarray(self.point, float)

    def _polar(self, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance from the centre in the face plane and the outline radius in that direction."""
        rel = rest - self.point
        x, y = rel @ self.face.right, rel @ self.face.down
        return np.hypot(x, y), self.radius * _ragged(np.arctan2(y, x), self.coeffs)

    def _on_face(self, points: np.ndarray) -> np.ndarray:
        return np.abs((points - self.face.origin) @ self.face.normal) < 1e-6

    def apply(self, mesh: SurfaceMesh) -> None:
        r, outline = self._polar(mesh.rest)
        on_face = self._on_face(mesh.rest)
        inside = on_face & (r < outline)
        rim = on_face & (r < outline + self.rim_width)
        push = np.where(rim, self.rim_depth * np.clip(1 - (r - outline) / self.rim_width, 0, 1) ** 2, 0.0)
        mesh.vertices = mesh.vertices - push[:, None] * self.face.normal
        tri_inside, tri_rim = inside[mesh.triangles], rim[mesh.triangles]
        mesh.tag[tri_rim.any(axis=1)] = TAG_DENT
        mesh.tag[tri_inside.any(axis=1)] = TAG_CUTOUT
        mesh.keep(~tri_inside.all(axis=1))

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        sel = ((hits.tag == TAG_DENT) | (hits.tag == TAG_CUTOUT)) & ~hits.backface
        if not sel.any():
            return
        r, outline = self._polar(hits.rest[sel])
        idx = np.flatnonzero(sel)
        look.see_through[idx[r < outline]] = True
        edge = idx[(r >= outline) & (r < outline + 0.0015)]
        look.albedo[edge] = 0.5 * look.albedo[edge] + 0.5 * CORRUGATED
        crumple = 1.0 - 0.25 * np.clip(1 - (r - outline) / self.rim_width, 0, 1)
        look.albedo[idx] *= crumple[:, None].astype(np.float32)
        look.damaged[idx] = True


@dataclass
class Tear(Damage):
    """A torn flap: the region b > 0, (a/W)^2 + (b/L)^2 < ragged^2 in hinge coordinates, folded out by ``angle``."""

    face: BoxFace = None
    hinge_point: np.ndarray = None
    hinge_dir: np.ndarray = None    # unit, in the face plane
    width: float = 0.04             # half-extent along the hinge
    length: float = 0.03            # extent away from the hinge
    angle: float = 0.7              # fold-out angle (rad)
    coeffs: np.ndarray = None
    spacing: float = 0.005

    def __post_init__(self) -> None:
        self.kind = "tear"
        self.perp = np.cross(self.face.normal, self.hinge_dir)
        self.center = self.hinge_point + self.perp * self.length / 2

    def _region(self, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inside, distance outside the outline in metres, negative inside) of rest points."""
        rel = rest - self.hinge_point
        a, b = rel @ self.hinge_dir, rel @ self.perp
        theta = np.arctan2(b / self.length, a / self.width)
        rho = np.hypot(a / self.width, b / self.length) / _ragged(theta, self.coeffs)
        outside = np.maximum((rho - 1.0) * min(self.width, self.length), -b)
        return outside < 0, outside

    def _fold(self, points: np.ndarray) -> np.ndarray:
        """Rotate points about the hinge line so the flap swings outward (Rodrigues)."""
        k = self.hinge_dir * np.sign(np.dot(np.cross(self.hinge_dir, self.perp), self.face.normal))
        v = points - self.hinge_point
        c, s = np.cos(self.angle), np.sin(self.angle)
        rotated = v * c + np.cross(k, v) * s + np.outer(v @ k, k) * (1 - c)
        return self.hinge_point + rotated + 0.0003 * self.face.normal

    def apply(self, mesh: SurfaceMesh) -> None:
        centroids = mesh.rest[mesh.triangles].mean(axis=1)
        on_face = np.abs((centroids - self.face.origin) @ self.face.normal) < 1e-6
        _, outside = self._region(centroids)
        selected = on_face & (outside < self.spacing)
        mesh.tag[selected] = TAG_TEAR_BASE
        used, inverse = np.unique(mesh.triangles[selected], return_inverse=True)
        flap_rest = mesh.rest[used]
        mesh.append(self._fold(mesh.vertices[used]), flap_rest, inverse.reshape(-1, 3),
                    mesh.face[selected], np.full(int(selected.sum()), TAG_TEAR_FLAP, np.uint8))

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        sel = np.flatnonzero((hits.tag == TAG_TEAR_BASE) | (hits.tag == TAG_TEAR_FLAP))
        if not len(sel):
            return
        rest, back = hits.rest[sel], hits.backface[sel]
        base, flap = hits.tag[sel] == TAG_TEAR_BASE, hits.tag[sel] == TAG_TEAR_FLAP
        inside, outside = self._region(rest)
        flutes = (0.9 + 0.1 * np.sin(2 * np.pi * (rest @ self.hinge_dir) / 0.004)).astype(np.float32)[:, None]
        albedo = look.albedo[sel]
        exposed = base & inside & ~back
        albedo[exposed] = CORRUGATED * flutes[exposed]
        tear_line = base & ~inside & (outside < 0.0015)
        albedo[tear_line] = FIBRE
        underside = flap & inside & back
        albedo[underside] = 0.9 * CORRUGATED * flutes[underside]
        albedo[flap & inside & ~back & (outside > -0.0012)] = FIBRE
        look.albedo[sel] = albedo
        look.lit[sel[underside]] = True
        look.see_through[sel[flap & ~inside]] = True
        look.damaged[sel[exposed | tear_line | (flap & inside)]] = True


@dataclass
class Spill(Damage):
    """A spill: a ragged stain printed into the surface around ``point`` on ``face`` (liquid: dark wet patch with a
    tide line; powder: whitish dusting), and a small blob (``blob``: vertices, triangles in the gripper frame) of
    the same stuff on a gripper finger, rendered as its own part (labelled spill, outside item_mask)."""

    face: BoxFace = None
    point: np.ndarray = None
    radius: float = 0.02
    coeffs: np.ndarray = None
    liquid: bool = True
    stain: np.ndarray = None                   # (3,) colour of the spilled stuff
    blob: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.kind, self.center = "spill", np.asarray(self.point, float)

    def _polar(self, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = rest - self.point
        x, y = rel @ self.face.right, rel @ self.face.down
        return np.hypot(x, y), self.radius * _ragged(np.arctan2(y, x), self.coeffs)

    def apply(self, mesh: SurfaceMesh) -> None:
        centroids = mesh.rest[mesh.triangles].mean(axis=1)
        on_face = mesh.face == self.face.index
        r, outline = self._polar(centroids)
        mesh.tag[on_face & (r < outline + 0.006) & (mesh.tag == TAG_PLAIN)] = TAG_STAIN

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        sel = np.flatnonzero((hits.tag == TAG_STAIN) & ~hits.backface)
        if not len(sel):
            return
        r, outline = self._polar(hits.rest[sel])
        inside = r < outline
        idx = sel[inside]
        albedo = look.albedo[idx]
        if self.liquid:
            tide = np.exp(-((outline[inside] - r[inside]) / 0.0015) ** 2)[:, None].astype(np.float32)
            albedo = albedo * (0.45 + 0.2 * (1 - tide)) * (0.5 + 0.5 * self.stain) * (1 - 0.25 * tide)
        else:
            cover = np.clip((outline[inside] - r[inside]) / (0.3 * self.radius), 0.3, 0.85)[:, None]
            albedo = (1 - cover) * albedo + cover * self.stain
        look.albedo[idx] = albedo.astype(np.float32)
        look.damaged[idx] = True


@dataclass
class Deconstruction(Damage):
    """An opened box: the half of ``face`` on the ``side`` of the seam through the face centre swings open about
    the face's edge by ``angle``, and a contents box (``content_center``, ``content_size``) protrudes."""

    face: BoxFace = None
    side: np.ndarray = None           # unit, in the face plane: from the seam towards the hinge edge
    half_extent: float = 0.05         # distance from the seam to the hinge edge
    angle: float = 1.2
    content_center: np.ndarray = None
    content_size: np.ndarray = None
    content_albedo: np.ndarray = None
    spacing: float = 0.005

    def __post_init__(self) -> None:
        self.kind = "deconstruction"
        seam = self.face.origin + self.face.right * self.face.width / 2 + self.face.down * self.face.height / 2
        self.hinge_point = seam + self.side * self.half_extent
        self.center = self.content_center + self.face.normal * 0.5 * self.content_size @ np.abs(self.face.normal)

    def _fold(self, points: np.ndarray) -> np.ndarray:
        u = -self.side
        k = np.cross(u, self.face.normal)
        v = points - self.hinge_point
        c, s = np.cos(self.angle), np.sin(self.angle)
        return self.hinge_point + v * c + np.cross(k, v) * s + np.outer(v @ k, k) * (1 - c)

    def apply(self, mesh: SurfaceMesh) -> None:
        centroids = mesh.rest[mesh.triangles].mean(axis=1)
        flap = (mesh.face == self.face.index) & ((centroids - self.hinge_point) @ self.side > -self.half_extent)
        used, inverse = np.unique(mesh.triangles[flap], return_inverse=True)
        vertices, rest, face = self._fold(mesh.vertices[used]), mesh.rest[used], mesh.face[flap]
        mesh.keep(~flap)
        mesh.append(vertices, rest, inverse.reshape(-1, 3), face, np.full(len(face), TAG_OPEN_FLAP, np.uint8))
        box = grid_box_surface(box_faces(self.content_center, self.content_size), self.spacing)
        mesh.append(box.vertices, box.rest, box.triangles, np.full(len(box.triangles), -1, np.int8),
                    np.full(len(box.triangles), TAG_CONTENT, np.uint8))

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        flap = np.flatnonzero(hits.tag == TAG_OPEN_FLAP)
        back = flap[hits.backface[flap]]
        look.albedo[back] = 0.9 * CORRUGATED
        look.lit[back] = True
        content = np.flatnonzero(hits.tag == TAG_CONTENT)
        stripes = 0.85 + 0.15 * (np.floor(hits.rest[content] @ np.array([0.0, 0.0, 1.0]) / 0.012) % 2)
        look.albedo[content] = (self.content_albedo * stripes[:, None]).astype(np.float32)
        look.lit[content] = True
        look.damaged[flap] = True
        look.damaged[content] = True


@dataclass
class MissingPart(Damage):
    """A broken set: the part of dome ``index`` is absent (its triangles ``part_triangles`` are dropped and the
    dome's shell, ``shell_triangles``, is re-tagged empty: see-through, marking what is seen through it)."""

    index: int = 0
    dome_center: np.ndarray = None
    shell_triangles: np.ndarray = None
    part_triangles: np.ndarray = None

    def __post_init__(self) -> None:
        self.kind, self.center = "missing_part", np.asarray(self.dome_center, float)

    def apply(self, mesh: SurfaceMesh) -> None:
        mesh.tag[self.shell_triangles] = TAG_SHELL_EMPTY
        keep = np.ones(len(mesh.triangles), bool)
        keep[self.part_triangles] = False
        mesh.keep(keep)

    def shade(self, hits: SurfaceHits, look: Appearance) -> None:
        return  # the empty shell is handled by the item's appearance (TAG_SHELL_EMPTY)


SHELL_TAGS = (TAG_SHELL, TAG_SHELL_EMPTY)
PART_TAG = TAG_PART
