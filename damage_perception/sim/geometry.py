"""Triangle-mesh building blocks: a finely gridded box surface with per-face coordinates, and simple solids.

A ``SurfaceMesh`` keeps deformed and rest (undeformed) vertex positions side by side so that texture
coordinates of a ray hit come from the rest position and stay glued to a dented or torn surface.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

# Per-triangle tags: how the appearance model treats a hit on the triangle.
TAG_PLAIN = 0      # printed carton surface
TAG_DENT = 1       # deformed by a crush (crease shading)
TAG_CUTOUT = 2     # straddles a hole outline: per-pixel test decides solid or see-through
TAG_TEAR_BASE = 3  # in-place surface under a torn flap (exposed corrugated board inside the outline)
TAG_TEAR_FLAP = 4  # the torn flap, rotated outward (see-through outside the outline)
TAG_STAIN = 5      # spill stain on the printed surface (appearance only)
TAG_OPEN_FLAP = 6  # deconstruction: a box flap swung open
TAG_CONTENT = 7    # deconstruction: contents protruding from the opening
TAG_SHELL = 8      # blister: clear dome shell (see-through, faint highlight)
TAG_SHELL_EMPTY = 9  # blister: the clear shell of the dome whose part is missing
TAG_PART = 10      # blister: a part held in a dome


@dataclass(frozen=True)
class BoxFace:
    """One face of a box: outward normal, image axes (right, down) and the top-left corner, all in the box frame.

    A rest point p maps to texture coordinates ((p - origin) . right / width, (p - origin) . down / height).
    """

    index: int
    normal: np.ndarray
    right: np.ndarray
    down: np.ndarray
    origin: np.ndarray
    width: float
    height: float

    def to_uv(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) rest points on the face -> (N, 2) texture coordinates in [0, 1]."""
        rel = points - self.origin
        return np.stack([rel @ self.right / self.width, rel @ self.down / self.height], axis=-1)

    def from_uv(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) texture coordinates -> (N, 3) points on the face."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        return self.origin + uv[:, :1] * self.width * self.right + uv[:, 1:] * self.height * self.down


def box_faces(center: np.ndarray, size: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, -1.0])) -> list[BoxFace]:
    """The six faces of an axis-aligned box, ordered +x, -x, +y, -y, +z, -z.

    ``up`` is the direction artwork reads upright on the side faces (gripper -z: the item hangs down).
    """
    center, size = np.asarray(center, float), np.asarray(size, float)
    faces = []
    for index, (axis, sign) in enumerate([(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]):
        normal = np.zeros(3)
        normal[axis] = sign
        if abs(np.dot(normal, up)) > 0.5:
            right = np.array([1.0, 0.0, 0.0])
            face_up = np.cross(normal, right)
        else:
            face_up = up
            right = np.cross(face_up, normal)
        down = -face_up
        width = float(np.abs(right) @ size)
        height = float(np.abs(down) @ size)
        origin = center + normal * size[axis] / 2 - right * width / 2 - down * height / 2
        faces.append(BoxFace(index, normal, right, down, origin, width, height))
    return faces


@dataclass
class SurfaceMesh:
    """A triangle mesh with rest positions, per-triangle face index and tag (see TAG_*)."""

    vertices: np.ndarray       # (V, 3) float64, deformed
    rest: np.ndarray           # (V, 3) float64, undeformed
    triangles: np.ndarray      # (T, 3) int32
    face: np.ndarray           # (T,) int8: BoxFace.index
    tag: np.ndarray            # (T,) uint8

    def keep(self, mask: np.ndarray) -> None:
        """Drop the triangles where ``mask`` is False (vertices are left in place)."""
        self.triangles, self.face, self.tag = self.triangles[mask], self.face[mask], self.tag[mask]

    def append(self, vertices: np.ndarray, rest: np.ndarray, triangles: np.ndarray,
               face: np.ndarray, tag: np.ndarray) -> None:
        """Add triangles indexing into newly appended vertices."""
        offset = len(self.vertices)
        self.vertices = np.vstack([self.vertices, vertices])
        self.rest = np.vstack([self.rest, rest])
        self.triangles = np.vstack([self.triangles, triangles + offset]).astype(np.int32)
        self.face = np.concatenate([self.face, face]).astype(np.int8)
        self.tag = np.concatenate([self.tag, tag]).astype(np.uint8)

    def to_open3d(self) -> o3d.t.geometry.TriangleMesh:
        """Tensor mesh of the deformed surface."""
        return tensor_mesh(self.vertices, self.triangles)


def tensor_mesh(vertices: np.ndarray, triangles: np.ndarray) -> o3d.t.geometry.TriangleMesh:
    """open3d tensor TriangleMesh from numpy arrays."""
    mesh = o3d.t.geometry.TriangleMesh()
    mesh.vertex.positions = o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32))
    mesh.triangle.indices = o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.int32))
    return mesh


