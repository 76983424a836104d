"""SQLite data layer (WAL, one writer per call, every write its own transaction).

Durability: WAL with `synchronous=FULL` means a call that returned has been committed and fsynced, so a
SIGKILL (or power cut) of the process loses no record that a caller was told about, and an interrupted
write leaves nothing half-done behind: a gallery version is visible with all of its views or not at all.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damage_perception.store.schema import MIGRATIONS


@dataclass
class StoredView:
    """One pristine view's features: a vector, or rows of patch features (and where it came from)."""

    features: np.ndarray
    wrist_angle: float | None = None
    source: str = ""


@dataclass
class GalleryVersion:
    """A numbered set of reference views of one SKU."""

    sku: str
    version: int
    active: bool
    note: str
    views: list[StoredView]
    nominal_score: float | None = None
    shape_points: np.ndarray | None = None   # (N, 3) float32


@dataclass
class InspectionRecord:
    """One verdict as logged."""

    item_id: str
    sku: str
    decision: int
    fused_score: float
    threshold: float
    model_version: str = ""
    gallery_version: str = ""
    reason: str = ""
    view_scores: tuple[float, ...] = ()
    created_at: float = 0.0
    id: int | None = None


class StoreError(RuntimeError):
    """A request the store cannot honour (unknown SKU or version, bad input)."""


