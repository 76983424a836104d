"""Shapes of the item kinds as maps of the rest (base box) surface: deformed vertices from rest positions.

Every kind starts from a finely gridded box (``geometry.grid_box_surface``) whose rest positions carry the
artwork, so textures stay glued to the surface whatever the shape. A shape is a function of the rest position
only, so the duplicated vertices on shared box edges move together and the surface stays watertight.

- ``pillow``: the thickness (y, the gripping axis) falls off towards the x / z borders to a sealed seam, with
  smooth noise wrinkles (padded / poly mailers: flat pillow; pouches of coffee or powder: round pillow).
- ``bottle``: the square cross-section is mapped onto circles whose radius follows a profile along z: body,
  shoulder, neck and cap (held upside down: the base against the palm, the cap at the far end).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PillowShape:
    """Thickness factor p(x, z) = max(floor, (1 - |x/a|^k)^e (1 - |z/c|^k)^e), times (1 + wrinkles)."""

    power: float = 6.0
    exponent: float = 0.35
    floor: float = 0.12
    wrinkle: float = 0.25          # relative amplitude of the wrinkles
    wrinkle_scale: float = 0.03    # their wavelength (m)
    seed: int = 0

    def __call__(self, rest: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
        q = rest - center
        a, c = size[0] / 2, size[2] / 2
        fx = np.clip(1.0 - np.abs(q[:, 0] / a) ** self.power, 0.0, 1.0) ** self.exponent
        fz = np.clip(1.0 - np.abs(q[:, 2] / c) ** self.power, 0.0, 1.0) ** self.exponent
        p = np.maximum(self.floor, fx * fz)
        rng = np.random.default_rng(self.seed)
        w = np.zeros(len(q))
        for _ in range(6):
            k = rng.normal(0.0, 1.0, 2)
            k *= 2 * np.pi / (self.wrinkle_scale * rng.uniform(0.6, 1.6) * np.linalg.norm(k))
            w += np.sin(q[:, 0] * k[0] + q[:, 2] * k[1] + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
        w *= self.wrinkle / 3.0
        out = rest.copy()
        out[:, 1] = center[1] + q[:, 1] * np.minimum(1.0, p * (1.0 + w * np.minimum(1.0, 3 * (p - self.floor))))
        return out


@dataclass(frozen=True)
class BottleShape:
    """Radius profile along s = (z - z_min) / height: body radius up to ``shoulder``, a smooth shoulder down to
    ``neck_ratio`` * radius at ``neck``, the neck (and cap from ``cap``) to the end."""

    shoulder: float = 0.62
    neck: float = 0.8
    cap: float = 0.9
    neck_ratio: float = 0.4

    @property
    def profile(self) -> tuple[float, float, float]:
        return (self.shoulder, self.neck, self.cap)

    def radius(self, s: np.ndarray, body: float) -> np.ndarray:
        t = np.clip((s - self.shoulder) / (self.neck - self.shoulder), 0.0, 1.0)
        blend = 0.5 - 0.5 * np.cos(np.pi * t)
        r = body * (1.0 - (1.0 - self.neck_ratio) * blend)
        lip = (s > self.cap) & (s < self.cap + 0.015)  # a small ridge where the cap starts
        return np.where(lip, r * 1.08, r)

    def __call__(self, rest: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
        q = rest - center
        half = size[0] / 2
        s = (q[:, 2] + size[2] / 2) / size[2]
        m = np.clip(np.maximum(np.abs(q[:, 0]), np.abs(q[:, 1])) / half, 0.0, 1.0)
        theta = np.arctan2(q[:, 1], q[:, 0])
        r = self.radius(s, half) * m
        out = rest.copy()
        out[:, 0] = center[0] + r * np.cos(theta)
        out[:, 1] = center[1] + r * np.sin(theta)
        return out
