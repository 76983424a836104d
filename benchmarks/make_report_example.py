"""Build the example item report (docs/report_example.png): one simulated damaged item judged as the node
judges it, written by the same code as the node's ``~/save_report``, then rendered by headless Chromium.

The item is rendered by the simulator, each view goes through ``ViewPipeline`` with the shipped damage model
against the SKU's reference gallery (built from a pristine instance, as ``damage-perception enrol`` does),
the views are fused by ``decide`` with the node's default decision settings, and the report is made from
the verdict message (``ros.debug_publisher.item_report``). ``--model ""`` uses the geometric score alone
(no heat maps).

    .venv/bin/python benchmarks/make_report_example.py [--html out/report_example.html]
        [--png docs/report_example.png] [--sku SKU-D0001] [--damage crush] [--seed 7]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.verdict import DecisionConfig, decide
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.data.synthesize import episode_rng, render_episode, view_angles
from damage_perception.ros.debug_publisher import item_report
from damage_perception.ros.verdict_msgs import verdict_to_msg
from damage_perception.sim.catalogue import sku_spec
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig
from damage_perception.visualization.item_report import ItemReport, report_view, write_report


def load_model(path: str):
    """The damage model (``"shipped"``: the package's) and its version, or (None, geometric) for ``""``."""
    if not path:
        return None, "geometric-v1"
    from damage_perception.core.damage_model import DamageModel
    if path == "shipped":
        from damage_perception.core.station import SHIPPED_MODEL_FILE
        path = str(SHIPPED_MODEL_FILE)
    model = DamageModel.load(path)
    return model, model.version


def build_example(sku: str = "SKU-D0001", damage: str = "crush", views: int = 6, seed: int = 7,
                  model_path: str = "shipped") -> ItemReport:
    """Render, segment and judge one damaged item; its report."""
    gripper = GripperGeometry()
    model, version = load_model(model_path)
    gallery = None
    if model is not None:
        from damage_perception.data.study import gallery_episode
        from damage_perception.data.study_scores import gallery_of
        gallery = gallery_of(model, gallery_episode(sku))
    pipeline = ViewPipeline(gripper, model=model)
    renderer = CellRenderer(SceneConfig(), gripper)
    spec = sku_spec(sku, damage, severity=0.9, seed=seed, item_id=f"{sku}-example-{seed}")
    episode = render_episode(renderer, gripper, spec, view_angles(views), episode_rng(seed, 0), variation=0.5)
    started = time.monotonic()
    results, report_views = [], []
    for index, view in enumerate(episode.views):
        depth = np.where(view.depth_m > 0, view.depth_m, np.nan).astype(np.float32)
        result, segment = pipeline.process(ViewInput(depth, view.intrinsics, view.camera_from_gripper,
                                                     list(view.finger_poses), view.color), index, view.wrist_angle,
                                           gallery=gallery)
        results.append(result)
        report_views.append(report_view(result, view.color, segment.mask if segment.found else None))
    config = DecisionConfig(fusion="learned" if model is not None else "max")
    verdict = decide(results, config, None, model.fusion if model is not None else None, gallery is not None)
    msg = verdict_to_msg(verdict, item_id=spec.item_id, sku=spec.sku, stamp=TimeMsg(), frame_id="gripper_link",
                         model_version=version, gallery_version=f"{sku}@v1" if gallery is not None else "",
                         inspection_seconds=time.monotonic() - started)
    return item_report(msg, report_views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=Path("out/report_example.html"), help="report to write")
    parser.add_argument("--png", type=Path, default=Path("docs/report_example.png"), help="screenshot to write")
    parser.add_argument("--sku", default="SKU-D0001")
    parser.add_argument("--damage", default="crush")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="shipped", help='damage model file, "shipped" or "" (geometric)')
    args = parser.parse_args()

    report = build_example(args.sku, args.damage, seed=args.seed, model_path=args.model)
    html_path = write_report(report, args.html)
    print(f"{report.item_id}: {report.decision} (score {report.fused_score:.2f}); wrote {html_path}")

    from damage_perception.visualization.report_screenshot import ScreenshotError, screenshot
    try:
        print(f"wrote {screenshot(html_path, args.png)}")
    except ScreenshotError as error:
        raise SystemExit(f"no screenshot: {error}") from error


if __name__ == "__main__":
    main()