class InspectionStore:
    """Thread-safe access to one SQLite file; creates and migrates it on open."""

    def __init__(self, path: str | Path, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._db.close()

    # -- schema ------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """How many migrations have run."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Run the migrations this file has not seen yet, each in its own transaction."""
        with self._lock:
            for number, script in enumerate(MIGRATIONS, start=1):
                if self.schema_version >= number:
                    continue
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def _write(self, statements):
        """Run ``statements(cursor)`` in one immediate transaction; returns its result."""
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                result = statements(cursor)
                cursor.execute("COMMIT")
                return result
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def _read(self, query: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    # -- gallery -------------------------------------------------------------------------------------
    def enrol(self, sku: str, views: list[StoredView], note: str = "", nominal_score: float | None = None,
              shape_points: np.ndarray | None = None) -> int:
        """Store ``views`` (and the gallery's nominal score and reference shape) as the SKU's next gallery
        version and make it the active one; returns the version."""
        if not views:
            raise StoreError(f"no reference views to enrol for SKU {sku!r}")

        def statements(cursor) -> int:
            cursor.execute("INSERT OR IGNORE INTO skus (sku, created_at) VALUES (?, ?)", (sku, time.time()))
            latest = cursor.execute("SELECT MAX(version) FROM gallery_versions WHERE sku = ?", (sku,))
            version = (latest.fetchone()[0] or 0) + 1
            cursor.execute("UPDATE gallery_versions SET active = 0 WHERE sku = ?", (sku,))
            shape = None if shape_points is None else np.asarray(shape_points, np.float32).tobytes()
            cursor.execute("INSERT INTO gallery_versions (sku, version, note, num_views, active, created_at, "
                           "nominal_score, shape_points) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                           (sku, version, note, len(views), time.time(), nominal_score, shape))
            gallery_id = cursor.lastrowid
            cursor.executemany(
                "INSERT INTO reference_views (gallery_id, wrist_angle, feature_dim, features, source) "
                "VALUES (?, ?, ?, ?, ?)",
                [(gallery_id, view.wrist_angle, int(np.asarray(view.features).shape[-1]),
                  np.asarray(view.features, dtype=np.float32).tobytes(), view.source) for view in views])
            return version
        return self._write(statements)

    def activate(self, sku: str, version: int) -> None:
        """Make an earlier (or later) gallery version the active one: a rollback that deletes nothing."""
        def statements(cursor) -> None:
            exists = cursor.execute("SELECT 1 FROM gallery_versions WHERE sku = ? AND version = ?",
                                    (sku, version)).fetchone()
            if not exists:
                raise StoreError(f"SKU {sku!r} has no gallery version {version}")
            cursor.execute("UPDATE gallery_versions SET active = (version = ?) WHERE sku = ?", (version, sku))
        self._write(statements)

    def gallery(self, sku: str, version: int | None = None) -> GalleryVersion | None:
        """The active gallery version of ``sku`` (or the given version); None if it has none."""
        condition, args = ("active = 1", (sku,)) if version is None else ("version = ?", (sku, version))
        rows = self._read("SELECT id, version, active, note, nominal_score, shape_points FROM gallery_versions "
                          f"WHERE sku = ? AND {condition}", args)
        if not rows:
            return None
        gallery_id, number, active, note, nominal, shape = rows[0]
        views = [StoredView(_features(blob, dim), angle, source)
                 for angle, dim, blob, source in self._read(
                     "SELECT wrist_angle, feature_dim, features, source FROM reference_views WHERE gallery_id = ? "
                     "ORDER BY id", (gallery_id,))]
        points = None if shape is None else np.frombuffer(shape, dtype=np.float32).reshape(-1, 3).copy()
        return GalleryVersion(sku, number, bool(active), note, views, nominal, points)

    def skus_with_gallery(self) -> list[str]:
        """Every SKU that has an active gallery version, sorted."""
        return [sku for (sku,) in self._read("SELECT DISTINCT sku FROM gallery_versions WHERE active = 1 ORDER BY sku")]

    def active_gallery_versions(self) -> dict[str, int]:
        """SKU -> active gallery version: a cheap fingerprint of what is enrolled."""
        return dict(self._read("SELECT sku, version FROM gallery_versions WHERE active = 1"))

    def gallery_versions(self, sku: str) -> list[tuple[int, bool, int]]:
        """(version, active, number of views) of every version of ``sku``, oldest first."""
        return [(v, bool(a), n) for v, a, n in self._read(
            "SELECT version, active, num_views FROM gallery_versions WHERE sku = ? ORDER BY version", (sku,))]

    # -- inspection log and labels ----------------------------------------------------------------
    def log_inspection(self, record: InspectionRecord) -> int:
        """Append a verdict to the log; returns its id once it is committed."""
        created = record.created_at or time.time()
        return self._write(lambda cursor: cursor.execute(
            "INSERT INTO inspections (item_id, sku, decision, fused_score, threshold, model_version, "
            "gallery_version, reason, view_scores, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.item_id, record.sku, int(record.decision), _finite_or_none(record.fused_score),
             _finite_or_none(record.threshold), record.model_version, record.gallery_version, record.reason,
             json.dumps([float(s) for s in record.view_scores]), created)).lastrowid)

    def inspections(self, sku: str | None = None, limit: int = 1000) -> list[InspectionRecord]:
        """The most recent logged verdicts (of one SKU or all), newest first."""
        where, args = ("WHERE sku = ?", (sku, limit)) if sku else ("", (limit,))
        rows = self._read("SELECT id, item_id, sku, decision, fused_score, threshold, model_version, "
                          "gallery_version, reason, view_scores, created_at FROM inspections "
                          f"{where} ORDER BY id DESC LIMIT ?", args)
        return [InspectionRecord(item, s, decision, score, threshold, model, gallery, reason,
                                 tuple(json.loads(views)), created, row_id)
                for row_id, item, s, decision, score, threshold, model, gallery, reason, views, created in rows]

    def score_log(self) -> list[tuple[str, float, int, float | None]]:
        """(SKU, time, decision, fused score or None) of every logged verdict, oldest first."""
        return self._read("SELECT sku, created_at, decision, fused_score FROM inspections ORDER BY created_at, id")

    def was_inspected(self, item_id: str) -> bool:
        """Whether the log has a verdict for ``item_id``."""
        return bool(self._read("SELECT 1 FROM inspections WHERE item_id = ? LIMIT 1", (item_id,)))

    def add_label(self, item_id: str, damaged: bool, damage_type: str = "", labeller: str = "") -> int:
        """Record a person's judgement of an inspected item (linked to its latest inspection, if logged)."""
        def statements(cursor) -> int:
            row = cursor.execute("SELECT MAX(id) FROM inspections WHERE item_id = ?", (item_id,)).fetchone()
            return cursor.execute(
                "INSERT INTO labels (inspection_id, item_id, damaged, damage_type, labeller, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row[0], item_id, int(damaged), damage_type, labeller, time.time())).lastrowid
        return self._write(statements)

    def labelled_scores(self, model_version: str | None = None) -> list[tuple[float, bool]]:
        """(fused score, damaged) for every labelled inspection (of one model version, if given), for
        recalibrating thresholds; an inspection labelled twice counts once, with its latest label."""
        where, args = ("AND i.model_version = ?", (model_version,)) if model_version is not None else ("", ())
        return [(score, bool(damaged)) for score, damaged in self._read(
            "SELECT i.fused_score, l.damaged FROM labels l JOIN inspections i ON i.id = l.inspection_id "
            "WHERE i.fused_score IS NOT NULL AND l.id = (SELECT MAX(id) FROM labels WHERE inspection_id = "
            f"l.inspection_id) {where} ORDER BY l.id", args)]

    def integrity_ok(self) -> bool:
        """SQLite's own consistency check of the file."""
        return self._read("PRAGMA integrity_check")[0][0] == "ok"


def _features(blob: bytes, dim: int) -> np.ndarray:
    """A stored feature vector, or its rows of ``dim`` patch features."""
    values = np.frombuffer(blob, dtype=np.float32).copy()
    return values if values.size == dim else values.reshape(-1, dim)


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
