"""The perception node's gallery services: enrol the held item, roll a SKU's gallery back, take a label.

- ``~/enrol_sku`` (EnrolSku): the node turns the wrist itself (PoseStamped goals on ``wrist_goal_topic``,
  the same poses it asks the planner for during an inspection), takes each view like an inspection does,
  builds the gallery with the damage model and stores it as the SKU's next, active version. It holds the
  node's one-job lock: an enrolment and an inspection never interleave; whichever comes second is refused.
- ``~/rollback_gallery`` (RollbackGallery): make an enrolled version active again (nothing is deleted).
- ``~/report_label`` (ReportLabel): a person's judgement of an inspected item, for recalibration; an item id
  the store never logged is refused unless ``keep_unlinked`` is set.

Every failure (no store, no model, unknown SKU or version, empty gripper, busy) is answered with
``success: false`` and the reason; none of them stops the node.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from damage_perception_interfaces.srv import EnrolSku, ReportLabel, RollbackGallery
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from damage_perception.core.enrolment import ENROL_VIEWS, EnrolmentError, EnrolmentViews, enrolment_angles
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.store.database import InspectionStore, StoreError
from damage_perception.store.galleries import save_gallery
from damage_perception.store.item_media import keep_reference_crops

# capture(angle, deadline, not_before_ns): move the wrist to ``angle`` and return the first view that shows it
# there, stamped at or after ``not_before_ns``
Capture = Callable[[float, float, int], ViewInput]


class GalleryServices:
    """Serves ``~/enrol_sku``, ``~/rollback_gallery`` and ``~/report_label`` for ``node``."""

    def __init__(self, node: Node, store: InspectionStore | None, model, model_problem: str,
                 pipeline: ViewPipeline, capture: Capture, busy: threading.Lock) -> None:
        self.node, self.store, self.model, self.model_problem = node, store, model, model_problem
        self.pipeline = pipeline  # segmentation only: the model runs once, on the collected crops
        self.capture, self.busy = capture, busy
        node.declare_parameter("enrol_num_views", ENROL_VIEWS)
        node.declare_parameter("enrol_deadline", 60.0)
        enrol_group, store_group = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        node.create_service(EnrolSku, "~/enrol_sku", self._on_enrol, callback_group=enrol_group)
        node.create_service(RollbackGallery, "~/rollback_gallery", self._on_rollback, callback_group=store_group)
        node.create_service(ReportLabel, "~/report_label", self._on_label, callback_group=store_group)

    def _log(self, success: bool, message: str) -> None:
        if success:  # two call sites: rclpy refuses one call site logging at two severities
            self.node.get_logger().info(message)
        else:
            self.node.get_logger().error(message)

    # -- enrolment ----------------------------------------------------------------------------------
    def _on_enrol(self, request: EnrolSku.Request, response: EnrolSku.Response) -> EnrolSku.Response:
        response.success, response.version, response.views_used = False, 0, 0
        problem = self._enrol_problem(request)
        if problem:
            response.message = f"enrolment of SKU '{request.sku}' refused: {problem}"
        elif not self.busy.acquire(blocking=False):
            response.message = (f"enrolment of SKU '{request.sku}' refused: an inspection or another enrolment "
                                "is running; call again when it has finished")
        else:
            try:
                version, used = self._enrol(request)
                response.success, response.version, response.views_used = True, version, used
                response.message = f"SKU '{request.sku}' gallery version {version} active ({used} views)"
            except (EnrolmentError, StoreError) as error:
                response.message = f"enrolment of SKU '{request.sku}' failed: {error}"
            except Exception as error:  # noqa: BLE001 - a view that never came, a store error: answer, don't die
                response.message = f"enrolment of SKU '{request.sku}' failed: {error}"
            finally:
                self.busy.release()
        self._log(response.success, response.message)
        return response

    def _enrol_problem(self, request: EnrolSku.Request) -> str:
        if not request.sku:
            return "no SKU given"
        if self.store is None:
            return "no store configured (store_path) or the store is unusable"
        if self.model is None:
            return self.model_problem or "no damage model (model_path is empty): galleries are built by the model"
        return ""

    def _enrol(self, request: EnrolSku.Request) -> tuple[int, int]:
        requested = int(request.num_views) or int(self.node.get_parameter("enrol_num_views").value)
        deadline = time.monotonic() + float(self.node.get_parameter("enrol_deadline").value)
        # Only frames stamped after the request: one rendered while the item was still being presented shows an
        # empty gripper (the first view would then end the enrolment as "no item in the gripper").
        requested_ns = self.node.get_clock().now().nanoseconds
        views = EnrolmentViews()
        for index, angle in enumerate(enrolment_angles(requested)):
            view = self.capture(angle, deadline, requested_ns)
            result, segment = self.pipeline.process(view, index=index, wrist_angle=angle)
            if result.found:
                views.add(view.color, view.depth_m, segment, angle, view.intrinsics, view.camera_from_gripper)
            elif index == 0:  # nothing in the first view: an empty gripper (as an inspection concludes)
                raise EnrolmentError(f"no item in the gripper: {result.reason}")
        gallery = views.build(self.model, request.sku, requested)
        note = request.note or f"enrolled at the station, model {self.model.version}"
        version = save_gallery(self.store, gallery, note)
        for angle, why in gallery.metadata.get("refused_views", {}).items():
            self.node.get_logger().warning(f"SKU '{request.sku}' version {version}: the view at {angle} was "
                                           f"left out: {why}")
        kept = views.kept_by(gallery)
        try:   # the enrolment crops the review station shows next to an item's views
            keep_reference_crops(self.store, request.sku, version, [views.angles[k] for k in kept],
                                 [views.colors[k] for k in kept])
        except Exception as error:  # noqa: BLE001 - the gallery is enrolled; only the review page lacks its crops
            self.node.get_logger().warning(f"SKU '{request.sku}' version {version}: reference crops not kept: "
                                           f"{error!r}")
        return version, len(gallery.views)

    # -- rollback and labels ------------------------------------------------------------------------
    def _on_rollback(self, request: RollbackGallery.Request,
                     response: RollbackGallery.Response) -> RollbackGallery.Response:
        response.success, response.active_version = False, 0
        if self.store is None:
            response.message = "no store configured (store_path) or the store is unusable"
        else:
            try:
                self.store.activate(request.sku, int(request.version))
                response.success = True
                response.message = f"SKU '{request.sku}' now uses gallery version {request.version}"
            except StoreError as error:
                response.message = f"rollback refused: {error}"
            response.active_version = self._active_version(request.sku)
        self._log(response.success, response.message)
        return response

    def _active_version(self, sku: str) -> int:
        try:
            return next((version for version, active, _ in self.store.gallery_versions(sku) if active), 0)
        except StoreError:
            return 0

    def _on_label(self, request: ReportLabel.Request, response: ReportLabel.Response) -> ReportLabel.Response:
        response.success = False
        if self.store is None:
            response.message = "no store configured (store_path) or the store is unusable"
        elif not request.item_id:
            response.message = "label refused: no item_id given"
        else:
            try:
                linked = self.store.was_inspected(request.item_id)
                if not (linked or request.keep_unlinked):   # a typo'd id would silently calibrate nothing
                    response.message = (f"label refused: no logged inspection of item '{request.item_id}' (set "
                                        "keep_unlinked to store it anyway)")
                    self._log(False, response.message)
                    return response
                self.store.add_label(request.item_id, request.damaged, request.damage_type, request.labeller)
                response.success = True
                response.message = (f"label of item '{request.item_id}' stored"
                                    + ("" if linked else " (no logged inspection of that item: kept unlinked)"))
            except StoreError as error:
                response.message = f"label of item '{request.item_id}' not stored: {error}"
        self._log(response.success, response.message)
        return response
