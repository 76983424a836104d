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
    def from_sku(cls, sku: str) -> ProductStyle:
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


# --- other item kinds, packaging versions and printed damage-like art ---------------------------------------
CREAM = (0.93, 0.90, 0.80)
PRINTED_DAMAGE_ARTS = ("cracked_screen", "splash", "fake_tear")


def style_key(sku: str, version: int = 0) -> str:
    """What a SKU's artwork is derived from: the SKU, and its packaging version from 1 on."""
    return sku if version == 0 else f"{sku}/v{version}"


def _plain(shape: tuple[int, int], color) -> np.ndarray:
    img = np.empty(shape + (3,), np.uint8)
    img[:] = _bgr(color)
    return img


def _stripes_along_y(face: BoxFace, shape: tuple[int, int], base, rng: np.random.Generator) -> np.ndarray:
    """Page-block edge: fine lines parallel to the cover (the lines vary along the item's y axis)."""
    h, w = shape
    img = _plain(shape, base)
    along_cols = abs(face.right[1]) > 0.5
    n = w if along_cols else h
    shade = (0.82 + 0.18 * rng.random(n)).astype(np.float32)
    shade[rng.random(n) < 0.08] *= 0.8
    img = (img.astype(np.float32) * (shade[None, :, None] if along_cols else shade[:, None, None])).astype(np.uint8)
    return img


