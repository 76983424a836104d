"""Contact sheet of rendered views (colour | depth | ground-truth overlay) for eyeballing the simulator.

    .venv/bin/python -m damage_perception.sim.preview [--out /tmp/sim_preview.png] [--seed 3] [--views 4]
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.items import ItemSpec, build_item, make_catalogue
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
    for mask, tint in ((view.item_mask, (0, 255, 0)), (view.damage_mask, (255, 0, 0)),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/sim_preview.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--views", type=int, default=2)
    args = parser.parse_args()
    catalogue = make_catalogue(40, damage_rate=0.8, seed=args.seed)
    picks = [next(s for s in catalogue if s.damage == kind) for kind in ("pristine", "crush", "hole", "tear")]
    angles = list(np.linspace(0, np.pi, args.views, endpoint=False))
    sheet = contact_sheet(picks, angles, seed=args.seed)
    cv2.imwrite(args.out, sheet[..., ::-1])
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
