import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from damage_perception.store.schema import MIGRATIONS
from damage_perception.store.sqlite_store import InspectionRecord, InspectionStore, StoredView, StoreError

WRITER = Path(__file__).with_name("store_writer_process.py")


@pytest.fixture
def store(tmp_path):
    opened = InspectionStore(tmp_path / "station.db")
    yield opened
    opened.close()


def views(count, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return [StoredView(rng.normal(size=dim).astype(np.float32), wrist_angle=0.5 * i, source="test")
            for i in range(count)]


def test_new_file_is_migrated_and_reopening_is_idempotent(tmp_path):
    first = InspectionStore(tmp_path / "a.db")
    assert first.schema_version == len(MIGRATIONS)
    first.log_inspection(InspectionRecord("i", "s", 0, 0.1, 0.5))
    first.close()
    again = InspectionStore(tmp_path / "a.db")
    assert again.schema_version == len(MIGRATIONS) and len(again.inspections()) == 1
    assert again._read("PRAGMA journal_mode")[0][0] == "wal"


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


def run_writer_and_kill(path: Path, mode: str, after_lines: int) -> list[int]:
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


def test_sigkill_while_logging_loses_no_committed_record(tmp_path):
    path = tmp_path / "log.db"
    committed = run_writer_and_kill(path, "log", after_lines=300)
    store = InspectionStore(path)
    assert store.integrity_ok()
    logged = {record.id for record in store.inspections(limit=10_000_000)}
    assert set(committed) <= logged
    store.log_inspection(InspectionRecord("after", "s", 0, 0.0, 0.5))  # still writable


def test_sigkill_while_enrolling_leaves_only_whole_gallery_versions(tmp_path):
    path = tmp_path / "gallery.db"
    committed = run_writer_and_kill(path, "enrol", after_lines=5)
    store = InspectionStore(path)
    assert store.integrity_ok()
    versions = store.gallery_versions("sku-big")
    assert {v for v, _, _ in versions} >= set(committed)
    for version, _, num_views in versions:
        assert len(store.gallery("sku-big", version).views) == num_views == 200
    assert sum(active for _, active, _ in versions) == 1


def test_repeated_sigkill_while_enrolling_galleries_leaves_every_version_whole_and_readable(tmp_path):
    from damage_perception.store.galleries import load_gallery, save_gallery
    from test.store.store_writer_process import GALLERY_SKUS, seeded_gallery

    path = tmp_path / "galleries.db"
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
