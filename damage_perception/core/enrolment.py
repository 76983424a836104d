"""Reference views of one item collected at the station, turned into a SKU gallery (no ROS here).

The node's enrolment turns the wrist through evenly spaced angles like a ``fixed`` inspection, runs each view
through the same segmentation, and hands the item's crop and points here; ``build`` makes the gallery with
the damage model exactly as ``damage-perception enrol`` does from rendered or recorded views.

Auto-enrolment (``AutoEnrolConfig``, off by default): an item that passed confidently and looks like the
gallery's own views (the drift guard: a changed look scores a high anomaly and is never taken) may add its
views to the SKU's gallery (``grown_gallery``); a changed look is enrolled by a person.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from damage_perception.core.camera import CameraIntrinsics
from damage_perception.core.crops import crop_item
from damage_perception.core.gallery import CORESET_RATIO, SkuGallery, nominal_score, reference_view
from damage_perception.core.registered_comparison import PosedCrop, posed_crop
from damage_perception.core.segmentation import ItemSegment
from damage_perception.core.shape_check import build_reference, thin_points
from damage_perception.core.verdict import Decision, ItemVerdict, ViewResult

ENROL_VIEWS = 12   # a station enrolment's default view count: the registered comparison needs a reference
#                    view within a few degrees of each view (the shipped model was measured on 12)


class EnrolmentError(ValueError):
    """The collected views cannot make a gallery; the message says why."""


@dataclass
class EnrolmentViews:
    """Item crops, wrist angles, gripper-frame points and cameras of the views in which the item was found."""

    colors: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    depths_m: list[np.ndarray] = field(default_factory=list)
    angles: list[float] = field(default_factory=list)
    clouds: list[np.ndarray] = field(default_factory=list)
    posed: list[PosedCrop] = field(default_factory=list)   # each crop with its camera (registered comparison)

    def __len__(self) -> int:
        return len(self.angles)

    def add(self, color: np.ndarray, depth_m: np.ndarray, segment: ItemSegment, angle: float,
            intrinsics: CameraIntrinsics, camera_from_gripper: np.ndarray) -> None:
        """Keep one view's item crop (``depth_m`` in metres, NaN or 0 = no reading), thinned points and the
        crop's camera (from the full image's ``intrinsics`` and the camera's pose, camera <- gripper)."""
        crop = crop_item(color, depth_m, segment.mask)
        self.colors.append(crop.color)
        self.masks.append(crop.mask)
        self.depths_m.append(crop.depth_m)
        self.angles.append(float(angle))
        self.clouds.append(thin_points(segment.points))
        self.posed.append(posed_crop(crop, intrinsics, camera_from_gripper))

    def build(self, model, sku: str, requested: int, min_share: float = 0.5):
        """The SKU's gallery (``core.gallery.SkuGallery``) built by ``model`` (a ``DamageModel``) with the
        views' posed crops: the model refuses views that disagree with the others (``metadata
        ["refused_views"]``) and sets the gallery's ``registered_nominal``. Raises ``EnrolmentError`` when
        fewer than ``min_share`` of the ``requested`` views showed the item."""
        needed = max(2, math.ceil(min_share * requested))  # a gallery compares views with each other
        if len(self) < needed:
            raise EnrolmentError(f"the item was found in {len(self)} of {requested} views, at least {needed} "
                                 "are needed for a gallery")
        return model.build_gallery(sku, np.stack(self.colors), np.stack(self.masks), np.stack(self.depths_m),
                                   np.asarray(self.angles, float), self.clouds, posed=list(self.posed))

    def kept_by(self, gallery) -> list[int]:
        """Indices of the views ``gallery`` (built by ``build``) kept as reference views, in its order (the
        model refuses views that disagree with the others)."""
        index = {id(crop): k for k, crop in enumerate(self.posed)}
        return [index[id(view.posed)] for view in gallery.views if id(view.posed) in index]


