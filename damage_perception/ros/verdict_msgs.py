"""Messages of the InspectItem action: the core's ItemVerdict as a DamageVerdict, wrist goals, feedback."""
from __future__ import annotations

import math
from collections.abc import Sequence

from builtin_interfaces.msg import Time
from damage_perception_interfaces.action import InspectItem
from damage_perception_interfaces.msg import DamageTypeScores, DamageVerdict
from geometry_msgs.msg import Point, PoseStamped

from damage_perception.core.transforms import make_transform, rotation_about_z
from damage_perception.core.verdict import Decision, ItemVerdict, ViewResult
from damage_perception.ros.conversions import matrix_to_pose
from damage_perception.store.database import InspectionRecord

DECISION_NAMES = {int(decision): decision.name for decision in Decision}


def verdict_to_msg(verdict: ItemVerdict, *, item_id: str, sku: str, stamp: Time, frame_id: str,
                   model_version: str, gallery_version: str, inspection_seconds: float,
                   view_stamps: Sequence[Time] = ()) -> DamageVerdict:
    """Fill a DamageVerdict; without a damage model (geometric fallback) the probability is NaN.

    ``view_stamps``: the stamp of the frame of every view taken, in order, also of views without the item
    and retries (so that ``damage-perception replay`` can take the same frames from a recording). Every
    unusable attempt is listed (``unusable_view_*``)."""
    msg = DamageVerdict()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.item_id, msg.sku = item_id, sku
    msg.decision = int(verdict.decision)
    msg.damage_probability = float(verdict.damage_probability)
    msg.anomaly_score = float(verdict.anomaly_score)
    msg.fused_score = float(verdict.fused_score)
    msg.threshold = float(verdict.threshold)
    msg.type_scores = DamageTypeScores(**{k: float(v) for k, v in verdict.type_scores.items()})
    taken = [view for view in verdict.views if view.found]
    msg.num_views = len(taken)
    msg.view_scores = [float(view.score) for view in taken]
    msg.view_wrist_angles = [float(view.wrist_angle) for view in taken]
    msg.view_stamps = [Time(sec=stamp.sec, nanosec=stamp.nanosec) for stamp in view_stamps]
    msg.num_unusable_views = len(verdict.unusable_views)
    msg.unusable_view_angles = [float(view.wrist_angle) for view in verdict.unusable_views]
    msg.unusable_view_reasons = [view.reason for view in verdict.unusable_views]
    if verdict.damage_location is not None:
        msg.has_damage_location = True
        msg.damage_location = Point(x=float(verdict.damage_location[0]), y=float(verdict.damage_location[1]),
                                    z=float(verdict.damage_location[2]))
    msg.closest_sku, msg.sku_mismatch = verdict.closest_sku, bool(verdict.sku_mismatch)
    msg.model_version, msg.gallery_version = model_version, gallery_version
    msg.inspection_seconds = float(inspection_seconds)
    msg.reason = verdict.reason
    return msg


def error_verdict_msg(reason: str, *, item_id: str, sku: str, stamp: Time, frame_id: str,
                      model_version: str, inspection_seconds: float) -> DamageVerdict:
    """A DamageVerdict with decision ERROR and the reason, for goals that could not be judged."""
    msg = DamageVerdict(item_id=item_id, sku=sku, decision=DamageVerdict.ERROR, reason=reason,
                        model_version=model_version, inspection_seconds=float(inspection_seconds))
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.damage_probability = msg.anomaly_score = msg.fused_score = math.nan
    return msg


def wrist_pose(angle: float, frame_id: str, stamp: Time) -> PoseStamped:
    """The wrist goal for ``angle`` (rad about ``frame_id``'s z): what the node asks the planner for."""
    pose = PoseStamped()
    pose.header.frame_id, pose.header.stamp = frame_id, stamp
    pose.pose = matrix_to_pose(make_transform(rotation=rotation_about_z(angle)))
    return pose


def view_request_feedback(index: int, angle: float, pose: PoseStamped) -> InspectItem.Feedback:
    """InspectItem feedback asking for view ``index`` at ``angle``."""
    return InspectItem.Feedback(view_index=index, view_score=math.nan, done=False, next_wrist_angle=float(angle),
                                next_wrist_pose=pose,
                                status=f"view {index}: move the wrist to {math.degrees(angle):.0f} deg")


def view_result_feedback(result: ViewResult) -> InspectItem.Feedback:
    """InspectItem feedback with what a view showed."""
    status = f"view {result.index}: " + (f"score {result.score:.2f}" if result.found else result.reason)
    return InspectItem.Feedback(view_index=result.index, view_score=float(result.score), done=False,
                                next_wrist_angle=float(result.wrist_angle), status=status)


def inspection_record(msg: DamageVerdict) -> InspectionRecord:
    """The store's log row of a verdict message."""
    return InspectionRecord(msg.item_id, msg.sku, msg.decision, msg.fused_score, msg.threshold, msg.model_version,
                            msg.gallery_version, msg.reason, tuple(msg.view_scores))
