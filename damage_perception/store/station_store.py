"""The station's store as the perception node uses it, with every store error logged and survived.

A SKU's active gallery is read per item (an enrolment or a rollback counts from the next item on) and decoded
only when the active version changed (the same object then keeps what models derived from it: the references'
coloured clouds, the classifier's reference reading; the last ``DECODED_GALLERIES`` SKUs' are kept); the
identification index over every active gallery is rebuilt only when what is active changed; every verdict
is logged; an auto-enrolled gallery is saved as the SKU's next version. No store failure costs a verdict:
each is logged on ``log`` (anything with ``error``/``info``/``debug`` methods, e.g. a ROS node's logger)
and answered with None.

``store_path`` is a SQLite file (a lone station) or a ``postgresql://`` URL (a fleet: ``store.fleet``, with
its local outbox); ``health()`` says how the store is doing, for the node's /diagnostics.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from damage_perception.core.gallery import SkuGallery
from damage_perception.core.identification import GalleryIndex
from damage_perception.store.database import (
    GalleryVersion,
    InspectionRecord,
    InspectionStore,
    StoreError,
)
from damage_perception.store.fleet import (
    FleetStore,
    default_station_id,
    open_station_store,
)
from damage_perception.store.galleries import (
    active_galleries,
    gallery_from_stored,
    save_gallery,
)

# Decoded galleries kept (about 1 MB of posed crops each, at 12 views): a station sees far more SKUs than
# it could keep, and the items of one SKU tend to come in runs.
DECODED_GALLERIES = 32


class Log(Protocol):
    def error(self, message: str) -> object: ...
    def warning(self, message: str) -> object: ...
    def info(self, message: str) -> object: ...


@dataclass
class StoreHealth:
    """The store's state in a few words and key-values (the node turns it into a DiagnosticStatus)."""

    ok: bool
    message: str
    values: dict[str, str] = field(default_factory=dict)


class StationStore:
    """The store at ``path`` ('' = none: no galleries, no log): a SQLite file or a fleet server's URL."""

    def __init__(self, path: str, log: Log, station_id: str = "", outbox: str = "") -> None:
        self.log = log
        self.station_id = station_id or default_station_id()
        self.store: InspectionStore | FleetStore | None = None
        self._index: tuple[tuple, GalleryIndex | None] = ((), None)   # (active versions, their index)
        # SKU -> (its stored version's identity, gallery), least recently used first
        self._decoded: OrderedDict[str, tuple[tuple, SkuGallery]] = OrderedDict()
        self._warned_unposed: set[tuple[str, int]] = set()   # (SKU, version) said once to have no posed crops
        if path:
            try:
                self.store = open_station_store(path, self.station_id, outbox)
            except StoreError as error:
                log.error(f"store '{path}' is unusable: no galleries, verdicts will not be logged: {error}")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def gallery(self, sku: str) -> SkuGallery | None:
        """The SKU's active gallery, None without one (or when the store cannot give it)."""
        if self.store is None or not sku:
            return None
        try:
            stored = self.store.gallery(sku)
            gallery = None if stored is None else self._decode(stored)
        except (StoreError, ValueError) as error:
            self.log.error(f"gallery of SKU '{sku}' unreadable: {error}")
            return None
        if gallery is not None and not any(view.posed is not None for view in gallery.views) \
                and (sku, gallery.version) not in self._warned_unposed:
            self._warned_unposed.add((sku, gallery.version))
            self.log.warning(f"gallery v{gallery.version} of SKU '{sku}' has no posed reference crops (enrolled "
                             "before store migration 5): its views get no registered comparison; re-enrol the SKU")
        return gallery

    def _decode(self, stored: GalleryVersion) -> SkuGallery:
        """``stored`` as a gallery, decoded once per version: a version's rows never change (an enrolment or an
        auto-enrolment writes the next one), and its note and nominal tell apart a store re-created under a
        running node that numbers its versions alike."""
        identity = (stored.version, stored.note, stored.nominal_score, len(stored.views))
        cached = self._decoded.get(stored.sku)
        if cached is None or cached[0] != identity:
            cached = (identity, gallery_from_stored(stored))
        self._decoded[stored.sku] = cached
        self._decoded.move_to_end(stored.sku)
        while len(self._decoded) > DECODED_GALLERIES:
            self._decoded.popitem(last=False)
        return cached[1]

    def identification_index(self) -> GalleryIndex | None:
        """Every active gallery's embeddings; None with fewer than two SKUs enrolled."""
        if self.store is None:
            return None
        try:
            active = tuple(sorted(self.store.active_gallery_versions().items()))
            if active != self._index[0]:
                galleries = active_galleries(self.store) if len(active) >= 2 else []
                self._index = (active, GalleryIndex(galleries) if galleries else None)
        except (StoreError, ValueError) as error:
            self.log.error(f"product identification off for this item: galleries unreadable: {error}")
            return None
        return self._index[1]

    def log_inspection(self, record: InspectionRecord) -> None:
        """Commit a verdict to the log (before it is published)."""
        if self.store is None:
            return
        try:
            self.store.log_inspection(record)
        except StoreError as error:
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

    def health(self) -> StoreHealth | None:
        """None without a store; for a fleet, whether the server is reachable, the outbox's backlog and
        whether the station is judging with the galleries it last read."""
        if not isinstance(self.store, FleetStore):
            return None if self.store is None else StoreHealth(True, "station store", {"station_id": self.station_id})
        health = self.store.health()
        values = {"station_id": self.station_id, "server": health.server, "outbox_pending": str(health.outbox_pending),
                  "forwarded": str(health.forwarded), "galleries_cached": str(health.galleries_cached)}
        if health.reachable:
            return StoreHealth(True, "fleet server reachable", values)
        return StoreHealth(False, f"fleet server unreachable: {health.problem}; verdicts kept in the local outbox "
                           f"({health.outbox_pending} to forward), judging with the galleries last read "
                           f"({health.galleries_cached} SKUs)", values)
