"""Per-item HTML report: one self-contained HTML file (PNG images inlined as base64, no JavaScript, no
external resources) showing the decision and, per view, the item crop, its mask outline, the damage heat map
and the view's scores and model signals.

``report_view`` turns what the view pipeline produced (a ``ViewResult`` and the item mask) into a
``ReportView``; the node keeps the last item's and writes its report on request (``~/save_report``,
asked for by ``damage-perception report``: ``cell/report.py``). Render a report to a PNG with
``damage_perception.visualization.report_screenshot``.
"""
from __future__ import annotations

import base64
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from damage_perception.core.crops import CROP_SIZE, crop_box, cut
from damage_perception.core.verdict import ViewResult
from damage_perception.visualization.drawing import draw_outline, overlay_heatmap

DECISION_COLORS = {"PASS": ("#2e7d32", "#ffffff"), "DIVERT": ("#c62828", "#ffffff"),
                   "REVIEW": ("#f9a825", "#1a1a1a"), "ERROR": ("#5e35b1", "#ffffff")}
UNKNOWN_COLORS = ("#616161", "#ffffff")
CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0; background: #f4f5f7; color: #1a1a1a; }
main { max-width: 1160px; margin: 0 auto; padding: 20px; }
.banner { border-radius: 8px; padding: 16px 20px; display: flex; justify-content: space-between;
          align-items: center; }
