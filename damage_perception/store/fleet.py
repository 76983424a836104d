"""A station in a fleet: the store a node opens when ``store_path`` is a PostgreSQL URL.

``FleetStore`` has the interface of ``InspectionStore``. Verdicts are committed to a local SQLite outbox first
(fsynced before ``log_inspection`` returns, as on a lone station) and forwarded to the server by a thread, in
the outbox's order, each in a transaction that also skips whatever the server already has from this outbox
(``origin``/``origin_id`` are unique there): exactly once, whether the server restarted, was unreachable for
hours, or the node was SIGKILLed between the server's commit and anything else. Galleries are read from the
server at each item (so a rollback anywhere counts from every station's next item on); the last version read
of each SKU is kept, and while the server is unreachable the station goes on with those and says so
(``health()``, which the node publishes on /diagnostics). Enrolments, rollbacks and labels need the server:
while it is down they are refused with ``StoreUnavailable``.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from damage_perception.store.database import (
    GalleryVersion,
    InspectionRecord,
    InspectionStore,
    StoredView,
    StoreUnavailable,
    is_server_url,
    redacted,
)

OUTBOX_DIR = "~/.ros/damage_perception"
FORWARD_BATCH = 200


@dataclass
class FleetHealth:
    """What a station knows of its link to the fleet's server."""

    server: str                  # URL without password
    reachable: bool
    problem: str                 # why not, when not
    down_since: float | None     # Unix time the server was first found unreachable
    outbox_pending: int          # verdicts committed here, not yet on the server
    forwarded: int               # verdicts this store forwarded since it opened
    galleries_cached: int        # SKUs whose last-read gallery the station can fall back on
    galleries_read_at: float | None


def default_station_id() -> str:
    """The host name: a station's id when ``station_id`` is not set."""
    return socket.gethostname()


def open_station_store(location: str, station_id: str = "", outbox: str = "") -> InspectionStore | FleetStore:
    """The node's store: a SQLite file, or for a ``postgresql://`` URL a ``FleetStore`` with its outbox at
    ``outbox`` (default ``~/.ros/damage_perception/outbox-<station>.db``)."""
    station = station_id or default_station_id()
    if not is_server_url(location):
        return InspectionStore(os.path.expanduser(location), station_id=station)
    outbox_path = os.path.expanduser(outbox or f"{OUTBOX_DIR}/outbox-{station}.db")
    return FleetStore(location, station, outbox_path)


