"""Writes to a store in a loop and prints each committed id, until it is killed (used by test_sqlite_store)."""
import sys

import numpy as np

from damage_perception.store.sqlite_store import InspectionRecord, InspectionStore, ReferenceView


def main(path: str, mode: str) -> None:
    store = InspectionStore(path)
    rng = np.random.default_rng(0)
    for index in range(1_000_000):
        if mode == "log":
            committed = store.log_inspection(InspectionRecord(f"item-{index}", "sku-a", index % 4, 0.1, 0.5,
                                                              view_scores=(0.1, 0.2)))
        else:  # enrol galleries of many views, so a kill often lands inside one
            views = [ReferenceView(rng.normal(size=256).astype(np.float32), wrist_angle=float(i))
                     for i in range(200)]
            committed = store.enrol("sku-big", views, note=f"batch {index}")
        print(committed, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
