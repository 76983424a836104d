"""What a person needs to judge an inspected item, kept in the store for the review station.

Every REVIEW and DIVERT item (and a sample of PASS items, ``keep_pass_fraction``, so that missed damage can
be found too) keeps per view its colour crop and heat-map overlay (JPEG), item mask and raw heat map (8-bit
PNG) and scores, and per item its fused per-type scores. The kept media are bounded by ``retention_days``
and ``retention_mib``: the oldest items go first (their verdicts and labels stay in the log). Each gallery
version keeps the enrolment crop of its reference views, shown next to the item's views.

The queue is the kept inspections that nobody labelled (``InspectionStore.add_label``, the function behind
``~/report_label``) or marked "can't tell" (``skip``). SQL here is portable (named parameters, no
SQLite-only syntax) and runs through ``_query`` / ``_transaction`` only; the store's migration 4
(``store/schema.py``) makes the tables; the queue filters by ``inspections.station_id`` (migration 3).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import cv2
import numpy as np
from sqlalchemy import text

from damage_perception.core.verdict import Decision
from damage_perception.store.database import InspectionRecord, InspectionStore, StoreError

JPEG_QUALITY = 90
MIB = 1024 * 1024
IMAGE_KINDS = ("crop", "overlay", "mask", "heatmap")   # the kept_views columns an image can be read from
T = TypeVar("T")


@dataclass(frozen=True)
class ReviewConfig:
    """Parameters ``review.*`` of the node: what is kept for the review station, and for how long."""

    keep_pass_fraction: float = 0.01   # share of PASS items kept too (chosen by a hash of the item id)
    retention_days: float = 30.0       # kept media older than this go (0: no age bound)
    retention_mib: float = 2048.0      # at most this much kept media, the oldest go first (0: no size bound)


@dataclass
class ViewMedia:
    """One view as kept: encoded images (None where the view had none) and its scores."""

    index: int
    wrist_angle: float
    found: bool
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    crop: bytes | None = None       # JPEG, RGB item crop
    overlay: bytes | None = None    # JPEG, the crop with the damage heat map blended in
    mask: bytes | None = None       # PNG, item mask (0/255)
    heatmap: bytes | None = None    # PNG, damage heat in [0, 1] as 0..255

    @property
    def num_bytes(self) -> int:
        return sum(len(blob) for blob in (self.crop, self.overlay, self.mask, self.heatmap) if blob)


@dataclass
class KeptItem:
    """A kept inspection with what the review station shows of it."""

    record: InspectionRecord
    kept_because: str
    type_scores: dict[str, float]
    station: str
    labelled: bool
    skipped: bool
    views: list[ViewMedia]

    @property
    def decision_name(self) -> str:
        return decision_name(self.record.decision)


@dataclass
class ReferenceMedia:
    """One reference view of a gallery version, with its enrolment crop when the store has one."""

    index: int
    wrist_angle: float | None
    has_crop: bool


def decision_name(decision: int) -> str:
    """PASS, DIVERT, REVIEW, ERROR (or the number)."""
    try:
        return Decision(int(decision)).name
    except ValueError:
        return str(decision)


def pass_sampled(item_id: str, fraction: float) -> bool:
    """Whether a PASS item is in the kept sample: a hash of its id below ``fraction`` (reproducible)."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def keep_reason(decision: int, item_id: str, config: ReviewConfig) -> str:
    """Why an item's media are kept ("REVIEW", "DIVERT", "PASS sample"), or "" when they are not."""
    if decision in (Decision.REVIEW, Decision.DIVERT):
        return Decision(decision).name
    if decision == Decision.PASS and pass_sampled(item_id, config.keep_pass_fraction):
        return "PASS sample"
    return ""


