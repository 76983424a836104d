"""One item's inspection, without ROS: views in, an ``ItemVerdict`` out.

``Inspector`` holds what an inspection judges with (the damage model, the view pipeline, the decision,
product identification and the auto-enrolment rule) and ``Inspector.inspect`` runs it: the view policy asks
for wrist angles, a ``ViewSource`` supplies the view at each angle (the live camera in
``ros/camera_input.py``, a recording in ``data/replay_bag.py``), the pipeline scores each view, and the
verdict is decided, held to the policy's coverage rule (``core.coverage``: unusable views are retried, and
a PASS needs every view the policy requires to be usable) and checked against the claimed SKU. The node and
``replay`` both inspect through it, so they cannot judge an item differently.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

from damage_perception.core.coverage import InspectionError, require_coverage, take_views
from damage_perception.core.damage_model import DamageModel, ModelLoadError
from damage_perception.core.enrolment import auto_enrol_decision, grown_gallery
from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import ClaimCheck, GalleryIndex, check_item
from damage_perception.core.policies import ViewPolicy, make_policy
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.station import GEOMETRIC_VERSION, StationSettings, load_station_model
from damage_perception.core.verdict import ItemVerdict, ViewResult, decide, with_identification
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline


class ViewSource(Protocol):
    """Where an inspection's views come from."""

    def take(self, index: int, angle: float) -> ViewInput:
        """The ``index``-th frame taken (retries count) as a view with the wrist at ``angle`` (rad);
        ViewUnavailable when none can be had now (worth a retry), InspectionError when the inspection cannot
        go on."""

    def taken(self, result: ViewResult, segment: ItemSegment, view: ViewInput) -> None:
        """Told what the pipeline made of the view just taken (feedback, debug output)."""


class Inspector:
    """Judges items with one station's settings and damage model (``model_problem``: why there is none
    although one was asked for; every inspection then raises InspectionError with it)."""

    def __init__(self, settings: StationSettings, model: DamageModel | None, model_problem: str = "") -> None:
        self.settings = settings
        self.model = model
        self.model_problem = model_problem
        self.decision = settings.decision
        if model is None and self.decision.fusion == "learned":   # the learned fusion is the model's
            self.decision = dataclasses.replace(self.decision, fusion="max")
        self.pipeline = ViewPipeline(settings.gripper, settings.pipeline, model,
                                     keep_gallery_data=settings.auto_enrol.enabled)

    @classmethod
    def for_station(cls, settings: StationSettings) -> Inspector:
        """With the model ``settings.model_path`` names; one that does not load becomes ``model_problem``."""
        try:
            return cls(settings, load_station_model(settings.model_path))
        except ModelLoadError as error:
            return cls(settings, None, f"damage model unavailable: {error}")

    @property
    def model_version(self) -> str:
        return self.model.version if self.model is not None else GEOMETRIC_VERSION

    def policy(self, name: str = "") -> ViewPolicy:
        """A fresh view policy (``name``, default the station's); InspectionError for an unknown one."""
        settings = self.settings
        try:
            return make_policy(name or settings.policy, settings.num_views, settings.stopping,
                               tuple(settings.reachable_wrist_angles))
        except ValueError as error:
            raise InspectionError(str(error)) from error

    def inspect(self, source: ViewSource, sku: str, gallery: SkuGallery | None = None,
                index: GalleryIndex | None = None, policy: str = "") -> ItemVerdict:
        """Take the policy's views from ``source``, score them against ``gallery`` (the SKU's, used only with
        a model), decide, and check the claimed ``sku`` against ``index`` (every enrolled SKU's gallery)."""
        if self.model_problem:
            raise InspectionError(self.model_problem)
        gallery = gallery if self.model is not None else None
        chosen = self.policy(policy)

        def take_view(frame_index: int, angle: float) -> ViewResult:
            view = source.take(frame_index, angle)
            result, segment = self.pipeline.process(view, index=frame_index, wrist_angle=angle, gallery=gallery)
            source.taken(result, segment, view)
            return result

        taken = take_views(chosen, take_view, self.settings.view_retries)
        views = taken.views
        stale = (self.model.stale_gallery(gallery) or "") if self.model is not None else ""
        verdict = decide(views, self.decision, chosen.early_decision(views),
                         self.model.fusion if self.model is not None else None, gallery is not None, stale)
        verdict = require_coverage(verdict, chosen, taken.unusable)   # a PASS needs the usable views' evidence
        return with_identification(verdict, self.check_claim(sku, views, index))

    def check_claim(self, sku: str, views: list[ViewResult], index: GalleryIndex | None) -> ClaimCheck | None:
        """Does the item look like the SKU it came as? None when not checkable (no index, no embeddings)."""
        embeddings = [view.embedding for view in views if view.found and view.embedding is not None]
        if index is None or not embeddings:
            return None
        return check_item(index, embeddings, sku, self.settings.identification)

    def auto_enrolment(self, item_id: str, verdict: ItemVerdict,
                       gallery: SkuGallery | None) -> tuple[SkuGallery | None, str]:
        """With ``auto_enrol.enabled``: (the gallery grown by the item's views, the version's note) when the
        item qualifies, else (None, why not)."""
        config = self.settings.auto_enrol
        if not config.enabled:
            return None, "auto_enrol.enabled is off"
        reason = auto_enrol_decision(verdict, gallery, config)
        if reason:
            return None, reason
        grown = grown_gallery(gallery, verdict.views, config.max_views_per_gallery)
        added = len(grown.views) - len(gallery.views)
        return grown, f"auto-enrolled from item {item_id} (v{gallery.version} + {added} views)"
