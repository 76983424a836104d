"""A station store filled by the real code paths: a SKU enrolled from a rendered pristine instance (as
``damage-perception enrol`` does), and rendered items inspected by ``core.inspection.Inspector`` with the
station's config, each verdict logged and its views kept as the node does (``ros.review_media.keep_report``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg

from damage_perception.core.inspection import Inspector
from damage_perception.core.station import parameter_file_settings
from damage_perception.core.view_pipeline import ViewInput
from damage_perception.data.study import gallery_episode
from damage_perception.data.synthesize import episode_rng, render_episode
from damage_perception.ros.debug_publisher import item_report
from damage_perception.ros.review_media import keep_report
from damage_perception.ros.verdict_msgs import verdict_to_msg
from damage_perception.sim.catalogue import sku_spec
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig
from damage_perception.store.database import InspectionRecord, InspectionStore
from damage_perception.store.galleries import load_gallery
from damage_perception.store.item_media import ReviewConfig
from damage_perception.tools.enrol import enrol_episodes
from damage_perception.visualization.item_report import ReportView, report_view

CONFIG = Path(__file__).resolve().parents[2] / "config" / "damage_perception.yaml"


@dataclass
class RenderedSource:
    """Views of one simulated item rendered at the wrist angles the inspector asks for."""

    renderer: CellRenderer
    spec: object
    seed: int
    views: list[ReportView] = field(default_factory=list)

    def take(self, index: int, angle: float) -> ViewInput:
        gripper = self.renderer.gripper
        view = render_episode(self.renderer, gripper, self.spec, [angle], episode_rng(self.seed, index)).views[0]
        depth = np.where(view.depth_m > 0, view.depth_m, np.nan).astype(np.float32)
        return ViewInput(depth, view.intrinsics, view.camera_from_gripper, list(view.finger_poses), view.color)

    def taken(self, result, segment, view: ViewInput) -> None:
        self.views.append(report_view(result, view.color, segment.mask if segment.found else None))


def fill_store(path: Path, sku: str, items: list[tuple[str, str, float]], num_views: int = 4,
               config: ReviewConfig = ReviewConfig(keep_pass_fraction=1.0)) -> list[str]:
    """Enrol ``sku`` and inspect ``items`` = (item id, damage, severity) into a new store at ``path``; returns
    the decisions. With the default ``config`` every item's views are kept, PASS ones too."""
    settings = parameter_file_settings(CONFIG)
    settings = type(settings)(**{**settings.__dict__, "num_views": num_views, "policy": "fixed"})
    inspector = Inspector.for_station(settings)
    assert inspector.model is not None, inspector.model_problem
    store = InspectionStore(path)
    try:
        version = enrol_episodes(store, inspector.model, [gallery_episode(sku)], progress=False)[sku]
        gallery = load_gallery(store, sku)
        renderer = CellRenderer(SceneConfig(), settings.gripper)
        decisions = []
        for seed, (item_id, damage, severity) in enumerate(items):
            source = RenderedSource(renderer, sku_spec(sku, damage, severity, seed=seed, item_id=item_id), seed)
            verdict = inspector.inspect(source, sku, gallery)
            msg = verdict_to_msg(verdict, item_id=item_id, sku=sku, stamp=TimeMsg(), frame_id="gripper_link",
                                 model_version=inspector.model_version, gallery_version=f"{sku}@v{version}",
                                 inspection_seconds=0.0)
            store.log_inspection(InspectionRecord(msg.item_id, msg.sku, msg.decision, msg.fused_score,
                                                  msg.threshold, msg.model_version, msg.gallery_version, msg.reason,
                                                  tuple(msg.view_scores)))
            keep_report(store, msg.decision, item_id, item_report(msg, source.views), config)
            decisions.append(int(msg.decision))
        return decisions
    finally:
        store.close()