def encode_image(image: np.ndarray | None, ext: str) -> bytes | None:
    """``image`` (H, W, 3) RGB or (H, W) uint8 as ``.jpg`` or ``.png`` bytes; None for None."""
    if image is None:
        return None
    image = np.asarray(image, np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == ".jpg" else []
    ok, encoded = cv2.imencode(ext, image[:, :, ::-1] if image.ndim == 3 else image, params)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as {ext}")
    return encoded.tobytes()


def view_media(index: int, wrist_angle: float, found: bool, reason: str, scores: dict[str, float],
               crop: np.ndarray | None = None, overlay: np.ndarray | None = None, mask: np.ndarray | None = None,
               heatmap: np.ndarray | None = None) -> ViewMedia:
    """A view's media from arrays: crop and overlay (S, S, 3) RGB, mask (S, S) bool, heat map (h, w) in [0, 1]."""
    heat = None if heatmap is None else np.round(np.clip(np.nan_to_num(heatmap), 0, 1) * 255).astype(np.uint8)
    return ViewMedia(int(index), float(wrist_angle), bool(found), reason,
                     {name: float(value) for name, value in scores.items()},
                     encode_image(crop, ".jpg"), encode_image(overlay, ".jpg"),
                     None if mask is None else encode_image(np.asarray(mask, bool).astype(np.uint8) * 255, ".png"),
                     encode_image(heat, ".png"))


def _json_floats(values: dict[str, float]) -> str:
    """JSON of a score dict, non-finite values as null (JSON has no NaN)."""
    return json.dumps({k: (float(v) if np.isfinite(v) else None) for k, v in values.items()})


# -- the store's connection ------------------------------------------------------------------------
# Every query here uses named parameters (``:name``) and portable SQL; these two functions are the only
# ones that know how the store runs a statement (SQLAlchemy, on SQLite or PostgreSQL alike).
Execute = Callable[..., list]


def _rows(result) -> list[tuple]:
    """A result's rows as tuples, PostgreSQL's ``memoryview`` blobs as ``bytes`` (statements without rows: [])."""
    if not result.returns_rows:
        return []
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in result]


def _query(store: InspectionStore, sql: str, **params) -> list[tuple]:
    """Rows of one read-only statement (named ``:name`` parameters)."""
    with store._transaction() as connection:
        return _rows(connection.execute(text(sql), params))


def _transaction(store: InspectionStore, work: Callable[[Execute], T]) -> T:
    """Run ``work(execute)`` in one write transaction of the store (either backend)."""
    with store._transaction(write=True) as connection:
        return work(lambda sql, **params: _rows(connection.execute(text(sql), params)))


def latest_inspection_id(store: InspectionStore, item_id: str) -> int | None:
    """Id of the item's latest logged inspection, or None."""
    rows = _query(store, "SELECT MAX(id) FROM inspections WHERE item_id = :item", item=item_id)
    return rows[0][0] if rows else None


def keep_item(store: InspectionStore, inspection_id: int, kept_because: str, type_scores: dict[str, float],
              views: list[ViewMedia], config: ReviewConfig, now: float | None = None) -> int:
    """Keep one inspection's media (replacing what was kept of it), then apply the retention bounds;
    returns the bytes kept. StoreError when the inspection is not in the log."""
    now = time.time() if now is None else now
    inspection_id = int(inspection_id)
    size = sum(view.num_bytes for view in views)

    def work(execute: Execute) -> None:
        if not execute("SELECT 1 FROM inspections WHERE id = :i", i=inspection_id):
            raise StoreError(f"no logged inspection {inspection_id}")
        _forget(execute, inspection_id)
        execute("INSERT INTO kept_items (inspection_id, kept_because, type_scores, num_bytes, created_at) "
                "VALUES (:i, :because, :types, :size, :now)", i=inspection_id, because=kept_because,
                types=_json_floats(type_scores), size=size, now=now)
        for v in views:
            execute("INSERT INTO kept_views (inspection_id, view_index, wrist_angle, found, reason, scores, crop, "
                    "mask, heatmap, overlay) VALUES (:i, :k, :angle, :found, :reason, :scores, :crop, :mask, "
                    ":heat, :overlay)", i=inspection_id, k=v.index, angle=v.wrist_angle, found=int(v.found),
                    reason=v.reason, scores=_json_floats(v.scores), crop=v.crop, mask=v.mask, heat=v.heatmap,
                    overlay=v.overlay)
    _transaction(store, work)
    prune(store, config, now)
    return size