.banner h1 { margin: 0; font-size: 32px; letter-spacing: 1px; }
.banner .ids { text-align: right; font-size: 15px; line-height: 1.5; }
.summary { display: flex; gap: 20px; margin: 16px 0; }
.card { background: #ffffff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.summary .card { flex: 1; }
.reason { font-size: 15px; margin: 6px 0 0; }
.meta { color: #555555; font-size: 13px; }
h2 { font-size: 16px; margin: 0 0 8px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
td { padding: 2px 6px 2px 0; white-space: nowrap; }
td.value { text-align: right; font-variant-numeric: tabular-nums; width: 3em; }
td.bar { width: 100%; }
.bar span { display: block; height: 8px; border-radius: 4px; background: #1565c0; }
.bar span.high { background: #c62828; }
.views { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.view h2 span { color: #555555; font-weight: normal; }
.images { display: flex; gap: 8px; margin-bottom: 8px; }
figure { margin: 0; text-align: center; font-size: 12px; color: #555555; }
figure img, .empty { width: 176px; height: 176px; border-radius: 4px; display: block; }
.empty { background: #e0e0e0; display: flex; align-items: center; justify-content: center; color: #757575; }
.missing { color: #c62828; font-size: 13px; }
"""


@dataclass
class ReportView:
    """One view of the item as the report shows it (crop arrays as in ``core.crops.ItemCrop``)."""

    index: int
    wrist_angle: float                 # rad
    color: np.ndarray | None           # (S, S, 3) uint8 RGB item crop; None when no item was found
    mask: np.ndarray | None            # (S, S) bool item mask in the crop
    heatmap: np.ndarray | None         # (h, w) damage heat in [0, 1] over the whole crop; None: no map
    scores: dict[str, float]           # e.g. {"damage": 0.8, "crush": 0.8, ...}
    found: bool
    reason: str = ""
    signals: dict[str, float] = field(default_factory=dict)   # the damage model's raw view signals


@dataclass
class ItemReport:
    """Everything the report of one inspected item shows."""

    item_id: str
    sku: str
    decision: str                      # PASS, DIVERT, REVIEW or ERROR
    fused_score: float
    threshold: float
    damage_types: dict[str, float]     # fused score per damage type
    reason: str
    model_version: str
    views: list[ReportView]
    created: float = field(default_factory=time.time)   # Unix time


def report_view(result: ViewResult, color: np.ndarray | None, mask: np.ndarray | None,
                size: int = CROP_SIZE) -> ReportView:
    """The report's view of one processed view: the item window of ``color`` (H, W, 3 RGB) and ``mask``
    (H, W bool) cut at the heat map's ``crop_box`` (or around the mask when the view has no heat map)."""
    scores = {"damage": float(result.score), **{name: float(v) for name, v in result.type_scores.items()}}
    signals = {name: float(v) for name, v in result.signals.items()}
    if color is None or mask is None or not np.any(mask):
        return ReportView(result.index, result.wrist_angle, None, None, None, scores, result.found, result.reason,
                          signals)
    box = result.crop_box if result.crop_box is not None else crop_box(mask)
    heatmap = None if result.heatmap is None else np.asarray(result.heatmap, np.float32)
    return ReportView(result.index, result.wrist_angle, cut(np.asarray(color, np.uint8), box, size, nearest=False),
                      cut(np.asarray(mask, bool), box, size, nearest=True), heatmap, scores, result.found,
                      result.reason, signals)


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an (H, W, 3) RGB or (H, W) uint8 image."""
    image = np.asarray(image, np.uint8)
    ok, encoded = cv2.imencode(".png", image[:, :, ::-1] if image.ndim == 3 else image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _number(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "n/a"


def _scores_table(scores: dict[str, float], threshold: float) -> str:
    rows = []
    for name, value in scores.items():
        value = float(value)
        width = 100.0 * min(max(value, 0.0), 1.0) if np.isfinite(value) else 0.0
        high = ' class="high"' if value >= threshold else ""
        rows.append(f'<tr><td>{html.escape(name)}</td><td class="value">{_number(value)}</td>'
                    f'<td class="bar"><span{high} style="width: {width:.0f}%"></span></td></tr>')
    return f'<table class="scores">{"".join(rows)}</table>' if rows else '<p class="meta">no scores</p>'


def _figure(image: np.ndarray | None, kind: str, caption: str, empty: str) -> str:
    if image is None:
        return f'<figure><div class="empty">{html.escape(empty)}</div>{html.escape(caption)}</figure>'
    return (f'<figure><img class="{kind}" src="{png_data_uri(image)}" alt="{html.escape(caption)}">'
            f'{html.escape(caption)}</figure>')


def _view_section(view: ReportView, threshold: float) -> str:
    crop = outline = heat = None
    if view.color is not None:
        crop = view.color
        outline = draw_outline(view.color, view.mask) if view.mask is not None else None
        heat = overlay_heatmap(view.color, view.heatmap) if view.heatmap is not None else None
    figures = (_figure(crop, "crop", "colour crop", "no item") + _figure(outline, "outline", "mask outline", "no mask")
               + _figure(heat, "heat", "damage heat map", "no heat map"))
    missing = "" if view.found else f'<p class="missing">no item: {html.escape(view.reason or "not found")}</p>'
    note = f'<p class="meta">{html.escape(view.reason)}</p>' if view.found and view.reason else ""
    signals = " · ".join(f"{html.escape(name)} {value:.2f}" for name, value in view.signals.items())
    signals = f'<p class="meta signals">model signals: {signals}</p>' if signals else ""
    return (f'<section class="view card"><h2>View {view.index} <span>wrist {np.degrees(view.wrist_angle):.0f}°'
            f'</span></h2><div class="images">{figures}</div>{missing}{note}'
            f'{_scores_table(view.scores, threshold)}{signals}</section>')


def render_report(report: ItemReport) -> str:
    """The report's HTML document (a string)."""
    background, foreground = DECISION_COLORS.get(report.decision.upper(), UNKNOWN_COLORS)
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.created))
    seen = sum(view.found for view in report.views)
    title = f"{report.decision} · {report.item_id}"
    views = "".join(_view_section(view, report.threshold) for view in report.views)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header class="banner" style="background: {background}; color: {foreground}">
<h1 class="decision">{html.escape(report.decision)}</h1>
<div class="ids">item <b class="item-id">{html.escape(report.item_id)}</b><br>SKU {html.escape(report.sku)}<br>
damage score <b>{_number(report.fused_score)}</b> (divert at {_number(report.threshold)})</div>
</header>
<div class="summary">
<section class="card"><h2>Decision</h2><p class="reason">{html.escape(report.reason)}</p>
<p class="meta">{seen} of {len(report.views)} views saw the item · model {html.escape(report.model_version)}
· {created}</p></section>
<section class="card"><h2>Damage types (fused)</h2>{_scores_table(report.damage_types, report.threshold)}</section>
</div>
<div class="views">{views}</div>
</main>
</body>
</html>
"""


def report_filename(item_id: str) -> str:
    """``<item_id>.html`` with anything but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    return (re.sub(r"[^A-Za-z0-9._-]", "_", item_id).lstrip(".") or "item") + ".html"


def write_report(report: ItemReport, path: Path | str) -> Path:
    """Write the report to ``path`` (creating its folder; replacing the file atomically); the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_report(report), encoding="utf-8")
    partial.replace(path)
    return path