def enrolment_angles(num_views: int) -> list[float]:
    """``num_views`` wrist angles evenly spread over a turn (those of a ``fixed`` inspection)."""
    if num_views < 1:
        raise EnrolmentError("an enrolment needs at least one view")
    return [2.0 * math.pi * k / num_views for k in range(num_views)]


@dataclass(frozen=True)
class AutoEnrolConfig:
    """When a confidently passed item's views are added to its SKU's gallery (a new gallery version)."""

    enabled: bool = False
    max_item_probability: float = 0.01   # the verdict's fused damage probability at most this
    max_anomaly: float = 1.2             # every view's gallery anomaly at most this (1 = as the gallery's own
    #                                      views): the drift guard, a changed look is never auto-enrolled
    min_views: int = 4                   # views that found the item
    max_views_per_gallery: int = 24      # a gallery grown to this many views waits for a person's enrolment


def auto_enrol_decision(verdict: ItemVerdict, gallery: SkuGallery | None, config: AutoEnrolConfig) -> str:
    """"" when the item's views may grow ``gallery`` (the one it was judged against), else why not."""
    found = [view for view in verdict.views if view.found]
    anomalies = [view.signals.get("anomaly", math.inf) for view in found]
    if verdict.decision != Decision.PASS:
        return f"decision {verdict.decision.name}, not PASS"
    if verdict.sku_mismatch:
        return f"the item looks like SKU {verdict.closest_sku}, not its own"
    if gallery is None:
        return "no gallery to grow"
    if not verdict.fused_score <= config.max_item_probability:
        return f"damage probability {verdict.fused_score:.3g} > {config.max_item_probability:g}"
    if anomalies and not max(anomalies) <= config.max_anomaly:
        return f"a view's anomaly {max(anomalies):.2f} > {config.max_anomaly:g}: a changed look is enrolled by a person"
    if len(found) < config.min_views:
        return f"item found in {len(found)} views, {config.min_views} needed"
    if any(view.patches is None or view.cloud is None for view in found):
        return "the views' patches were not kept (auto_enrol off in the view pipeline)"
    if len(gallery.views) >= config.max_views_per_gallery:
        return (f"gallery v{gallery.version} has {len(gallery.views)} views (max_views_per_gallery "
                f"{config.max_views_per_gallery}): a person enrols the next")
    return ""


def grown_gallery(gallery: SkuGallery, views: list[ViewResult], max_views: int | None = None,
                  coreset_ratio: float = CORESET_RATIO) -> SkuGallery:
    """The next gallery: ``gallery``'s reference views as they are (their posed crops too) plus the found
    ``views``' coresets, at most ``max_views`` in all; its shape plus their clouds, the nominal score
    recomputed over all views. The added views bring the posed crops they kept (``ViewResult.posed``, None
    where not kept: the registered comparison leaves such a reference out), unless ``gallery`` has no
    registered nominal to normalise them with (enrolled before the cameras were kept). The registered
    nominal is the gallery's: recomputing it takes the model, and the added views passed as pristine as the
    gallery's own. The version number is the store's to give (``store.galleries.save_gallery``)."""
    room = len(views) if max_views is None else max(0, max_views - len(gallery.views))
    added = [view for view in views if view.found and view.patches is not None and len(view.patches)][:room]
    first = len(gallery.views)
    new = [reference_view(view.patches, view.wrist_angle, coreset_ratio, seed=first + k)
           for k, view in enumerate(added)]
    if gallery.registered_nominal:   # without it (a gallery enrolled before cameras were kept) the
        for reference, view in zip(new, added):   # comparison's residuals could not be normalised
            reference.posed = view.posed
    reference = [*gallery.views, *new]
    # The kept views' full patches are gone: their coresets stand for them in the leave-one-out.
    queries = [view.patches for view in gallery.views] + [np.asarray(view.patches, np.float32) for view in added]
    shape = build_reference([gallery.shape.points, *(view.cloud for view in added if view.cloud is not None)])
    return SkuGallery(gallery.sku, reference, shape, nominal_score(reference, queries), gallery.version + 1,
                      dict(gallery.metadata), dict(gallery.registered_nominal))
