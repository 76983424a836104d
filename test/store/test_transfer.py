"""`store copy` (store/transfer.py): a station's SQLite file joins a fleet's PostgreSQL server with its
galleries whole, the registered comparison's posed crops and nominal included."""
from __future__ import annotations

from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import load_gallery, save_gallery
from damage_perception.store.transfer import copy_store
from test.store.test_galleries import NOMINAL, assert_same_crop, gallery, posed_gallery


def test_copied_gallery_versions_keep_their_posed_crops_and_registered_nominal(tmp_path, postgres_server):
    station = InspectionStore(tmp_path / "station.db", station_id="st-1")
    save_gallery(station, gallery(seed=0))          # enrolled before the cameras were kept
    save_gallery(station, posed_gallery(seed=1))
    fleet = InspectionStore(postgres_server.create_database())
    report = copy_store(station, fleet)
    assert report.skus_copied == ["SKU-C0042"]
    old, new = load_gallery(fleet, "SKU-C0042", 1), load_gallery(fleet, "SKU-C0042", 2)
    assert all(view.posed is None for view in old.views) and old.registered_nominal == {}
    assert new.registered_nominal == NOMINAL
    for ours, theirs in zip(load_gallery(station, "SKU-C0042", 2).views, new.views):
        assert_same_crop(ours.posed, theirs.posed)
    station.close()
    fleet.close()
