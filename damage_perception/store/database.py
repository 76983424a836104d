"""The store: one interface over an embedded SQLite file (a station's default) or a PostgreSQL server (a fleet).

``InspectionStore(location)`` opens ``location``: a file path (SQLite, WAL) or a ``postgresql://user@host/db``
URL (psycopg 3), through SQLAlchemy Core, and runs the migrations it has not seen (``store.schema``).

Durability: every write is its own transaction and a call that returned has been committed (SQLite: WAL with
``synchronous=FULL``, so fsynced; a SIGKILL or power cut loses no record a caller was told about). A gallery
version is written in one transaction with all of its views, so no reader ever sees half an enrolment.
Concurrency: SQLite writes take the file's write lock at once (``BEGIN IMMEDIATE``); on PostgreSQL an
enrolment or a rollback locks its SKU's row, so stations enrolling the same SKU get consecutive versions,
and migrations run under an advisory lock, so stations starting together migrate the server once.
Every database failure (unreachable server, locked or broken file) is raised as ``StoreUnavailable``.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from damage_perception.store.schema import MIGRATIONS, render

SERVER_SCHEMES = ("postgresql", "postgres")
MIGRATION_LOCK = 0x6470_6C73  # PostgreSQL advisory lock key held while migrating ("dpls")
INSPECTION_COLUMNS = ("item_id, sku, decision, fused_score, threshold, model_version, gallery_version, reason, "
                      "view_scores, created_at, station_id")


@dataclass
class StoredView:
    """One pristine view's features: a vector, or rows of patch features (and where it came from)."""

    features: np.ndarray
    wrist_angle: float | None = None
    source: str = ""
    posed: bytes | None = None   # the view's posed crop, encoded (``store.galleries.encode_posed``)


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
    registered_nominal: dict[str, float | str] | None = None   # None: enrolled before it was kept (migration 5)


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
    station_id: str = ""   # empty: the store's own station (``InspectionStore(station_id=...)``)


class StoreError(RuntimeError):
    """A request the store cannot honour (unknown SKU or version, bad input, or the database failed)."""


class StoreUnavailable(StoreError):
    """The database failed: a server unreachable or restarting, a file locked, full or broken."""


