"""Product-like carton artwork, deterministic from the SKU: per-face textures in one atlas.

Side faces carry a base colour, bands, a logo, the product name and (on one face) a barcode; the top and
bottom are plain board with a tape strip. Textures are drawn with OpenCV at ``PIXELS_PER_METRE`` so
printed text keeps its aspect ratio whatever the carton's size.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from damage_perception.sim.geometry import BoxFace

PIXELS_PER_METRE = 1000.0
KRAFT = (0.66, 0.52, 0.36)
SYLLABLES = ("ka", "ro", "mi", "zen", "lu", "ta", "vo", "ne", "pix", "sol", "da", "qui", "bel", "tor")
LOGOS = ("circle", "triangle", "star", "diamond")


def sku_rng(sku: str, salt: str = "") -> np.random.Generator:
    """A generator seeded from a stable hash of the SKU (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256(f"{sku}/{salt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class ProductStyle:
    """Colours and motifs of one SKU's print."""

    name: str
    base: tuple[float, float, float]
    ink: tuple[float, float, float]
    accent: tuple[float, float, float]
    logo: str
    kraft: bool

    @classmethod
    def from_sku(cls, sku: str) -> "ProductStyle":
        """Deterministic style of a SKU."""
        rng = sku_rng(sku, "style")
        name = "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))).upper()
        kraft = bool(rng.random() < 0.3)
        base = KRAFT if kraft else tuple(float(c) for c in 0.35 + 0.6 * rng.random(3))
        ink = tuple(float(c) for c in 0.05 + 0.3 * rng.random(3))
        accent = tuple(float(c) for c in rng.random(3))
        return cls(name, base, ink, accent, str(rng.choice(LOGOS)), kraft)


@dataclass
class FaceTextures:
    """Six face textures padded into one (6, H, W, 3) uint8 atlas; ``shapes`` holds each face's (h, w)."""

    atlas: np.ndarray
    shapes: np.ndarray

    def sample(self, face: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Nearest-texel albedo (N, 3) float32 in [0, 1] of faces ``face`` (N,) at ``uv`` (N, 2)."""
        h, w = self.shapes[face, 0], self.shapes[face, 1]
        col = np.clip((uv[:, 0] * w).astype(np.int32), 0, w - 1)
        row = np.clip((uv[:, 1] * h).astype(np.int32), 0, h - 1)
        return self.atlas[face, row, col].astype(np.float32) * (1.0 / 255.0)


def _bgr(color) -> tuple[int, int, int]:
    """cv2 draws into an RGB image here, so pass colours straight through as 0..255 ints."""
    return tuple(int(round(255 * c)) for c in color)


def _board_noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Faint low-frequency mottling of printed board (multiplicative, around 1)."""
    small = rng.normal(0.0, 1.0, (max(2, shape[0] // 16), max(2, shape[1] // 16))).astype(np.float32)
    return 1.0 + 0.035 * cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _draw_logo(img: np.ndarray, kind: str, center: tuple[int, int], radius: int, color) -> None:
    cx, cy = center
    if kind == "circle":
        cv2.circle(img, center, radius, color, -1, cv2.LINE_AA)
        cv2.circle(img, center, max(1, radius // 2), _bgr((1, 1, 1)), -1, cv2.LINE_AA)
        return
    if kind == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    elif kind == "triangle":
        angles, radii = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3, np.full(3, radius)
    else:
        angles, radii = np.arange(4) * np.pi / 2, np.full(4, radius)
    sign = -1 if kind == "star" else 1
    pts = np.stack([cx + radii * np.cos(angles), cy + sign * radii * np.sin(angles)], 1).astype(np.int32)
    cv2.fillPoly(img, [pts], color, cv2.LINE_AA)


def _put_text_fitted(img: np.ndarray, text: str, center: tuple[int, int], max_width: int, color,
                     max_height: int) -> None:
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = max(0.2, min(max_width / tw, max_height / th))
    thickness = max(1, int(round(2 * scale)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    org = (int(center[0] - tw / 2), int(center[1] + th / 2))
    cv2.putText(img, text, org, font, scale, color, thickness, cv2.LINE_AA)


def _draw_barcode(img: np.ndarray, rect: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    x0, y0, w, h = rect
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), _bgr((0.97, 0.97, 0.95)), -1)
    x = x0 + max(2, w // 12)
    while x < x0 + w - max(2, w // 12):
        bar = int(rng.integers(1, 4))
        if rng.random() < 0.55:
            cv2.rectangle(img, (x, y0 + h // 8), (x + bar - 1, y0 + h * 7 // 8), (10, 10, 10), -1)
        x += bar + 1


def _side_face(shape: tuple[int, int], style: ProductStyle, rng: np.random.Generator, barcode: bool) -> np.ndarray:
    h, w = shape
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _bgr(style.base)
    band_y = int(h * rng.uniform(0.08, 0.22))
    cv2.rectangle(img, (0, band_y), (w, band_y + max(2, h // 14)), _bgr(style.accent), -1)
    cv2.rectangle(img, (0, h - h // 9), (w, h), _bgr(style.ink), -1)
    radius = max(4, int(0.18 * min(w, h)))
    _draw_logo(img, style.logo, (w // 2, int(h * 0.42)), radius, _bgr(style.accent))
    _put_text_fitted(img, style.name, (w // 2, int(h * 0.70)), int(0.8 * w), _bgr(style.ink), int(0.12 * h))
    if barcode:
        bw, bh = max(12, w // 3), max(8, h // 8)
        _draw_barcode(img, (w - bw - w // 12, h - h // 9 - bh - h // 30, bw, bh), rng)
    return img


def _end_face(shape: tuple[int, int], style: ProductStyle) -> np.ndarray:
    h, w = shape
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _bgr(KRAFT if not style.kraft else tuple(0.92 * c for c in KRAFT))
    tape = max(3, int(0.05 * PIXELS_PER_METRE))  # 5 cm packing tape along the flaps' seam
    cv2.rectangle(img, (0, h // 2 - tape // 2), (w, h // 2 + tape // 2), _bgr((0.78, 0.66, 0.45)), -1)
    return img


def make_face_textures(sku: str, faces: list[BoxFace]) -> FaceTextures:
    """The artwork of a SKU on a box with these faces (ordered +x, -x, +y, -y, +z, -z)."""
    style = ProductStyle.from_sku(sku)
    rng = sku_rng(sku, "faces")
    shapes = np.array([[max(8, int(round(f.height * PIXELS_PER_METRE))),
                        max(8, int(round(f.width * PIXELS_PER_METRE)))] for f in faces], np.int32)
    atlas = np.zeros((len(faces), shapes[:, 0].max(), shapes[:, 1].max(), 3), np.uint8)
    barcode_face = int(rng.integers(0, 4))
    for face in faces:
        shape = tuple(int(s) for s in shapes[face.index])
        if abs(face.normal[2]) > 0.5:
            img = _end_face(shape, style)
        else:
            img = _side_face(shape, style, rng, barcode=face.index == barcode_face)
        img = np.clip(img.astype(np.float32) * _board_noise(shape, rng)[..., None], 0, 255).astype(np.uint8)
        atlas[face.index, :shape[0], :shape[1]] = img
    return FaceTextures(atlas, shapes)
