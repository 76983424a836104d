"""Build the example item report (docs/report_example.png) from one simulated damaged item.

The scores are PLACEHOLDERS from the model-free geometric score (``ViewPipeline.process``), and the heat map
is a blob at the geometric damage location scaled by the view's score: a stand-in until the learned
models produce real maps.

    .venv/bin/python benchmarks/make_report_example.py [--out out/report_example] [--png docs/report_example.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from damage_perception.core.camera import project
from damage_perception.core.crops import ItemCrop, crop_item
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.verdict import DecisionConfig, ViewResult, decide
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.data.synthesize import episode_rng, render_episode, view_angles
from damage_perception.data.episode import View
from damage_perception.sim.items import sku_spec
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig
from damage_perception.tools.report import ItemReport, ReportView, write_report

MODEL_VERSION = "geometric-placeholder (example; learned models pending)"
HEAT_SIZE = 40            # cells of the placeholder heat map
HEAT_SIGMA_M = 0.02       # m; spread of the placeholder blob on the item


def placeholder_heatmap(result: ViewResult, view: View, crop: ItemCrop) -> np.ndarray | None:
    """A Gaussian blob at the geometric damage location, peak = the view's score (zero without damage)."""
    if result.damage_location is None or result.score <= 0:
        return np.zeros((HEAT_SIZE, HEAT_SIZE), np.float32)
    location = np.append(np.asarray(result.damage_location, float), 1.0)
    camera_point = (view.camera_from_gripper @ location)[:3]
    u, v = project(camera_point, view.intrinsics)[0]
    if not np.isfinite(u):
        return None  # behind the camera: no map
    row0, row1, col0, col1 = crop.box
    cell = (row1 - row0) / HEAT_SIZE  # image pixels per heat cell
    sigma = view.intrinsics.fx * HEAT_SIGMA_M / camera_point[2] / cell
    rows, cols = np.mgrid[0:HEAT_SIZE, 0:HEAT_SIZE] + 0.5
    distance2 = (rows - (v - row0) / cell) ** 2 + (cols - (u - col0) / cell) ** 2
    return (result.score * np.exp(-distance2 / (2 * sigma ** 2))).astype(np.float32)


def build_example(sku: str = "SKU-D0001", damage: str = "crush", views: int = 6, seed: int = 7) -> ItemReport:
    """Render, segment and score one damaged item; its report (placeholder scores, see module docstring)."""
    gripper = GripperGeometry()
    renderer = CellRenderer(SceneConfig(), gripper)
    pipeline = ViewPipeline(gripper)
    spec = sku_spec(sku, damage, severity=0.9, seed=seed, item_id=f"{sku}-example-{seed}")
    episode = render_episode(renderer, gripper, spec, view_angles(views), episode_rng(seed, 0), variation=0.5)
    results, report_views = [], []
    for index, view in enumerate(episode.views):
        depth = np.where(view.depth_m > 0, view.depth_m, np.nan).astype(np.float32)
        result, segment = pipeline.process(ViewInput(depth, view.intrinsics, view.camera_from_gripper,
                                                     list(view.finger_poses), view.color), index, view.wrist_angle)
        results.append(result)
        scores = {"damage": result.score, **result.type_scores}
        if not segment.found or not segment.mask.any():
            report_views.append(ReportView(index, view.wrist_angle, None, None, None, scores, False, result.reason))
            continue
        crop = crop_item(view.color, view.depth_m, segment.mask)
        report_views.append(ReportView(index, view.wrist_angle, crop.color, crop.mask,
                                       placeholder_heatmap(result, view, crop), scores, result.found, result.reason))
    verdict = decide(results, DecisionConfig())
    return ItemReport(spec.item_id, spec.sku, verdict.decision.name, verdict.fused_score, verdict.threshold,
                      verdict.type_scores, verdict.reason, MODEL_VERSION, report_views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/report_example"), help="report folder")
    parser.add_argument("--png", type=Path, default=Path("docs/report_example.png"), help="screenshot to write")
    parser.add_argument("--damage", default="crush")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    report = build_example(damage=args.damage, seed=args.seed)
    html_path = write_report(report, args.out)
    print(f"{report.item_id}: {report.decision} (score {report.fused_score:.2f}); wrote {html_path}")

    from damage_perception.tools.report_screenshot import ScreenshotError, screenshot
    try:
        print(f"wrote {screenshot(html_path, args.png)}")
    except ScreenshotError as error:
        print(f"no screenshot: {error}")


if __name__ == "__main__":
    main()