def is_server_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL server rather than a SQLite file."""
    return str(location).split(":", 1)[0].split("+", 1)[0] in SERVER_SCHEMES and "://" in str(location)


def redacted(location: str | Path) -> str:
    """``location`` without any password, for messages."""
    return make_url(str(location)).render_as_string(hide_password=True) if is_server_url(location) else str(location)


class InspectionStore:
    """Thread-safe access to one store (SQLite file or PostgreSQL URL); creates and migrates it on open."""

    def __init__(self, location: str | Path, synchronous: str = "FULL", station_id: str = "",
                 connect_timeout: int = 3) -> None:
        self.location, self.station_id = location, station_id
        try:
            self.engine = (_server_engine(str(location), connect_timeout) if is_server_url(location)
                           else _sqlite_engine(Path(location), synchronous))
            self.dialect = self.engine.dialect.name
            self.migrate()
            self.uuid = self._identity()
        except (SQLAlchemyError, OSError) as error:
            message = _short(error) if isinstance(error, SQLAlchemyError) else str(error)
            raise StoreUnavailable(f"store {redacted(location)} unusable: {message}") from error

    def close(self) -> None:
        """Close every connection (SQLite checkpoints its WAL)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"InspectionStore({redacted(self.location)!r})"

    # -- transactions -------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Connection]:
        """One transaction (SQLite: ``BEGIN IMMEDIATE`` when ``write``); database errors as StoreUnavailable."""
        try:
            with self.engine.connect() as connection:
                connection.execution_options(write=write)
                with connection.begin():
                    yield connection
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"store {redacted(self.location)}: {_short(error)}") from error

    def _read(self, query: str, args: dict | None = None) -> list[tuple]:
        with self._transaction() as connection:
            return [tuple(row) for row in connection.execute(text(query), args or {})]

    def _lock_sku(self, connection: Connection, sku: str) -> None:
        """Serialise enrolments and rollbacks of one SKU (SQLite's write lock already serialises all)."""
        connection.execute(text("INSERT INTO skus (sku, created_at) VALUES (:sku, :t) ON CONFLICT (sku) DO NOTHING"),
                           {"sku": sku, "t": time.time()})
        if self.dialect == "postgresql":
            connection.execute(text("SELECT sku FROM skus WHERE sku = :sku FOR UPDATE"), {"sku": sku})

    # -- schema ------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """How many migrations have run."""
        with self._transaction() as connection:
            return _schema_version(connection)

    def migrate(self) -> None:
        """Run the migrations this store has not seen yet (SQLite: one transaction each; PostgreSQL: all in
        one transaction under an advisory lock, so concurrent openers wait and then see them done)."""
        if self.dialect == "postgresql":
            with self.engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                connection.execute(text("CREATE TABLE IF NOT EXISTS store_schema (version INTEGER NOT NULL)"))
                for number in range(_schema_version(connection) + 1, len(MIGRATIONS) + 1):
                    _run_migration(connection, number)
                _ensure_identity(connection)
            return
        for number in range(1, len(MIGRATIONS) + 1):
            with self.engine.connect() as connection:
                connection.execution_options(write=True)
                with connection.begin():
                    if _schema_version(connection) < number:
                        _run_migration(connection, number)
                        if number == len(MIGRATIONS):
                            _ensure_identity(connection)
        with self.engine.connect() as connection:  # a file migrated before identities existed
            connection.execution_options(write=True)
            with connection.begin():
                _ensure_identity(connection)

    def _identity(self) -> str:
        return self._read("SELECT uuid FROM store_identity ORDER BY created_at, uuid LIMIT 1")[0][0]

    # -- gallery -------------------------------------------------------------------------------------
    def enrol(self, sku: str, views: list[StoredView], note: str = "", nominal_score: float | None = None,
              shape_points: np.ndarray | None = None, registered_nominal: dict[str, float | str] | None = None) -> int:
        """Store ``views`` (and the gallery's nominal score, reference shape and registered nominal) as the
        SKU's next gallery version and make it the active one; returns the version."""
        if not views:
            raise StoreError(f"no reference views to enrol for SKU {sku!r}")
        with self._transaction(write=True) as connection:
            self._lock_sku(connection, sku)
            version = _insert_gallery(connection, sku, views, note, nominal_score, shape_points, active=True,
                                      registered_nominal=registered_nominal)
            connection.execute(text("UPDATE gallery_versions SET active = 0 WHERE sku = :sku AND version != :v"),
                               {"sku": sku, "v": version})
            return version

    def activate(self, sku: str, version: int) -> None:
        """Make an earlier (or later) gallery version the active one: a rollback that deletes nothing."""
        with self._transaction(write=True) as connection:
            exists = connection.execute(text("SELECT 1 FROM gallery_versions WHERE sku = :sku AND version = :v"),
                                        {"sku": sku, "v": int(version)}).first()
            if not exists:
                raise StoreError(f"SKU {sku!r} has no gallery version {version}")
            self._lock_sku(connection, sku)
            connection.execute(text("UPDATE gallery_versions SET active = CASE WHEN version = :v THEN 1 ELSE 0 END "
                                    "WHERE sku = :sku"), {"sku": sku, "v": int(version)})

    def gallery(self, sku: str, version: int | None = None) -> GalleryVersion | None:
        """The active gallery version of ``sku`` (or the given version); None if it has none."""
        return self.gallery_if_changed(sku, version, None)[1]

    def gallery_if_changed(self, sku: str, version: int | None, known_id: int | None
                           ) -> tuple[int | None, GalleryVersion | None]:
        """(row id, gallery) of the SKU's active (or given) version, read in one transaction; the gallery is
        None when the SKU has none, or when its row id is ``known_id`` (the caller has it already)."""
        condition, args = (("active = 1", {"sku": sku}) if version is None
                           else ("version = :v", {"sku": sku, "v": int(version)}))
        with self._transaction() as connection:
            row = connection.execute(text(
                "SELECT id, version, active, note, nominal_score, shape_points, registered_nominal "
                "FROM gallery_versions "
                f"WHERE sku = :sku AND {condition} ORDER BY version DESC LIMIT 1"), args).first()
            if row is None or row[0] == known_id:
                return (None if row is None else row[0]), None
            gallery_id, number, active, note, nominal, shape, registered = row
            views = [StoredView(_features(blob, dim), angle, source, None if posed is None else bytes(posed))
                     for angle, dim, blob, source, posed in connection.execute(text(
                         "SELECT wrist_angle, feature_dim, features, source, posed FROM reference_views "
                         "WHERE gallery_id = :g ORDER BY id"), {"g": gallery_id})]
        points = None if shape is None else np.frombuffer(shape, dtype=np.float32).reshape(-1, 3).copy()
        return gallery_id, GalleryVersion(sku, number, bool(active), note, views, nominal, points,
                                          None if registered is None else json.loads(registered))

    def import_versions(self, sku: str, versions: list[GalleryVersion]) -> bool:
        """Copy another store's gallery versions of ``sku`` here with their numbers and active flags, in one
        transaction; False (nothing written) when this store has versions of that SKU already."""
        with self._transaction(write=True) as connection:
            self._lock_sku(connection, sku)
            if connection.execute(text("SELECT 1 FROM gallery_versions WHERE sku = :sku LIMIT 1"),
                                  {"sku": sku}).first():
                return False
            for stored in versions:
                _insert_gallery(connection, sku, stored.views, stored.note, stored.nominal_score,
                                stored.shape_points, stored.active, stored.version, stored.registered_nominal)
            return True

    def enrolled_skus(self) -> list[str]:
        """Every SKU with a gallery version, active or not, sorted."""
        return [sku for (sku,) in self._read("SELECT DISTINCT sku FROM gallery_versions ORDER BY sku")]

    def skus_with_gallery(self) -> list[str]:
        """Every SKU that has an active gallery version, sorted."""
        return [sku for (sku,) in self._read("SELECT DISTINCT sku FROM gallery_versions WHERE active = 1 ORDER BY sku")]

    def active_gallery_versions(self) -> dict[str, int]:
        """SKU -> active gallery version: a cheap fingerprint of what is enrolled."""
        return dict(self._read("SELECT sku, version FROM gallery_versions WHERE active = 1"))

    def gallery_versions(self, sku: str) -> list[tuple[int, bool, int]]:
        """(version, active, number of views) of every version of ``sku``, oldest first."""
        return [(v, bool(a), n) for v, a, n in self._read(
            "SELECT version, active, num_views FROM gallery_versions WHERE sku = :sku ORDER BY version", {"sku": sku})]

    # -- inspection log and labels ----------------------------------------------------------------
    def log_inspection(self, record: InspectionRecord) -> int:
        """Append a verdict to the log; returns its id once it is committed."""
        with self._transaction(write=True) as connection:
            return connection.execute(text(
                f"INSERT INTO inspections ({INSPECTION_COLUMNS}) VALUES (:item_id, :sku, :decision, :fused_score, "
                ":threshold, :model_version, :gallery_version, :reason, :view_scores, :created_at, :station_id) "
                "RETURNING id"), _inspection_row(record, self.station_id)).scalar_one()

    def forward_inspections(self, records: list[InspectionRecord], origin: str) -> int:
        """Log verdicts first committed to another store (``origin``, its uuid; each record's ``id`` is its id
        there) in one transaction, in the order given; a verdict already logged from there is skipped, so
        forwarding again after a crash logs nothing twice. Returns how many were new."""
        rows = [{**_inspection_row(record, self.station_id), "origin": origin, "origin_id": record.id}
                for record in records]
        if not rows:
            return 0
        with self._transaction(write=True) as connection:
            new = 0
            for row in rows:  # one by one: the order of the server's ids follows the station's
                new += connection.execute(text(
                    f"INSERT INTO inspections ({INSPECTION_COLUMNS}, origin, origin_id) VALUES (:item_id, :sku, "
                    ":decision, :fused_score, :threshold, :model_version, :gallery_version, :reason, :view_scores, "
                    ":created_at, :station_id, :origin, :origin_id) ON CONFLICT (origin, origin_id) DO NOTHING"),
                    row).rowcount
            return new

    def last_forwarded(self, origin: str) -> int:
        """The highest id of a verdict logged from store ``origin`` (0 when none)."""
        return int(self._read("SELECT COALESCE(MAX(origin_id), 0) FROM inspections WHERE origin = :o",
                              {"o": origin})[0][0])

    def inspections_after(self, after_id: int, limit: int = 500) -> list[InspectionRecord]:
        """Verdicts with an id above ``after_id``, oldest first (what an outbox still has to forward)."""
        return self._records("WHERE id > :after ORDER BY id LIMIT :limit", {"after": after_id, "limit": limit})

    def inspections(self, sku: str | None = None, limit: int = 1000,
                    station: str | None = None) -> list[InspectionRecord]:
        """The most recent logged verdicts (of one SKU or all, of one station or all), newest first."""
        where, args = _filters(sku=sku, station_id=station)
        return self._records(f"{where} ORDER BY id DESC LIMIT :limit", {**args, "limit": limit})

    def _records(self, clause: str, args: dict) -> list[InspectionRecord]:
        rows = self._read(f"SELECT id, {INSPECTION_COLUMNS} FROM inspections {clause}", args)
        return [InspectionRecord(item, sku, decision, score, threshold, model, gallery, reason,
                                 tuple(json.loads(views)), created, row_id, station)
                for row_id, item, sku, decision, score, threshold, model, gallery, reason, views, created, station
                in rows]

    def stations(self) -> list[str]:
        """Every station that logged a verdict, sorted."""
        return [s for (s,) in self._read("SELECT DISTINCT station_id FROM inspections ORDER BY station_id")]

    def score_log(self, station: str | None = None) -> list[tuple[str, float, int, float | None]]:
        """(SKU, time, decision, fused score or None) of every logged verdict (of one station), oldest first."""
        where, args = _filters(station_id=station)
        return self._read(f"SELECT sku, created_at, decision, fused_score FROM inspections {where} "
                          "ORDER BY created_at, id", args)

    def was_inspected(self, item_id: str) -> bool:
        """Whether the log has a verdict for ``item_id``."""
        return bool(self._read("SELECT 1 FROM inspections WHERE item_id = :i LIMIT 1", {"i": item_id}))

    def add_label(self, item_id: str, damaged: bool, damage_type: str = "", labeller: str = "",
                  origin: str | None = None, origin_id: int | None = None) -> int:
        """Record a person's judgement of an inspected item (linked to its latest inspection, if logged)."""
        with self._transaction(write=True) as connection:
            linked = connection.execute(text("SELECT MAX(id) FROM inspections WHERE item_id = :i"),
                                        {"i": item_id}).scalar()
            return connection.execute(text(
                "INSERT INTO labels (inspection_id, item_id, damaged, damage_type, labeller, created_at, origin, "
                "origin_id) VALUES (:link, :item, :damaged, :type, :labeller, :t, :origin, :origin_id) RETURNING id"),
                {"link": linked, "item": item_id, "damaged": int(damaged), "type": damage_type,
                 "labeller": labeller, "t": time.time(), "origin": origin, "origin_id": origin_id}).scalar_one()

    def import_label(self, origin: str, label_id: int, inspection_origin_id: int | None, item_id: str,
                     damaged: bool, damage_type: str, labeller: str, created_at: float) -> bool:
        """Copy label ``label_id`` of store ``origin`` here, linked to the inspection copied from that store's
        ``inspection_origin_id``; False when it was copied before."""
        with self._transaction(write=True) as connection:
            link = None if inspection_origin_id is None else connection.execute(text(
                "SELECT id FROM inspections WHERE origin = :o AND origin_id = :i"),
                {"o": origin, "i": inspection_origin_id}).scalar()
            return connection.execute(text(
                "INSERT INTO labels (inspection_id, item_id, damaged, damage_type, labeller, created_at, origin, "
                "origin_id) VALUES (:link, :item, :damaged, :type, :labeller, :t, :o, :oid) "
                "ON CONFLICT (origin, origin_id) DO NOTHING"),
                {"link": link, "item": item_id, "damaged": int(damaged), "type": damage_type, "labeller": labeller,
                 "t": created_at, "o": origin, "oid": label_id}).rowcount == 1

    def labelled_scores(self, model_version: str | None = None,
                        station: str | None = None) -> list[tuple[float, bool]]:
        """(fused score, damaged) for every labelled inspection (of one model version, of one station, if
        given), for recalibrating thresholds; an inspection labelled twice counts once, with its latest label."""
        where, args = _filters("i.", model_version=model_version, station_id=station)
        where = where.replace("WHERE", "AND", 1)
        return [(score, bool(damaged)) for score, damaged in self._read(
            "SELECT i.fused_score, l.damaged FROM labels l JOIN inspections i ON i.id = l.inspection_id "
            "WHERE i.fused_score IS NOT NULL AND l.id = (SELECT MAX(id) FROM labels WHERE inspection_id = "
            f"l.inspection_id) {where} ORDER BY l.id", args)]

    def labels(self) -> list[tuple[int, int | None, str, bool, str, str, float]]:
        """(id, inspection id, item, damaged, damage type, labeller, time) of every label, oldest first."""
        return [(i, link, item, bool(d), t, who, at) for i, link, item, d, t, who, at in self._read(
            "SELECT id, inspection_id, item_id, damaged, damage_type, labeller, created_at FROM labels ORDER BY id")]

    def integrity_ok(self) -> bool:
        """The engine's own check (SQLite) and the store's invariants: every gallery version has all of its
        views, and no SKU has more than one active version."""
        if self.dialect == "sqlite" and self._read("PRAGMA integrity_check")[0][0] != "ok":
            return False
        partial = self._read("SELECT COUNT(*) FROM gallery_versions g WHERE num_views != "
                             "(SELECT COUNT(*) FROM reference_views r WHERE r.gallery_id = g.id)")[0][0]
        doubled = self._read("SELECT COUNT(*) FROM (SELECT sku FROM gallery_versions WHERE active = 1 "
                             "GROUP BY sku HAVING COUNT(*) > 1) AS d")[0][0]
        return partial == 0 and doubled == 0