def grid_box_surface(faces: list[BoxFace], spacing: float) -> SurfaceMesh:
    """A box surface with vertices about every ``spacing`` metres; each face has its own vertex grid.

    Vertices on shared edges are duplicated with identical coordinates, so the surface stays watertight as
    long as deformations are functions of the rest position. Triangles wind with outward normals.
    """
    vertices, triangles, face_ids = [], [], []
    offset = 0
    for face in faces:
        nu = max(2, int(np.ceil(face.width / spacing)) + 1)
        nv = max(2, int(np.ceil(face.height / spacing)) + 1)
        u, v = np.meshgrid(np.linspace(0, 1, nu), np.linspace(0, 1, nv))
        vertices.append(face.from_uv(np.stack([u.ravel(), v.ravel()], axis=-1)))
        idx = np.arange(nu * nv).reshape(nv, nu) + offset
        a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
        tris = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
        triangles.append(tris)
        face_ids.append(np.full(len(tris), face.index, np.int8))
        offset += nu * nv
    verts = np.vstack(vertices)
    tris = np.vstack(triangles).astype(np.int32)
    return SurfaceMesh(verts, verts.copy(), tris, np.concatenate(face_ids),
                       np.zeros(len(tris), np.uint8))


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit geometric normals (T, 3) of a mesh's triangles."""
    p = vertices[triangles]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def box_mesh(center, size) -> o3d.t.geometry.TriangleMesh:
    """Axis-aligned solid box centred on ``center``."""
    mesh = o3d.t.geometry.TriangleMesh.create_box(*[float(s) for s in size])
    return mesh.translate(o3d.core.Tensor(np.asarray(center, np.float32) - np.asarray(size, np.float32) / 2))


def cylinder_mesh(radius: float, z_min: float, z_max: float, resolution: int = 40) -> o3d.t.geometry.TriangleMesh:
    """Closed cylinder about z spanning [z_min, z_max]."""
    mesh = o3d.t.geometry.TriangleMesh.create_cylinder(radius, z_max - z_min, resolution, 1)
    return mesh.translate(o3d.core.Tensor(np.array([0.0, 0.0, (z_min + z_max) / 2], np.float32)))


def dome_surface(center: np.ndarray, radii: np.ndarray, axis: int, sign: float, n_theta: int = 8,
                 n_phi: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Open half-ellipsoid (vertices, triangles) on a plane: base centre ``center``, semi-axes ``radii`` (x, y, z),
    bulging along ``sign`` * axis ``axis``; outward winding."""
    theta = np.linspace(0.0, np.pi / 2, n_theta + 1)[1:]           # from the pole to the base rim
    phi = np.linspace(0.0, 2 * np.pi, n_phi, endpoint=False)
    others = [a for a in range(3) if a != axis]
    ring = np.zeros((n_theta, n_phi, 3))
    ring[..., axis] = sign * np.cos(theta)[:, None]
    ring[..., others[0]] = np.sin(theta)[:, None] * np.cos(phi)[None, :]
    ring[..., others[1]] = np.sin(theta)[:, None] * np.sin(phi)[None, :]
    pole = np.zeros(3)
    pole[axis] = sign
    vertices = np.vstack([pole[None], ring.reshape(-1, 3)]) * radii + center
    idx = 1 + np.arange(n_theta * n_phi).reshape(n_theta, n_phi)
    nxt = np.roll(idx, -1, axis=1)
    tris = [np.stack([np.zeros(n_phi, int), idx[0], nxt[0]], 1)]
    a, b, c, d = idx[:-1], nxt[:-1], idx[1:], nxt[1:]
    tris += [np.stack([a.ravel(), c.ravel(), b.ravel()], 1), np.stack([b.ravel(), c.ravel(), d.ravel()], 1)]
    triangles = np.vstack(tris).astype(np.int32)
    normals = triangle_normals(vertices, triangles)
    if np.mean(np.einsum("ij,ij->i", normals, vertices[triangles].mean(axis=1) - center)) < 0:
        triangles = triangles[:, ::-1].copy()
    return vertices, triangles
