"""The station's store as the perception node uses it, with every store error logged and survived.

A SKU's active gallery is read per item (an enrolment or a rollback counts from the next item on); the
identification index over every active gallery is rebuilt only when what is active changed; every verdict
is logged; an auto-enrolled gallery is saved as the SKU's next version. No store failure costs a verdict:
each is logged on ``log`` (anything with ``error``/``info``/``debug`` methods, e.g. a ROS node's logger)
and answered with None.
"""
from __future__ import annotations

import os
import sqlite3
from typing import Protocol

from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import GalleryIndex
from damage_perception.store.galleries import active_galleries, load_gallery, save_gallery
from damage_perception.store.sqlite_store import InspectionRecord, InspectionStore


class Log(Protocol):
    def error(self, message: str) -> object: ...
    def info(self, message: str) -> object: ...


class StationStore:
    """The SQLite store at ``path`` ('' = none: no galleries, no log)."""

    def __init__(self, path: str, log: Log) -> None:
        self.log = log
        self.store: InspectionStore | None = None
        self._index: tuple[tuple, GalleryIndex | None] = ((), None)   # (active versions, their index)
        if path:
            try:
                self.store = InspectionStore(os.path.expanduser(path))
            except (sqlite3.Error, OSError) as error:
                log.error(f"store '{path}' is unusable: no galleries, verdicts will not be logged: {error}")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def gallery(self, sku: str) -> SkuGallery | None:
        """The SKU's active gallery, None without one (or when the store cannot give it)."""
        if self.store is None or not sku:
            return None
        try:
            return load_gallery(self.store, sku)
        except (sqlite3.Error, ValueError) as error:
            self.log.error(f"gallery of SKU '{sku}' unreadable: {error}")
            return None

    def identification_index(self) -> GalleryIndex | None:
        """Every active gallery's embeddings; None with fewer than two SKUs enrolled."""
        if self.store is None:
            return None
        try:
            active = tuple(sorted(self.store.active_gallery_versions().items()))
            if active != self._index[0]:
                galleries = active_galleries(self.store) if len(active) >= 2 else []
                self._index = (active, GalleryIndex(galleries) if galleries else None)
        except (sqlite3.Error, ValueError) as error:
            self.log.error(f"product identification off for this item: galleries unreadable: {error}")
            return None
        return self._index[1]

    def log_inspection(self, record: InspectionRecord) -> None:
        """Commit a verdict to the log (before it is published)."""
        if self.store is None:
            return
        try:
            self.store.log_inspection(record)
        except (sqlite3.Error, OSError) as error:
            self.log.error(f"item '{record.item_id}': verdict not logged: {error}")

    def save_grown(self, item_id: str, grown: SkuGallery, note: str) -> None:
        """Store an auto-enrolled gallery as the SKU's next, active version. Never raises."""
        if self.store is None:
            return
        try:
            version = save_gallery(self.store, grown, note)
            self.log.info(f"item '{item_id}' auto-enrolled: SKU '{grown.sku}' gallery version {version} active "
                          f"({len(grown.views)} views)")
        except Exception as error:  # noqa: BLE001 - a store error must not cost the verdict or the node
            self.log.error(f"item '{item_id}': auto-enrolment failed: {error!r}")