def _forget(execute: Execute, inspection_id: int) -> None:
    """Drop what is kept of one inspection (its verdict and labels stay)."""
    execute("DELETE FROM kept_views WHERE inspection_id = :i", i=inspection_id)
    execute("DELETE FROM kept_items WHERE inspection_id = :i", i=inspection_id)


def prune(store: InspectionStore, config: ReviewConfig, now: float | None = None) -> int:
    """Drop kept media past ``retention_days`` and, oldest first, beyond ``retention_mib``; how many items went."""
    now = time.time() if now is None else now

    def work(execute: Execute) -> int:
        doomed: set[int] = set()
        if config.retention_days > 0:
            cutoff = now - config.retention_days * 86400.0
            doomed |= {row[0] for row in execute("SELECT inspection_id FROM kept_items WHERE created_at < :t",
                                                 t=cutoff)}
        if config.retention_mib > 0:
            limit, total = config.retention_mib * MIB, 0
            for inspection_id, size in execute("SELECT inspection_id, num_bytes FROM kept_items "
                                               "ORDER BY created_at DESC, inspection_id DESC"):
                total += size   # newest first: keep while the total fits
                if total > limit:
                    doomed.add(inspection_id)
        for inspection_id in doomed:
            _forget(execute, inspection_id)
        return len(doomed)
    return _transaction(store, work)


def keep_reference_crops(store: InspectionStore, sku: str, version: int, angles: list[float],
                         crops: list[np.ndarray]) -> None:
    """Keep the enrolment crop (S, S, 3) RGB of each reference view of a gallery version, in view order."""
    if len(angles) != len(crops):
        raise StoreError(f"{len(angles)} angles for {len(crops)} reference crops")
    blobs = [encode_image(crop, ".jpg") for crop in crops]

    def work(execute: Execute) -> None:
        rows = execute("SELECT id FROM gallery_versions WHERE sku = :sku AND version = :v", sku=sku, v=int(version))
        if not rows:
            raise StoreError(f"SKU {sku!r} has no gallery version {version}")
        gallery_id = rows[0][0]
        execute("DELETE FROM reference_media WHERE gallery_id = :g", g=gallery_id)
        for k, (angle, blob) in enumerate(zip(angles, blobs)):
            execute("INSERT INTO reference_media (gallery_id, view_index, wrist_angle, crop) "
                    "VALUES (:g, :k, :angle, :crop)", g=gallery_id, k=k, angle=float(angle), crop=blob)
    _transaction(store, work)


def skip(store: InspectionStore, inspection_id: int, labeller: str = "") -> None:
    """Mark a kept inspection "can't tell": out of the queue, no label (calibration never sees it)."""
    inspection_id = int(inspection_id)

    def work(execute: Execute) -> None:
        if not execute("SELECT 1 FROM kept_items WHERE inspection_id = :i", i=inspection_id):
            raise StoreError(f"no kept inspection {inspection_id}")
        execute("DELETE FROM review_skips WHERE inspection_id = :i", i=inspection_id)
        execute("INSERT INTO review_skips (inspection_id, labeller, created_at) VALUES (:i, :who, :now)",
                i=inspection_id, who=labeller, now=time.time())
    _transaction(store, work)


# -- reading -------------------------------------------------------------------------------------------
def has_station_column(store: InspectionStore) -> bool:
    """Whether the inspection log records the station (``inspections.station_id``, a fleet store)."""
    try:
        _query(store, "SELECT station_id FROM inspections WHERE 1 = 0")
        return True
    except Exception:  # noqa: BLE001 - each backend raises its own "no such column"
        return False


_RECORD_COLUMNS = ("i.id, i.item_id, i.sku, i.decision, i.fused_score, i.threshold, i.model_version, "
                   "i.gallery_version, i.reason, i.view_scores, i.created_at")
_STATE_COLUMNS = ("k.kept_because, k.type_scores, "
                  "EXISTS (SELECT 1 FROM labels l WHERE l.inspection_id = i.id), "
                  "EXISTS (SELECT 1 FROM review_skips s WHERE s.inspection_id = i.id)")


