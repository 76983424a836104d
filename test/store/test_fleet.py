"""A station's FleetStore against a real throw-away PostgreSQL server that is killed and restarted."""
from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from damage_perception.store.database import (
    InspectionRecord,
    InspectionStore,
    StoredView,
    StoreUnavailable,
)
from damage_perception.store.fleet import FleetStore, open_station_store
from damage_perception.store.galleries import load_gallery, save_gallery
from damage_perception.store.throwaway_postgres import ThrowawayPostgres
from test.store.test_database import WRITER
from test.store.test_galleries import NOMINAL, assert_same_crop, posed_gallery


@pytest.fixture
def server():
    """A server of the test's own: these tests kill it."""
    with ThrowawayPostgres() as started:
        yield started


def record(k: int) -> InspectionRecord:
    return InspectionRecord(f"item-{k}", "sku-1", k % 3, 0.01 * k, 0.5, "m1", "sku-1@v1")


def views(seed: int, count: int = 3) -> list[StoredView]:
    rng = np.random.default_rng(seed)
    return [StoredView(rng.normal(size=(5, 8)).astype(np.float32), 0.5 * i) for i in range(count)]


def server_log(url: str, station: str) -> list[str]:
    fleet = InspectionStore(url)
    try:
        return [r.item_id for r in reversed(fleet.inspections(station=station, limit=100_000))]
    finally:
        fleet.close()


def test_a_sqlite_path_opens_a_station_file_and_a_url_a_fleet_store(tmp_path, server):
    local = open_station_store(str(tmp_path / "s.db"), "st-1")
    assert isinstance(local, InspectionStore) and local.station_id == "st-1"
    local.close()
    fleet = open_station_store(server.url, "st-1", str(tmp_path / "outbox.db"))
    assert isinstance(fleet, FleetStore) and fleet.health().reachable
    fleet.close()


def test_verdicts_logged_while_the_server_is_down_arrive_once_in_order_after_it_restarts(tmp_path, server):
    station = FleetStore(server.url, "st-1", tmp_path / "outbox.db", retry_seconds=0.2)
    for k in range(5):
        station.log_inspection(record(k))
    assert station.flush()
    server.kill()
    for k in range(5, 12):   # the station goes on: each verdict is committed to the outbox
        station.log_inspection(record(k))
    with pytest.raises(StoreUnavailable):
        station.inspections()
    health = station.health()
    assert not health.reachable and health.down_since is not None and health.outbox_pending >= 7
    server.start()
    assert station.flush(timeout=30)
    assert server_log(server.url, "st-1") == [f"item-{k}" for k in range(12)]
    assert station.health().reachable and station.health().outbox_pending == 0
    station.close()


def test_galleries_come_from_the_server_and_the_last_read_serves_while_it_is_down(tmp_path, server):
    station = FleetStore(server.url, "st-1", tmp_path / "a.db", retry_seconds=0.2)
    other = FleetStore(server.url, "st-2", tmp_path / "b.db", retry_seconds=0.2)
    other.enrol("sku-1", views(1))
    other.enrol("sku-1", views(2))
    assert station.gallery("sku-1").version == 2
    other.activate("sku-1", 1)   # a rollback at another station counts at this one's next read
    first = station.gallery("sku-1")
    assert first.version == 1
    np.testing.assert_array_equal(first.views[0].features, views(1)[0].features)
    server.kill()
    assert station.gallery("sku-1").version == 1 and station.skus_with_gallery() == ["sku-1"]
    assert station.gallery("sku-2") is None
    with pytest.raises(StoreUnavailable, match="unreachable"):
        station.enrol("sku-1", views(3))
    assert not station.health().reachable and station.health().galleries_cached == 1
    server.start()
    assert station.flush(timeout=30) and other.flush(timeout=30)   # both have seen the server back
    assert station.enrol("sku-1", views(3)) == 3 and other.gallery("sku-1").version == 3
    station.close()
    other.close()


def test_a_gallery_enrolled_at_one_station_reaches_another_with_its_posed_crops(tmp_path, server):
    station = FleetStore(server.url, "st-1", tmp_path / "a.db", retry_seconds=0.2)
    other = FleetStore(server.url, "st-2", tmp_path / "b.db", retry_seconds=0.2)
    enrolled = posed_gallery(seed=3)
    assert save_gallery(other, enrolled) == 1
    read = load_gallery(station, "SKU-C0042")
    server.kill()
    cached = load_gallery(station, "SKU-C0042")   # the version last read serves while the server is down
    for loaded in (read, cached):
        assert loaded.registered_nominal == NOMINAL
        for ours, theirs in zip(enrolled.views, loaded.views):
            assert_same_crop(ours.posed, theirs.posed)
    station.close()
    other.close()


def test_a_label_links_to_a_verdict_still_in_the_outbox(tmp_path, server):
    station = FleetStore(server.url, "st-1", tmp_path / "a.db", retry_seconds=60)  # the forwarder is asleep
    station.log_inspection(record(1))
    station.add_label("item-1", damaged=True)
    assert station.labelled_scores("m1") == [(0.01, True)]
    station.close()


def test_sigkill_of_a_station_and_of_the_server_loses_and_doubles_nothing(tmp_path, server):
    outbox = tmp_path / "outbox.db"
    reported: list[int] = []
    for round_, lines in enumerate((150, 150, 150)):
        process = subprocess.Popen([sys.executable, str(WRITER), server.url, "fleet", str(outbox)],
                                   stdout=subprocess.PIPE, text=True)
        seen = []
        while len(seen) < lines and (line := process.stdout.readline()):
            seen.append(int(line))
            if round_ == 1 and len(seen) == 50:
                server.kill()        # the server crashes while the station logs and forwards
            if round_ == 1 and len(seen) == 100:
                server.start()
        process.send_signal(signal.SIGKILL)
        process.wait()
        seen += [int(line) for line in process.stdout.read().split()]
        assert len(seen) >= lines, "the writer did not start"
        reported += seen
    station = FleetStore(server.url, "station-k", outbox)
    assert station.flush(timeout=60)
    station.close()
    local = InspectionStore(outbox)
    in_outbox = [r.item_id for r in reversed(local.inspections(limit=100_000))]
    assert set(reported) <= {r.id for r in local.inspections(limit=100_000)}
    local.close()
    on_server = server_log(server.url, "station-k")
    assert on_server == in_outbox   # every committed verdict once, in the station's order
