"""Contact sheet of rendered views (colour | depth | ground-truth overlay) for eyeballing the simulator.

    .venv/bin/python -m damage_perception.sim.preview [--out /tmp/sim_preview.png] [--seed 3]

One row per damage type (pristine first), one column per item kind that can have it; each cell is the view
facing the damage: colour above, ground-truth overlay (item green, damage red, fingers blue) below.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.catalogue import ALL_KINDS, KIND_DAMAGES, KIND_POOLS, ItemSpec, sku_spec
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer, RenderedView
from damage_perception.sim.scene import SceneConfig


def depth_to_rgb(depth_m: np.ndarray, near: float = 0.35, far: float = 1.5) -> np.ndarray:
    """Colour-mapped depth (turbo), black where there is no reading."""
    scaled = np.clip((depth_m - near) / (far - near), 0, 1)
    rgb = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    return np.where(depth_m[..., None] > 0, rgb, 0).astype(np.uint8)


def overlay(view: RenderedView) -> np.ndarray:
    """Colour image with item (green), damage (red) and finger (blue) masks blended in."""
    out = view.color.astype(np.float32)
    for mask, tint in ((view.item_mask, (0, 255, 0)), (view.damage_mask > 0, (255, 0, 0)),
                       (view.finger_mask, (0, 0, 255))):
        out[mask] = 0.5 * out[mask] + 0.5 * np.array(tint, np.float32)
    return out.astype(np.uint8)


def view_row(view: RenderedView, caption: str) -> np.ndarray:
    """One row: colour | depth | overlay, captioned."""
    row = np.hstack([view.color, depth_to_rgb(view.depth_m), overlay(view)])
    cv2.putText(row, caption, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return row


def contact_sheet(specs: list[ItemSpec], angles: list[float], seed: int = 0, scale: float = 0.5) -> np.ndarray:
    """Rows of views of each item at the given angles, shrunk by ``scale``."""
    gripper = GripperGeometry()
    scene = SceneConfig()
    renderer = CellRenderer(scene, gripper)
    rng = np.random.default_rng(seed)
    rows = []
    for spec in specs:
        item = build_item(spec, gripper)
        renderer.set_item(item)
        if item.damage_center is not None:  # include the view facing the damage
            angles = list(angles[:-1]) + [scene.wrist_angle_facing(item.damage_center - item.center)]
        for angle in angles:
            view = renderer.render(angle, rng)
            caption = f"{spec.sku} {spec.damage} {spec.severity:.2f} a={np.degrees(angle):.0f}"
            rows.append(cv2.resize(view_row(view, caption), None, fx=scale, fy=scale,
                                   interpolation=cv2.INTER_AREA))
    return np.vstack(rows)


def damage_grid(seed: int = 3, severity: float = 0.8, scale: float = 1.0) -> np.ndarray:
    """Rows: pristine and each damage type; columns: the item kinds (blank where a kind cannot have it)."""
    gripper = GripperGeometry()
    scene = SceneConfig()
    renderer = CellRenderer(scene, gripper)
    rng = np.random.default_rng(seed)
    h, w = int(240 * scale), int(320 * scale)
    rows = []
    for damage in ("pristine",) + DAMAGE_TYPES:
        cells = []
        for k, kind in enumerate(ALL_KINDS):
            cell = np.zeros((2 * h, w, 3), np.uint8)
            if damage == "pristine" or damage in KIND_DAMAGES[kind]:
                pool = KIND_POOLS[kind]
                spec = sku_spec(pool[(seed + k) % len(pool)], damage, severity, seed=seed + k)
                item = build_item(spec, gripper)
                renderer.set_item(item)
                angle = 0.6 if item.damage_center is None else \
                    scene.wrist_angle_facing((item.damage_center - item.center) / item.size)
                view = renderer.render(angle, rng)
                rows_, cols_ = np.nonzero(view.item_mask | view.finger_mask)
                cy, cx = int(rows_.mean()), int(cols_.mean())
                r0, c0 = int(np.clip(cy - 120, 0, 240)), int(np.clip(cx - 160, 0, 320))
                crop = (slice(r0, r0 + 240), slice(c0, c0 + 320))
                pair = np.vstack([view.color[crop], overlay(view)[crop]])
                cell = cv2.resize(pair, (w, 2 * h), interpolation=cv2.INTER_AREA)
                art = f" art:{spec.printed_damage_art}" if spec.printed_damage_art else ""
                cv2.putText(cell, f"{kind} {damage} {spec.sku}{art}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                            (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(cell)
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/sim_preview.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--severity", type=float, default=0.8)
    args = parser.parse_args()
    sheet = damage_grid(args.seed, args.severity)
    cv2.imwrite(args.out, sheet[..., ::-1])
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
