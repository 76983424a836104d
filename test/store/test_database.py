"""The store's behaviour, the same tests on both backends (a SQLite file and a throw-away PostgreSQL server)."""
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from damage_perception.store.database import (
    InspectionRecord,
    InspectionStore,
    StoredView,
    StoreError,
    StoreUnavailable,
)
from damage_perception.store.schema import MIGRATIONS

WRITER = Path(__file__).with_name("store_writer_process.py")


@pytest.fixture
def store(store_location):
    opened = InspectionStore(store_location, station_id="station-1")
    yield opened
    opened.close()


def views(count, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return [StoredView(rng.normal(size=dim).astype(np.float32), wrist_angle=0.5 * i, source="test")
            for i in range(count)]


def test_new_store_is_migrated_and_reopening_is_idempotent(store_location):
    first = InspectionStore(store_location)
    assert first.schema_version == len(MIGRATIONS)
    first.log_inspection(InspectionRecord("i", "s", 0, 0.1, 0.5))
    identity = first.uuid
    first.close()
    again = InspectionStore(store_location)
    assert again.schema_version == len(MIGRATIONS) and len(again.inspections()) == 1
    assert again.uuid == identity
    if again.dialect == "sqlite":
        assert again._read("PRAGMA journal_mode")[0][0] == "wal"
    again.close()


def test_a_file_of_the_previous_schema_is_migrated_keeping_its_records(tmp_path):
    import sqlite3

    from damage_perception.store.schema import render

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a station file as the store wrote it before the fleet migration
        for number in (1, 2):
            for statement in render(MIGRATIONS[number - 1], "sqlite"):
                db.execute(statement)
        db.execute("INSERT INTO inspections (item_id, sku, decision, created_at) VALUES ('old', 's', 0, 1.0)")
        db.execute("PRAGMA user_version = 2")
    store = InspectionStore(path, station_id="s7")
    assert store.schema_version == len(MIGRATIONS) and store.uuid
    assert [(r.item_id, r.station_id) for r in store.inspections()] == [("old", "")]
    store.log_inspection(InspectionRecord("new", "s", 0, 0.1, 0.5))
    assert store.inspections()[0].station_id == "s7"
    store.close()


def test_enrol_makes_new_active_versions_and_rollback_keeps_history(store):
    assert store.enrol("sku-1", views(3, seed=1), note="first packaging") == 1
    assert store.enrol("sku-1", views(5, seed=2), note="new packaging") == 2
    active = store.gallery("sku-1")
    assert (active.version, len(active.views), active.note) == (2, 5, "new packaging")
    store.activate("sku-1", 1)
    assert store.gallery("sku-1").version == 1
    np.testing.assert_array_equal(store.gallery("sku-1").views[0].features, views(3, seed=1)[0].features)
    assert store.gallery_versions("sku-1") == [(1, True, 3), (2, False, 5)]
    assert store.gallery("sku-1", version=2).views[4].wrist_angle == 2.0


def test_unknown_sku_version_and_empty_enrolment_are_clear_errors(store):
    assert store.gallery("nobody") is None
    with pytest.raises(StoreError, match="no gallery version 3"):
        store.activate("nobody", 3)
    with pytest.raises(StoreError, match="no reference views"):
        store.enrol("sku-1", [])


def test_log_and_labels_feed_recalibration(store):
    store.log_inspection(InspectionRecord("a", "s", 1, 0.9, 0.5, "m1", "g1", "dent", (0.2, 0.9)))
    store.log_inspection(InspectionRecord("b", "s", 0, 0.1, 0.5))
    store.log_inspection(InspectionRecord("c", "s", 3, math.nan, math.nan, reason="no item"))
    store.add_label("a", damaged=True, damage_type="crush", labeller="qa")
    store.add_label("b", damaged=False)
    newest = store.inspections()
    assert [r.item_id for r in newest] == ["c", "b", "a"]
    assert newest[0].fused_score is None and newest[2].view_scores == (0.2, 0.9)
    assert store.labelled_scores() == [(0.9, True), (0.1, False)]
    assert {r.station_id for r in newest} == {"station-1"}


def test_every_verdict_names_its_station_and_tools_can_select_one(store):
    store.log_inspection(InspectionRecord("a", "s", 1, 0.9, 0.5, "m1"))
    store.log_inspection(InspectionRecord("b", "s", 0, 0.2, 0.5, "m1", station_id="station-2"))
    store.add_label("a", damaged=True)
    store.add_label("b", damaged=False)
    assert store.stations() == ["station-1", "station-2"]
    assert [r.item_id for r in store.inspections(station="station-2")] == ["b"]
    assert [row[3] for row in store.score_log(station="station-1")] == [0.9]
    assert store.labelled_scores("m1", station="station-2") == [(0.2, False)]
    assert store.labelled_scores("m1") == [(0.9, True), (0.2, False)]


def test_forwarded_verdicts_are_logged_once_in_order_whatever_is_resent(store):
    records = [InspectionRecord(f"item-{k}", "s", 0, 0.1 * k, 0.5, id=k + 1) for k in range(5)]
    assert store.forward_inspections(records[:3], origin="outbox-a") == 3
    assert store.forward_inspections(records[1:], origin="outbox-a") == 2   # 2 and 3 again: skipped
    assert store.forward_inspections(records[:1], origin="outbox-b") == 1   # another station's own id 1
    assert store.last_forwarded("outbox-a") == 5 and store.last_forwarded("nobody") == 0
    oldest_first = [r.item_id for r in reversed(store.inspections())]
    assert oldest_first == ["item-0", "item-1", "item-2", "item-3", "item-4", "item-0"]


def test_concurrent_enrolments_of_one_sku_get_consecutive_versions(store_location):
    stores = [InspectionStore(store_location) for _ in range(4)]
    versions, errors = [], []

    def enrol_many(store, seed):
        try:
            for k in range(5):
                versions.append(store.enrol("sku-1", views(3, seed=seed * 10 + k)))
                if k == 2:
                    store.activate("sku-1", 1)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=enrol_many, args=(store, seed)) for seed, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(versions) == list(range(1, 21))
    history = stores[0].gallery_versions("sku-1")
    assert [v for v, _, _ in history] == list(range(1, 21)) and sum(a for _, a, _ in history) == 1
    assert stores[0].integrity_ok()
    for store in stores:
        store.close()


