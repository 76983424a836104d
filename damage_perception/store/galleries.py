"""SKU galleries (``core.gallery.SkuGallery``) in the store: one gallery version per enrolment."""
from __future__ import annotations

import numpy as np

from damage_perception.core.gallery import ReferenceView, SkuGallery
from damage_perception.core.shape_check import ReferenceShape
from damage_perception.store.database import InspectionStore, StoredView


def save_gallery(store: InspectionStore, gallery: SkuGallery, note: str = "") -> int:
    """Enrol a built gallery as the SKU's next (active) version; returns the version number."""
    views = [StoredView(view.patches, view.angle, "patchcore") for view in gallery.views]
    return store.enrol(gallery.sku, views, note, gallery.nominal_score, gallery.shape.points)


def load_gallery(store: InspectionStore, sku: str, version: int | None = None) -> SkuGallery | None:
    """The SKU's active (or given) gallery version, or None when it has none."""
    stored = store.gallery(sku, version)
    if stored is None:
        return None
    views = [ReferenceView(float(v.wrist_angle or 0.0), np.atleast_2d(v.features).astype(np.float32))
             for v in stored.views]
    shape = ReferenceShape(stored.shape_points if stored.shape_points is not None else np.zeros((0, 3), np.float32))
    return SkuGallery(sku, views, shape, stored.nominal_score or 1.0, stored.version, {"note": stored.note})


def active_galleries(store: InspectionStore) -> list[SkuGallery]:
    """The active gallery of every SKU that has one (for ``core.identification.GalleryIndex``)."""
    return [gallery for sku in store.skus_with_gallery() if (gallery := load_gallery(store, sku)) is not None]