# -- engines ------------------------------------------------------------------------------------------
def _sqlite_engine(path: Path, synchronous: str) -> Engine:
    """A SQLite file in WAL mode; SQLAlchemy's own transaction handling replaced by explicit BEGINs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 10.0})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite would otherwise BEGIN late, on its own terms
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:  # a writer takes the write lock before it reads
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("write") else "BEGIN")

    return engine


def _server_engine(url: str, connect_timeout: int) -> Engine:
    """A PostgreSQL server through psycopg 3; dead connections (a restarted server) are replaced on checkout."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # A server that vanished without closing the socket (a network cut, a host power loss) must fail a call
    # within seconds, not hang an inspection: TCP keepalives, a TCP send timeout and a statement timeout.
    return create_engine(parsed, pool_pre_ping=True, pool_size=4, max_overflow=8, connect_args={
        "connect_timeout": max(2, int(connect_timeout)), "keepalives": 1, "keepalives_idle": 5,
        "keepalives_interval": 2, "keepalives_count": 3, "tcp_user_timeout": 10_000,
        "options": "-c statement_timeout=30000"})


# -- helpers ------------------------------------------------------------------------------------------
def _schema_version(connection: Connection) -> int:
    if connection.dialect.name == "sqlite":
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar())
    return int(connection.execute(text("SELECT COALESCE(MAX(version), 0) FROM store_schema")).scalar())


