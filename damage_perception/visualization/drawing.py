"""Drawing on RGB arrays (numpy + cv2): item outlines, damage heat maps, text. Shared by the node's
``~/debug/annotated_image`` (``ros/debug_publisher.py``) and the HTML report (``item_report.py``)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

HEAT_THRESHOLD = 0.05     # heat at or below this leaves the image untouched
HEAT_ALPHA = 0.55         # weight of the heat colour where the heat is at least HEAT_RAMP
HEAT_RAMP = 0.3           # below this the weight fades linearly, so faint heat stays faint
OUTLINE_RGB = (0, 255, 255)


def draw_outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = OUTLINE_RGB,
                 thickness: int = 1) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with the outline of ``mask`` (H, W) bool drawn on it."""
    out = np.ascontiguousarray(image, np.uint8).copy()
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, thickness)
    return out


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB of a heat map in [0, 1] through cv2's JET colour map."""
    levels = np.round(np.clip(np.nan_to_num(heat), 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, box: tuple[int, int, int, int] | None = None,
                    threshold: float = HEAT_THRESHOLD, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """A copy of ``image`` with ``heatmap`` resized into ``box`` = (row0, row1, col0, col1) (the whole image
    when None) and alpha-blended where the heat exceeds ``threshold`` (weight ``alpha``, faded below
    HEAT_RAMP); the part of the box outside the image is clipped."""
    out = np.ascontiguousarray(image, np.uint8).copy()
    height, width = out.shape[:2]
    row0, row1, col0, col1 = box if box is not None else (0, height, 0, width)
    if row1 <= row0 or col1 <= col0:
        return out
    heat = cv2.resize(np.asarray(heatmap, np.float32), (col1 - col0, row1 - row0), interpolation=cv2.INTER_LINEAR)
    r0, r1, c0, c1 = max(row0, 0), min(row1, height), max(col0, 0), min(col1, width)
    if r1 <= r0 or c1 <= c0:
        return out
    heat = heat[r0 - row0:r1 - row0, c0 - col0:c1 - col0]
    hot = heat > threshold
    window = out[r0:r1, c0:c1]
    weight = (alpha * np.clip(heat / HEAT_RAMP, 0.0, 1.0))[:, :, None]
    blended = np.round((1.0 - weight) * window + weight * heat_colors(heat)).astype(np.uint8)
    window[...] = np.where(hot[:, :, None], blended, window)   # (boolean-mask assignment is ~10x slower)
    return out


def draw_text(image: np.ndarray, lines: Sequence[str], scale: float = 0.5) -> np.ndarray:
    """A copy of ``image`` with ``lines`` written at its top left, white on a dark band."""
    out = np.ascontiguousarray(image, np.uint8).copy()
    font, thickness, pad = cv2.FONT_HERSHEY_SIMPLEX, 1, 4
    y = pad
    for line in lines:
        (text_w, text_h), baseline = cv2.getTextSize(line, font, scale, thickness)
        cv2.rectangle(out, (0, y), (text_w + 2 * pad, y + text_h + baseline + pad), (0, 0, 0), cv2.FILLED)
        cv2.putText(out, line, (pad, y + text_h + pad // 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
        y += text_h + baseline + pad
    return out


def annotated_image(color: np.ndarray, mask: np.ndarray | None = None, heatmap: np.ndarray | None = None,
                    heatmap_box: tuple[int, int, int, int] | None = None,
                    text_lines: Sequence[str] = ()) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the damage heat map in its box, the item outline, and the decision text."""
    out = np.ascontiguousarray(color, np.uint8)
    if heatmap is not None:
        out = overlay_heatmap(out, heatmap, heatmap_box)
    if mask is not None:
        out = draw_outline(out, mask)
    return draw_text(out, text_lines) if text_lines else out.copy()
