"""StationStore: what the node's store layer says about the galleries it hands out (a real SQLite file)."""
from __future__ import annotations

import pytest

from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import save_gallery
from damage_perception.store.station_store import DECODED_GALLERIES, StationStore
from test.store.test_galleries import gallery, posed_gallery


class RecordingLog:
    """Collects what the store layer logs, by level."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {"error": [], "warning": [], "info": []}

    def error(self, message: str) -> None:
        self.lines["error"].append(message)

    def warning(self, message: str) -> None:
        self.lines["warning"].append(message)

    def info(self, message: str) -> None:
        self.lines["info"].append(message)


def test_a_gallery_without_posed_crops_is_said_once_per_version_and_still_served(tmp_path):
    path = tmp_path / "station.db"
    writer = InspectionStore(str(path))
    save_gallery(writer, gallery(seed=0))              # enrolled without cameras (as before migration 5)
    writer.close()
    log = RecordingLog()
    station = StationStore(str(path), log)
    try:
        assert station.gallery("SKU-C0042") is not None
        assert station.gallery("SKU-C0042") is not None
        assert len(log.lines["warning"]) == 1 and "re-enrol" in log.lines["warning"][0]
        save_gallery(station.store, posed_gallery(seed=1))   # re-enrolled with cameras: nothing to say
        served = station.gallery("SKU-C0042")
        assert served.version == 2 and all(view.posed is not None for view in served.views)
        assert len(log.lines["warning"]) == 1 and not log.lines["error"]
    finally:
        station.close()


@pytest.fixture
def station(tmp_path):
    """A station store over a fresh SQLite file."""
    station = StationStore(str(tmp_path / "station.db"), RecordingLog())
    yield station
    station.close()


def test_the_same_active_version_is_decoded_once_and_a_new_or_rolled_back_one_again(station):
    save_gallery(station.store, posed_gallery(seed=0))
    first = station.gallery("SKU-C0042")
    first.cache["derived"] = "kept"   # what a model derived from it (e.g. the reference reading)
    assert station.gallery("SKU-C0042") is first
    save_gallery(station.store, posed_gallery(seed=1))   # re-enrolled: the next item reads version 2
    second = station.gallery("SKU-C0042")
    assert second.version == 2 and second is not first and "derived" not in second.cache
    station.store.activate("SKU-C0042", 1)   # rolled back
    back = station.gallery("SKU-C0042")
    assert back.version == 1 and back is not second and back.nominal_score == first.nominal_score


def test_a_store_recreated_under_the_node_is_not_read_from_the_old_ones_gallery(station, tmp_path):
    save_gallery(station.store, posed_gallery(seed=0))
    old = station.gallery("SKU-C0042")
    station.store.close()
    (tmp_path / "station.db").unlink()
    station.store = InspectionStore(str(tmp_path / "station.db"))
    save_gallery(station.store, posed_gallery(seed=2))   # version 1 again, of other views
    fresh = station.gallery("SKU-C0042")
    assert fresh.version == old.version == 1 and fresh is not old and fresh.nominal_score != old.nominal_score


def test_only_the_most_recently_used_skus_galleries_are_kept_decoded(station):
    skus = [f"SKU-{k:04d}" for k in range(DECODED_GALLERIES + 1)]
    for sku in skus:
        enrolled = posed_gallery(seed=0)
        enrolled.sku = sku
        save_gallery(station.store, enrolled)
    first = {sku: station.gallery(sku) for sku in skus[:-1]}
    assert station.gallery(skus[0]) is first[skus[0]]   # used again: now the most recent
    station.gallery(skus[-1])                           # one more SKU: the least recently used goes
    assert station.gallery(skus[0]) is first[skus[0]]
    assert station.gallery(skus[1]) is not first[skus[1]]