def _run_migration(connection: Connection, number: int) -> None:
    for statement in render(MIGRATIONS[number - 1], connection.dialect.name):
        connection.exec_driver_sql(statement)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA user_version = {number}")
    else:
        connection.execute(text("INSERT INTO store_schema (version) VALUES (:n)"), {"n": number})


def _ensure_identity(connection: Connection) -> None:
    """Give the store its uuid once (inside the migrating transaction: one uuid however many open it)."""
    if connection.execute(text("SELECT 1 FROM store_identity LIMIT 1")).first() is None:
        connection.execute(text("INSERT INTO store_identity (uuid, created_at) VALUES (:u, :t)"),
                           {"u": str(uuid.uuid4()), "t": time.time()})


def _insert_gallery(connection: Connection, sku: str, views: list[StoredView], note: str,
                    nominal_score: float | None, shape_points: np.ndarray | None, active: bool,
                    version: int | None = None, registered_nominal: dict[str, float | str] | None = None) -> int:
    """Insert one gallery version with its views (the next version unless given); returns the version."""
    if version is None:
        latest = connection.execute(text("SELECT MAX(version) FROM gallery_versions WHERE sku = :sku"),
                                    {"sku": sku}).scalar()
        version = (latest or 0) + 1
    shape = None if shape_points is None else np.asarray(shape_points, np.float32).tobytes()
    gallery_id = connection.execute(text(
        "INSERT INTO gallery_versions (sku, version, note, num_views, active, created_at, nominal_score, "
        "shape_points, registered_nominal) VALUES (:sku, :v, :note, :n, :active, :t, :nominal, :shape, :registered) "
        "RETURNING id"),
        {"sku": sku, "v": version, "note": note, "n": len(views), "active": int(active), "t": time.time(),
         "nominal": None if nominal_score is None else float(nominal_score), "shape": shape,
         "registered": None if registered_nominal is None else json.dumps(
             {name: value if isinstance(value, str) else float(value)   # a string: what measured them
              for name, value in registered_nominal.items()})}).scalar_one()
    connection.execute(text(
        "INSERT INTO reference_views (gallery_id, wrist_angle, feature_dim, features, source, posed) "
        "VALUES (:g, :angle, :dim, :features, :source, :posed)"),
        [{"g": gallery_id, "angle": None if view.wrist_angle is None else float(view.wrist_angle),
          "dim": int(np.asarray(view.features).shape[-1]),
          "features": np.asarray(view.features, dtype=np.float32).tobytes(), "source": view.source,
          "posed": view.posed}
         for view in views])
    return version


def _inspection_row(record: InspectionRecord, station_id: str) -> dict:
    return {"item_id": record.item_id, "sku": record.sku, "decision": int(record.decision),
            "fused_score": _finite_or_none(record.fused_score), "threshold": _finite_or_none(record.threshold),
            "model_version": record.model_version, "gallery_version": record.gallery_version,
            "reason": record.reason, "view_scores": json.dumps([float(s) for s in record.view_scores]),
            "created_at": record.created_at or time.time(), "station_id": record.station_id or station_id}


def _filters(prefix: str = "", **equal) -> tuple[str, dict]:
    """``WHERE a = :a AND ...`` over the arguments that are not None."""
    given = {name: value for name, value in equal.items() if value is not None}
    where = " AND ".join(f"{prefix}{name} = :{name}" for name in given)
    return (f"WHERE {where}" if where else ""), given


def _features(blob: bytes, dim: int) -> np.ndarray:
    """A stored feature vector, or its rows of ``dim`` patch features."""
    values = np.frombuffer(blob, dtype=np.float32).copy()
    return values if values.size == dim else values.reshape(-1, dim)


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _short(error: SQLAlchemyError) -> str:
    """The driver's message, first line, without SQLAlchemy's background link."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
