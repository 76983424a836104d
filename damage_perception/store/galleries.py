"""SKU galleries (``core.gallery.SkuGallery``) in the store: one gallery version per enrolment.

Each reference view keeps its patch coreset and, where it was enrolled with its camera, its posed crop (what
the registered comparison re-projects, ``core.registered_comparison.PosedCrop``) as one compressed npz blob:
colour uint8, depth float32 metres (exactly as enrolled: the gallery's registered nominal was measured on
it), the item mask as packed bits, the crop's 3x3 camera matrix and the 4x4 camera <- gripper pose; about
80 kB per rendered 160 px view. The version keeps the registered nominal as JSON, with the key of the model
that measured it (``NOMINAL_KEY``, a string among the numbers). Versions enrolled before the
store kept them (schema migration 5) load with ``posed`` None and an empty nominal: no registered comparison.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np

from damage_perception.core.gallery import NOMINAL_KEY, ReferenceView, SkuGallery
from damage_perception.core.registered_comparison import PosedCrop
from damage_perception.core.shape_check import ReferenceShape
from damage_perception.store.database import GalleryVersion, InspectionStore, StoredView, StoreError

POSED_FORMAT = 1


def encode_posed(crop: PosedCrop) -> bytes:
    """A posed crop as a compressed npz blob (see the module docstring)."""
    mask = np.asarray(crop.mask, bool)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array(POSED_FORMAT), color=np.asarray(crop.color, np.uint8),
                        depth_m=np.asarray(crop.depth_m, np.float32), mask_bits=np.packbits(mask),
                        mask_shape=np.array(mask.shape), camera_matrix=np.asarray(crop.camera_matrix, float),
                        camera_from_gripper=np.asarray(crop.camera_from_gripper, float))
    return buffer.getvalue()


def decode_posed(blob: bytes) -> PosedCrop:
    """The posed crop ``encode_posed`` wrote; StoreError when the blob is not one."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            if int(data["format"]) != POSED_FORMAT:
                raise StoreError(f"posed crop of format {int(data['format'])}, this code reads {POSED_FORMAT}")
            shape = tuple(int(v) for v in data["mask_shape"])
            mask = np.unpackbits(data["mask_bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
            return PosedCrop(data["color"], data["depth_m"], mask, data["camera_matrix"],
                             data["camera_from_gripper"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise StoreError(f"unreadable posed crop: {error}") from error


def save_gallery(store: InspectionStore, gallery: SkuGallery, note: str = "") -> int:
    """Enrol a built gallery as the SKU's next (active) version; returns the version number."""
    views = [StoredView(view.patches, view.angle, "patchcore", None if view.posed is None else encode_posed(view.posed))
             for view in gallery.views]
    registered: dict[str, float | str] = dict(gallery.registered_nominal)
    if registered and NOMINAL_KEY in gallery.metadata:   # what measured the nominal, kept beside it
        registered[NOMINAL_KEY] = str(gallery.metadata[NOMINAL_KEY])
    return store.enrol(gallery.sku, views, note, gallery.nominal_score, gallery.shape.points, registered or None)


def load_gallery(store: InspectionStore, sku: str, version: int | None = None,
                 with_posed: bool = True) -> SkuGallery | None:
    """The SKU's active (or given) gallery version, or None when it has none; ``with_posed=False`` leaves the
    views' posed crops undecoded (``posed`` None), for uses that need only the patches."""
    stored = store.gallery(sku, version)
    return None if stored is None else gallery_from_stored(stored, with_posed)


def gallery_from_stored(stored: GalleryVersion, with_posed: bool = True) -> SkuGallery:
    """A stored gallery version decoded (``with_posed=False``: the views' posed crops left undecoded)."""
    views = [ReferenceView(float(v.wrist_angle or 0.0), np.atleast_2d(v.features).astype(np.float32),
                           decode_posed(v.posed) if with_posed and v.posed is not None else None)
             for v in stored.views]
    shape = ReferenceShape(stored.shape_points if stored.shape_points is not None else np.zeros((0, 3), np.float32))
    registered = dict(stored.registered_nominal or {})
    metadata = {"note": stored.note}
    if NOMINAL_KEY in registered:
        metadata[NOMINAL_KEY] = str(registered.pop(NOMINAL_KEY))
    return SkuGallery(stored.sku, views, shape, stored.nominal_score or 1.0, stored.version, metadata,
                      {name: float(value) for name, value in registered.items()})


def active_galleries(store: InspectionStore, with_posed: bool = False) -> list[SkuGallery]:
    """The active gallery of every SKU that has one (for ``core.identification.GalleryIndex``, which needs
    only the patches: by default the posed crops, about 1 MB per 12-view SKU decoded, are left out)."""
    return [gallery for sku in store.skus_with_gallery()
            if (gallery := load_gallery(store, sku, with_posed=with_posed)) is not None]