def _label_lines(img: np.ndarray, rect: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A white shipping / product label with text lines and a barcode."""
    x0, y0, w, h = rect
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), _bgr((0.96, 0.96, 0.94)), -1)
    for i in range(4):
        y = y0 + int(h * (0.12 + 0.12 * i))
        cv2.line(img, (x0 + w // 10, y), (x0 + int(w * rng.uniform(0.4, 0.9)), y), (30, 30, 30), max(1, h // 40))
    _draw_barcode(img, (x0 + w // 10, y0 + int(0.62 * h), int(0.8 * w), int(0.3 * h)), rng)


def _front(shape, style: ProductStyle, rng, kind: str) -> np.ndarray:
    """Printed front of a book cover, pouch, mailer or blister card."""
    h, w = shape
    img = _plain(shape, style.base)
    if kind == "book":
        cv2.rectangle(img, (w // 10, int(h * 0.35)), (w - w // 10, int(h * 0.72)), _bgr(style.accent), -1)
        _draw_logo(img, style.logo, (w // 2, int(h * 0.535)), max(4, int(0.12 * min(w, h))), _bgr(style.base))
        _put_text_fitted(img, style.name, (w // 2, int(h * 0.18)), int(0.8 * w), _bgr(style.ink), int(0.1 * h))
        cv2.rectangle(img, (w // 5, int(h * 0.85)), (w - w // 5, int(h * 0.88)), _bgr(style.ink), -1)
    elif kind == "mailer":
        _draw_logo(img, style.logo, (w // 5, h // 6), max(4, int(0.06 * min(w, h))), _bgr(style.accent))
        _label_lines(img, (int(0.35 * w), int(0.4 * h), int(0.5 * w), int(0.3 * h)), rng)
    elif kind == "bag":
        for y in (0, h - max(3, h // 14)):  # crimped seals
            cv2.rectangle(img, (0, y), (w, y + max(3, h // 14)), _bgr(tuple(0.8 * c for c in style.base)), -1)
        cv2.ellipse(img, (w // 2, int(h * 0.45)), (int(w * 0.35), int(h * 0.18)), 0, 0, 360, _bgr(style.accent), -1)
        _draw_logo(img, style.logo, (w // 2, int(h * 0.45)), max(4, int(0.1 * min(w, h))), _bgr(style.base))
        _put_text_fitted(img, style.name, (w // 2, int(h * 0.75)), int(0.8 * w), _bgr(style.ink), int(0.1 * h))
    else:  # blister card
        cv2.rectangle(img, (0, 0), (w, int(0.28 * h)), _bgr(style.accent), -1)
        cv2.circle(img, (w // 2, int(0.08 * h)), max(2, int(0.025 * w)), (255, 255, 255), -1)  # hang hole
        _put_text_fitted(img, style.name, (w // 2, int(h * 0.19)), int(0.8 * w), _bgr(style.ink), int(0.08 * h))
    return img


def _bottle_side(shape, style: ProductStyle, rng, profile: tuple[float, float, float]) -> np.ndarray:
    """Bottle side: plastic colour, a label band on the body, the cap at the far end (v = 1)."""
    h, w = shape
    shoulder, _, cap = profile
    img = _plain(shape, style.base)
    y0, y1 = int(h * 0.12), int(h * (shoulder - 0.06))
    if y1 > y0 + 4:
        cv2.rectangle(img, (0, y0), (w, y1), _bgr((0.96, 0.95, 0.92)), -1)
        cv2.rectangle(img, (0, y0), (w, y0 + max(2, (y1 - y0) // 6)), _bgr(style.accent), -1)
        _put_text_fitted(img, style.name, (w // 2, (y0 + y1) // 2), int(0.8 * w), _bgr(style.ink),
                         int(0.3 * (y1 - y0)))
    cv2.rectangle(img, (0, int(h * cap)), (w, h), _bgr(style.ink), -1)
    return img


def paint_printed_damage(img: np.ndarray, art: str, rng: np.random.Generator) -> None:
    """Artwork that looks like damage but is only printed: a cracked phone screen, a splash, a fake tear."""
    h, w = img.shape[:2]
    cx, cy = int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65))
    r = max(6, int(0.3 * min(w, h)))
    if art == "cracked_screen":
        cv2.rectangle(img, (cx - r // 2, cy - r), (cx + r // 2, cy + r), (20, 22, 28), -1)
        ox, oy = cx + int(rng.uniform(-0.2, 0.2) * r), cy + int(rng.uniform(-0.4, 0.4) * r)
        for a in rng.uniform(0, 2 * np.pi, 9):
            pts = [(ox, oy)]
            for _ in range(4):
                a += rng.normal(0, 0.4)
                step = r * rng.uniform(0.15, 0.35)
                pts.append((int(pts[-1][0] + step * np.cos(a)), int(pts[-1][1] + step * np.sin(a))))
            cv2.polylines(img, [np.array(pts, np.int32)], False, (225, 230, 235), 1, cv2.LINE_AA)
    elif art == "splash":
        color = _bgr(tuple(rng.random(3)))
        for _ in range(7):
            c = (cx + int(rng.normal(0, 0.35 * r)), cy + int(rng.normal(0, 0.35 * r)))
            cv2.circle(img, c, max(2, int(rng.uniform(0.15, 0.45) * r)), color, -1, cv2.LINE_AA)
        for _ in range(14):
            a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.3) * r
            cv2.circle(img, (int(cx + d * np.cos(a)), int(cy + d * np.sin(a))), max(1, r // 14), color, -1)
    else:  # fake tear: a jagged light patch with a printed shadow line
        n = 14
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
        rad = r * (0.6 + 0.4 * rng.random(n))
        pts = np.stack([cx + rad * np.cos(ang), cy + 0.6 * rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(img, [pts + 2], (60, 50, 40), cv2.LINE_AA)
        cv2.fillPoly(img, [pts], _bgr(CORRUGATED_PRINT), cv2.LINE_AA)
        cv2.polylines(img, [pts], True, (245, 240, 228), 2, cv2.LINE_AA)


CORRUGATED_PRINT = (0.78, 0.62, 0.42)


def make_item_textures(sku: str, faces: list[BoxFace], kind: str = "carton", version: int = 0,
                       printed_damage_art: str = "", bottle_profile: tuple[float, float, float] = (0.6, 0.75, 0.9),
                       ) -> FaceTextures:
    """Artwork of a SKU of any kind on its base box faces (+x, -x, +y, -y, +z, -z), from (sku, version).

    ``printed_damage_art`` paints one of PRINTED_DAMAGE_ARTS on the -x side face (carton, bottle) or the
    front (-y) of slab-like kinds: texture only.
    """
    if kind == "carton" and version == 0 and not printed_damage_art:
        return make_face_textures(sku, faces)
    key = style_key(sku, version)
    style = ProductStyle.from_sku(key)
    if kind == "carton":
        textures = make_face_textures(key, faces)
    else:
        rng = sku_rng(key, "faces")
        shapes = np.array([[max(8, int(round(f.height * PIXELS_PER_METRE))),
                            max(8, int(round(f.width * PIXELS_PER_METRE)))] for f in faces], np.int32)
        atlas = np.zeros((len(faces), shapes[:, 0].max(), shapes[:, 1].max(), 3), np.uint8)
        for face in faces:
            shape = tuple(int(s) for s in shapes[face.index])
            i = face.index
            if kind == "bottle":
                img = _bottle_side(shape, style, rng, bottle_profile) if i < 4 else \
                    _plain(shape, style.ink if i == 4 else style.base)
            elif i in (2, 3):
                img = _front(shape, style, rng, kind) if (i == 3 or kind != "blister") else \
                    _plain(shape, (0.95, 0.95, 0.93))
            elif kind == "book":
                img = _plain(shape, style.ink) if i == 1 else _stripes_along_y(face, shape, CREAM, rng)
                if i == 1:
                    _put_text_fitted(img, style.name, (shape[1] // 2, shape[0] // 2), int(0.8 * shape[1]),
                                     _bgr(style.base), int(0.08 * shape[0]))
            else:
                img = _plain(shape, style.base)
            img = np.clip(img.astype(np.float32) * _board_noise(shape, rng)[..., None], 0, 255).astype(np.uint8)
            atlas[i, :shape[0], :shape[1]] = img
        textures = FaceTextures(atlas, shapes)
    if printed_damage_art:
        if printed_damage_art not in PRINTED_DAMAGE_ARTS:
            raise ValueError(f"unknown printed damage art '{printed_damage_art}'")
        i = 1 if kind in ("carton", "bottle") else 3
        h, w = textures.shapes[i]
        img = textures.atlas[i, :h, :w].copy()
        paint_printed_damage(img, printed_damage_art, sku_rng(key, "printed"))
        textures.atlas[i, :h, :w] = img
    return textures
