"""Writes to a store in a loop and prints each committed id, until it is killed (used by test_sqlite_store)."""
import sys

import numpy as np

from damage_perception.core.gallery import ReferenceView, SkuGallery
from damage_perception.core.shape_check import ReferenceShape
from damage_perception.store.galleries import save_gallery
from damage_perception.store.sqlite_store import InspectionRecord, InspectionStore, StoredView

GALLERY_SKUS = ("SKU-A", "SKU-B", "SKU-C")


def seeded_gallery(sku: str, seed: int) -> SkuGallery:
    """A PatchCore-sized gallery whose every number follows from ``seed`` (stored in its note)."""
    rng = np.random.default_rng(seed)
    views = [ReferenceView(0.5 * k, rng.normal(size=(300, 152)).astype(np.float32)) for k in range(6)]
    return SkuGallery(sku, views, ReferenceShape(rng.normal(size=(2000, 3)).astype(np.float32)),
                      nominal_score=1.0 + seed)


def main(path: str, mode: str) -> None:
    store = InspectionStore(path)
    rng = np.random.default_rng(0)
    for index in range(1_000_000):
        if mode == "galleries":  # enrol galleries of several SKUs in turn, rolling one back now and then
            sku, seed = GALLERY_SKUS[index % len(GALLERY_SKUS)], int(rng.integers(1 << 30))
            version = save_gallery(store, seeded_gallery(sku, seed), note=f"seed {seed}")
            if index % 7 == 6:
                store.activate(sku, 1)
            print(sku, version, seed, flush=True)
            continue
        if mode == "log":
            committed = store.log_inspection(InspectionRecord(f"item-{index}", "sku-a", index % 4, 0.1, 0.5,
                                                              view_scores=(0.1, 0.2)))
        else:  # enrol galleries of many views, so a kill often lands inside one
            views = [StoredView(rng.normal(size=256).astype(np.float32), wrist_angle=float(i))
                     for i in range(200)]
            committed = store.enrol("sku-big", views, note=f"batch {index}")
        print(committed, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
