"""The node's side of the review station: after a verdict is logged, keep what a person needs to judge it.

Parameters ``review.*`` (``store.item_media.ReviewConfig``): every REVIEW and DIVERT item and a sample of
PASS items (``keep_pass_fraction``) keep their view crops, heat maps and scores in the store
(``store/item_media.py``), bounded by ``retention_days`` and ``retention_mib``. The views come from the
report the debug publisher keeps of the last item (``ros/debug_publisher.py``). Never raises: keeping media
must not cost a verdict.
"""
from __future__ import annotations

from damage_perception_interfaces.msg import DamageVerdict
from rclpy.node import Node

from damage_perception.ros.params import declare_config
from damage_perception.store.database import InspectionStore, StoreError
from damage_perception.store.item_media import (
    ReviewConfig,
    ViewMedia,
    keep_item,
    keep_reason,
    latest_inspection_id,
    view_media,
)
from damage_perception.visualization.drawing import overlay_heatmap
from damage_perception.visualization.item_report import ItemReport, ReportView


def media_of(view: ReportView) -> ViewMedia:
    """A report view's kept media: crop, heat-map overlay, mask, raw heat map; scores and model signals."""
    overlay = None
    if view.color is not None and view.heatmap is not None:
        overlay = overlay_heatmap(view.color, view.heatmap)
    scores = {**view.scores, **{f"signal.{name}": value for name, value in view.signals.items()}}
    return view_media(view.index, view.wrist_angle, view.found, view.reason, scores, view.color, overlay,
                      view.mask, view.heatmap)


def keep_report(store: InspectionStore, decision: int, item_id: str, report: ItemReport,
                config: ReviewConfig) -> str:
    """Keep ``report``'s views for the item's latest logged inspection if ``decision`` asks for it; why it
    was kept ("" when it was not). Raises StoreError (no logged inspection) or encoding errors."""
    reason = keep_reason(decision, item_id, config)
    if not reason:
        return ""
    inspection_id = latest_inspection_id(store, item_id)
    if inspection_id is None:
        raise StoreError(f"item '{item_id}' has no logged inspection")
    keep_item(store, inspection_id, reason, report.damage_types, [media_of(view) for view in report.views], config)
    return reason


class ReviewMedia:
    """Declares ``review.*`` on ``node`` and keeps the media of the items the review station needs."""

    def __init__(self, node: Node, store: InspectionStore | None) -> None:
        self.node, self.store = node, store
        self.config = declare_config(node, "review", ReviewConfig())

    def keep(self, msg: DamageVerdict, report: ItemReport | None) -> None:
        """Keep the finished item's views (``report``, the debug publisher's) if its decision asks for it."""
        if self.store is None or report is None or report.item_id != msg.item_id:
            return
        try:
            keep_report(self.store, msg.decision, msg.item_id, report, self.config)
        except Exception as error:  # noqa: BLE001 - a store or encoding error must not cost the verdict
            self.node.get_logger().error(f"item '{msg.item_id}': review media not kept: {error!r}")