def _record(row) -> InspectionRecord:
    row_id, item, sku, decision, score, threshold, model, gallery, reason, views, created = row
    return InspectionRecord(item, sku, decision, score, threshold, model, gallery, reason,
                            tuple(json.loads(views)), created, row_id)


def _scores(text: str) -> dict[str, float]:
    return {k: (float("nan") if v is None else float(v)) for k, v in json.loads(text).items()}


def _station_column(store: InspectionStore) -> str:
    return "i.station_id" if has_station_column(store) else "''"


def review_queue(store: InspectionStore, sku: str = "", decision: int | None = None, station: str = "",
                 limit: int = 200) -> list[KeptItem]:
    """Kept inspections waiting for a label, newest first (without their views), optionally filtered."""
    station_column = _station_column(store)
    where = ["NOT EXISTS (SELECT 1 FROM labels l WHERE l.inspection_id = i.id)",
             "NOT EXISTS (SELECT 1 FROM review_skips s WHERE s.inspection_id = i.id)"]
    params: dict = {"limit": int(limit)}
    if sku:
        where.append("i.sku = :sku")
        params["sku"] = sku
    if decision is not None:
        where.append("i.decision = :decision")
        params["decision"] = int(decision)
    if station and station_column != "''":
        where.append(f"{station_column} = :station")
        params["station"] = station
    elif station:
        return []   # no station recorded: no item is of a named station
    rows = _query(store, f"SELECT {_RECORD_COLUMNS}, {_STATE_COLUMNS}, {station_column} FROM kept_items k "
                  f"JOIN inspections i ON i.id = k.inspection_id WHERE {' AND '.join(where)} "
                  "ORDER BY i.created_at DESC, i.id DESC LIMIT :limit", **params)
    return [KeptItem(_record(row[:11]), row[11], _scores(row[12]), row[15] or "", bool(row[13]), bool(row[14]), [])
            for row in rows]


def queue_facets(store: InspectionStore) -> dict[str, list[str]]:
    """The SKUs and stations that kept items have (for the queue's filters)."""
    station_column = _station_column(store)
    skus = [s for (s,) in _query(store, "SELECT DISTINCT i.sku FROM kept_items k JOIN inspections i ON "
                                      "i.id = k.inspection_id ORDER BY i.sku")]
    stations = [s for (s,) in _query(store, f"SELECT DISTINCT {station_column} FROM kept_items k JOIN inspections i "
                                          "ON i.id = k.inspection_id ORDER BY 1") if s]
    return {"skus": skus, "stations": stations}


def kept_item(store: InspectionStore, inspection_id: int) -> KeptItem | None:
    """A kept inspection with its views' media, or None when nothing is kept of it."""
    rows = _query(store, f"SELECT {_RECORD_COLUMNS}, {_STATE_COLUMNS}, {_station_column(store)} FROM kept_items k "
                  "JOIN inspections i ON i.id = k.inspection_id WHERE i.id = :i", i=int(inspection_id))
    if not rows:
        return None
    row = rows[0]
    views = [ViewMedia(index, angle, bool(found), reason, _scores(scores), crop, overlay, mask, heat)
             for index, angle, found, reason, scores, crop, overlay, mask, heat in _query(store,
                 "SELECT view_index, wrist_angle, found, reason, scores, crop, overlay, mask, heatmap FROM kept_views "
                 "WHERE inspection_id = :i ORDER BY view_index", i=int(inspection_id))]
    return KeptItem(_record(row[:11]), row[11], _scores(row[12]), row[15] or "", bool(row[13]), bool(row[14]), views)


def view_image(store: InspectionStore, inspection_id: int, view_index: int, kind: str) -> bytes | None:
    """One kept image (``kind`` in IMAGE_KINDS) or None."""
    if kind not in IMAGE_KINDS:
        raise StoreError(f"unknown image kind {kind!r}: one of {', '.join(IMAGE_KINDS)}")
    rows = _query(store, f"SELECT {kind} FROM kept_views WHERE inspection_id = :i AND view_index = :k",
                  i=int(inspection_id), k=int(view_index))
    return rows[0][0] if rows and rows[0][0] is not None else None