class FleetStore:
    """A fleet server seen from one station, through a local outbox (see the module docstring)."""

    def __init__(self, url: str, station_id: str, outbox_path: str | Path, retry_seconds: float = 1.0,
                 connect_timeout: int = 3) -> None:
        self.url, self.station_id, self.location = url, station_id, url
        self.retry_seconds, self.connect_timeout = retry_seconds, connect_timeout
        self.outbox = InspectionStore(outbox_path, station_id=station_id)
        self.dialect = "postgresql"
        self._server: InspectionStore | None = None
        self._problem, self._down_since = "not connected yet", None
        self._galleries: dict[str, tuple[int, GalleryVersion]] = {}   # SKU -> (row id, last active version read)
        self._read_at: float | None = None
        self._forwarded_through, self._forwarded = 0, 0
        self._lock = threading.Lock()             # one forwarding round at a time
        self._connect_lock = threading.Lock()
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._connect()
        if self._server is not None:
            self._forward_pending()
        self._thread = threading.Thread(target=self._forward_loop, name="fleet-forwarder", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"FleetStore({redacted(self.url)!r}, station {self.station_id!r})"

    @property
    def uuid(self) -> str:
        return self.outbox.uuid

    # -- the link ------------------------------------------------------------------------------------
    def _connect(self) -> None:
        with self._connect_lock:
            if self._server is not None:
                return
            try:
                self._server = InspectionStore(self.url, station_id=self.station_id,
                                               connect_timeout=self.connect_timeout)
                self._up()
            except StoreUnavailable as error:
                self._down(error)

    def _up(self) -> None:
        self._problem, self._down_since = "", None

    def _down(self, error: Exception) -> None:
        self._problem = str(error)
        self._down_since = self._down_since or time.time()

    def _require_server(self) -> InspectionStore:
        if self._server is None or self._problem:
            raise StoreUnavailable(f"fleet server {redacted(self.url)} unreachable: {self._problem}")
        return self._server

    def _on_server(self, call):
        """``call(server)``; an unreachable server marks the link down and raises StoreUnavailable."""
        server = self._require_server()
        try:
            return call(server)
        except StoreUnavailable as error:
            self._down(error)
            raise

    def health(self) -> FleetHealth:
        return FleetHealth(redacted(self.url), not self._problem, self._problem, self._down_since,
                           self.outbox_pending(), self._forwarded, len(self._galleries), self._read_at)

    def outbox_pending(self) -> int:
        """Verdicts in the outbox the server does not have yet (as far as this station knows)."""
        try:
            newest = self.outbox.inspections(limit=1)
        except StoreUnavailable:
            return -1
        return max(0, newest[0].id - self._forwarded_through) if newest else 0

    # -- forwarding ----------------------------------------------------------------------------------
    def _forward_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.retry_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                break
            if self._server is None:
                self._connect()
            if self._server is not None:
                self._forward_pending()

    def _forward_pending(self) -> None:
        """Send the outbox's verdicts the server lacks, oldest first, in batches; the server's own record of
        what it has from this outbox decides where to start, so nothing is sent twice or skipped."""
        with self._lock:
            try:
                done = self._server.last_forwarded(self.outbox.uuid)
                while batch := self.outbox.inspections_after(done, FORWARD_BATCH):
                    self._forwarded += self._server.forward_inspections(batch, self.outbox.uuid)
                    done = batch[-1].id
                self._forwarded_through = done
                self._up()
            except StoreUnavailable as error:
                self._down(error)

    def flush(self, timeout: float = 10.0) -> bool:
        """Forward now; True when the outbox is empty (for tools and tests: the node never waits on this)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server is None:
                self._connect()
            if self._server is not None:
                self._forward_pending()
                if not self._problem and self.outbox_pending() == 0:
                    return True
            time.sleep(min(self.retry_seconds, 0.2))
        return False

    def close(self) -> None:
        """Stop forwarding (one last round first) and close both stores."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10.0)
        if self._server is not None and not self._problem:
            self._forward_pending()
        if self._server is not None:
            self._server.close()
        self.outbox.close()

    # -- verdicts ------------------------------------------------------------------------------------
    def log_inspection(self, record: InspectionRecord) -> int:
        """Commit a verdict to the outbox (durable once this returns) and wake the forwarder; returns its
        outbox id."""
        logged = self.outbox.log_inspection(record)
        self._wake.set()
        return logged

    def inspections(self, sku: str | None = None, limit: int = 1000, station: str | None = None):
        return self._on_server(lambda server: server.inspections(sku, limit, station))

    def was_inspected(self, item_id: str) -> bool:
        return self._on_server(lambda server: server.was_inspected(item_id))

    def add_label(self, item_id: str, damaged: bool, damage_type: str = "", labeller: str = "") -> int:
        self._forward_pending_if_up()  # the item's verdict may still sit in the outbox: link the label to it
        return self._on_server(lambda server: server.add_label(item_id, damaged, damage_type, labeller))

    def _forward_pending_if_up(self) -> None:
        if self._server is not None and not self._problem:
            self._forward_pending()

    # -- galleries -----------------------------------------------------------------------------------
    def gallery(self, sku: str, version: int | None = None) -> GalleryVersion | None:
        """The SKU's active gallery from the server (its views fetched only when the version changed); while
        the server is unreachable, the version last read. A given ``version`` needs the server."""
        if version is not None:
            return self._on_server(lambda server: server.gallery(sku, version))
        cached = self._galleries.get(sku)
        try:
            row_id, fresh = self._on_server(
                lambda server: server.gallery_if_changed(sku, None, cached[0] if cached else None))
        except StoreUnavailable:
            return cached[1] if cached else None
        self._read_at = time.time()
        if row_id is None:   # no active version on the server (any more)
            self._galleries.pop(sku, None)
            return None
        if fresh is not None:
            self._galleries[sku] = (row_id, fresh)
        return self._galleries[sku][1]

    def active_gallery_versions(self) -> dict[str, int]:
        """SKU -> active version on the server; while it is unreachable, the versions last read."""
        try:
            return self._on_server(lambda server: server.active_gallery_versions())
        except StoreUnavailable:
            return {sku: gallery.version for sku, (_, gallery) in self._galleries.items()}

    def skus_with_gallery(self) -> list[str]:
        return sorted(self.active_gallery_versions())

    def gallery_versions(self, sku: str) -> list[tuple[int, bool, int]]:
        return self._on_server(lambda server: server.gallery_versions(sku))

    def enrol(self, sku: str, views: list[StoredView], note: str = "", nominal_score: float | None = None,
              shape_points=None, registered_nominal: dict[str, float] | None = None) -> int:
        return self._on_server(lambda server: server.enrol(sku, views, note, nominal_score, shape_points,
                                                           registered_nominal))

    def activate(self, sku: str, version: int) -> None:
        self._on_server(lambda server: server.activate(sku, version))

    def labelled_scores(self, model_version: str | None = None, station: str | None = None):
        return self._on_server(lambda server: server.labelled_scores(model_version, station))

    def integrity_ok(self) -> bool:
        return self.outbox.integrity_ok() and self._on_server(lambda server: server.integrity_ok())