def test_an_unreachable_store_is_a_clear_store_error(tmp_path):
    with pytest.raises(StoreUnavailable, match="unusable"):
        InspectionStore("postgresql://nobody@/nodb?host=" + str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable):
        InspectionStore(blocker / "station.db")


def run_writer_and_kill(path: str, mode: str, after_lines: int) -> list[int]:
    """Start a writer process, SIGKILL it after it reported ``after_lines`` commits; return the ids."""
    process = subprocess.Popen([sys.executable, str(WRITER), str(path), mode], stdout=subprocess.PIPE,
                               text=True)
    committed = []
    deadline = time.monotonic() + 60
    while len(committed) < after_lines and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        committed.append(int(line))
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed += [int(line) for line in process.stdout.read().split()]  # printed just before the kill
    assert len(committed) >= after_lines, "the writer did not start"
    return committed


def test_sigkill_while_logging_loses_no_committed_record(store_location):
    path = store_location
    committed = run_writer_and_kill(path, "log", after_lines=300)
    store = InspectionStore(path)
    assert store.integrity_ok()
    logged = {record.id for record in store.inspections(limit=10_000_000)}
    assert set(committed) <= logged
    store.log_inspection(InspectionRecord("after", "s", 0, 0.0, 0.5))  # still writable


def test_sigkill_while_enrolling_leaves_only_whole_gallery_versions(store_location):
    path = store_location
    committed = run_writer_and_kill(path, "enrol", after_lines=5)
    store = InspectionStore(path)
    assert store.integrity_ok()
    versions = store.gallery_versions("sku-big")
    assert {v for v, _, _ in versions} >= set(committed)
    for version, _, num_views in versions:
        assert len(store.gallery("sku-big", version).views) == num_views == 200
    assert sum(active for _, active, _ in versions) == 1


def test_repeated_sigkill_while_enrolling_galleries_leaves_every_version_whole_and_readable(store_location):
    from damage_perception.store.galleries import load_gallery, save_gallery
    from test.store.store_writer_process import GALLERY_SKUS, seeded_gallery

    path = store_location
    reported = []  # (sku, version, seed) the writer was told were committed
    for after_lines in (4, 9, 15):  # kill, restart on the same file, kill again
        process = subprocess.Popen([sys.executable, str(WRITER), str(path), "galleries"], stdout=subprocess.PIPE,
                                   text=True)
        lines, deadline = [], time.monotonic() + 120
        while len(lines) < after_lines and time.monotonic() < deadline and (line := process.stdout.readline()):
            lines.append(line)
        process.send_signal(signal.SIGKILL)
        process.wait()
        lines += process.stdout.read().splitlines()
        assert len(lines) >= after_lines, "the writer did not start"
        reported += [(sku, int(version), int(seed)) for sku, version, seed in (line.split() for line in lines)]

    store = InspectionStore(path)
    assert store.integrity_ok()
    for sku, version, seed in reported:
        assert store.gallery(sku, version).note == f"seed {seed}"
    for sku in GALLERY_SKUS:
        versions = store.gallery_versions(sku)
        assert [v for v, _, _ in versions] == list(range(1, len(versions) + 1))  # no gaps, no half versions
        assert sum(active for _, active, _ in versions) == 1
        for version, _, num_views in versions:  # every committed version, reported before the kill or not
            loaded = load_gallery(store, sku, version)
            expected = seeded_gallery(sku, int(loaded.metadata["note"].split()[1]))
            assert num_views == len(loaded.views) == len(expected.views)
            for ours, theirs in zip(expected.views, loaded.views):
                np.testing.assert_array_equal(ours.patches, theirs.patches)
                assert ours.angle == pytest.approx(theirs.angle)
            np.testing.assert_array_equal(loaded.shape.points, expected.shape.points)
            assert loaded.nominal_score == pytest.approx(expected.nominal_score)
    assert save_gallery(store, seeded_gallery("SKU-A", 1)) == len(store.gallery_versions("SKU-A"))  # writable