def reference_media(store: InspectionStore, sku: str, version: int) -> list[ReferenceMedia]:
    """The reference views of a gallery version (angle, whether the enrolment crop is kept), in view order."""
    angles = [angle for (angle,) in _query(store,
        "SELECT r.wrist_angle FROM reference_views r JOIN gallery_versions g ON g.id = r.gallery_id "
        "WHERE g.sku = :sku AND g.version = :v ORDER BY r.id", sku=sku, v=int(version))]
    kept = {index for (index,) in _query(store,
        "SELECT m.view_index FROM reference_media m JOIN gallery_versions g ON g.id = m.gallery_id "
        "WHERE g.sku = :sku AND g.version = :v", sku=sku, v=int(version))}
    return [ReferenceMedia(k, angle, k in kept) for k, angle in enumerate(angles)]


def reference_image(store: InspectionStore, sku: str, version: int, view_index: int) -> bytes | None:
    """The enrolment crop (JPEG) of one reference view, or None."""
    rows = _query(store, "SELECT m.crop FROM reference_media m JOIN gallery_versions g ON g.id = m.gallery_id "
                  "WHERE g.sku = :sku AND g.version = :v AND m.view_index = :k", sku=sku, v=int(version),
                  k=int(view_index))
    return rows[0][0] if rows else None


def nearest_reference(references: list[ReferenceMedia], wrist_angle: float) -> ReferenceMedia | None:
    """The reference view nearest in wrist angle (the gallery compares a view with those nearest first)."""
    known = [r for r in references if r.wrist_angle is not None]
    if not known:
        return None
    return min(known, key=lambda r: abs(np.angle(np.exp(1j * (r.wrist_angle - wrist_angle)))))


def parse_gallery_version(text: str) -> tuple[str, int] | None:
    """("SKU", version) of an inspection's ``gallery_version`` ("SKU@v3"), or None."""
    sku, sep, version = text.rpartition("@v")
    return (sku, int(version)) if sep and version.isdigit() else None


@dataclass
class LabelRow:
    """A person's judgement of an inspection, for the labels page and the export."""

    label_id: int | None
    inspection_id: int | None
    item_id: str
    sku: str
    decision: str
    fused_score: float | None
    model_version: str
    judgement: str          # "damaged", "not damaged" or "can't tell"
    damage_type: str
    labeller: str
    created_at: float


def label_rows(store: InspectionStore, limit: int = 10000) -> list[LabelRow]:
    """Labels (with the inspection they judge) and "can't tell" marks, newest first."""
    labels = [LabelRow(lid, iid, item, sku or "", decision_name(d) if d is not None else "", score, model or "",
                       "damaged" if damaged else "not damaged", dtype, who, created)
              for lid, iid, item, sku, d, score, model, damaged, dtype, who, created in _query(store,
                  "SELECT l.id, l.inspection_id, l.item_id, i.sku, i.decision, i.fused_score, i.model_version, "
                  "l.damaged, l.damage_type, l.labeller, l.created_at FROM labels l "
                  "LEFT JOIN inspections i ON i.id = l.inspection_id ORDER BY l.id DESC LIMIT :limit",
                  limit=int(limit))]
    skips = [LabelRow(None, iid, item, sku, decision_name(d), score, model, "can't tell", "", who, created)
             for iid, item, sku, d, score, model, who, created in _query(store,
                 "SELECT s.inspection_id, i.item_id, i.sku, i.decision, i.fused_score, i.model_version, s.labeller, "
                 "s.created_at FROM review_skips s JOIN inspections i ON i.id = s.inspection_id "
                 "ORDER BY s.created_at DESC LIMIT :limit", limit=int(limit))]
    return sorted(labels + skips, key=lambda row: -row.created_at)[:limit]


def kept_bytes(store: InspectionStore) -> tuple[int, int]:
    """(kept items, bytes of their media)."""
    count, total = _query(store, "SELECT COUNT(*), COALESCE(SUM(num_bytes), 0) FROM kept_items")[0]
    return int(count), int(total)
