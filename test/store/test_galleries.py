"""SKU galleries through the store (both backends): what is enrolled is what scoring reads back, version by version."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from damage_perception.core.gallery import NOMINAL_KEY, ReferenceView, SkuGallery
from damage_perception.core.registered_comparison import PosedCrop
from damage_perception.core.shape_check import ReferenceShape
from damage_perception.store.database import InspectionStore, StoreError
from damage_perception.store.galleries import (
    active_galleries,
    decode_posed,
    encode_posed,
    load_gallery,
    save_gallery,
)
from damage_perception.store.schema import MIGRATIONS, render

NOMINAL = {"reg_missing": 0.012, "reg_extra": 0.031, "reg_colour": 0.047, "reg_feature": 2.25, "reg_overlap": 0.81,
           "reg_beside": 0.0}


def gallery(seed: int, views: int = 4, patches: int = 30, dim: int = 152) -> SkuGallery:
    rng = np.random.default_rng(seed)
    references = [ReferenceView(0.7 * k, rng.normal(size=(patches, dim)).astype(np.float32)) for k in range(views)]
    shape = ReferenceShape(rng.normal(size=(500, 3)).astype(np.float32))
    return SkuGallery("SKU-C0042", references, shape, nominal_score=1.7 + seed)


def posed_crop(seed: int, size: int = 21) -> PosedCrop:
    """A crop of odd size (its packed mask does not fill whole bytes) with depth readings and holes."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.4, 0.9, (size, size)).astype(np.float32)
    depth[rng.random((size, size)) < 0.3] = 0.0
    k = np.array([[610.5 + seed, 0.0, 80.25], [0.0, 611.0, 79.5], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, 3] = (0.01 * seed, -0.02, 0.55)
    pose[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return PosedCrop(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), depth, rng.random((size, size)) < 0.6,
                     k, pose)


def posed_gallery(seed: int, views: int = 4) -> SkuGallery:
    """A gallery whose reference views have their posed crops, with its registered nominal."""
    built = gallery(seed, views)
    for k, view in enumerate(built.views):
        view.posed = posed_crop(10 * seed + k)
    built.registered_nominal = dict(NOMINAL)
    return built


def assert_same_crop(ours: PosedCrop, theirs: PosedCrop) -> None:
    np.testing.assert_array_equal(ours.color, theirs.color)
    np.testing.assert_array_equal(ours.depth_m, theirs.depth_m)
    np.testing.assert_array_equal(ours.mask, theirs.mask)
    np.testing.assert_array_equal(ours.camera_matrix, theirs.camera_matrix)
    np.testing.assert_array_equal(ours.camera_from_gripper, theirs.camera_from_gripper)
    assert theirs.color.dtype == np.uint8 and theirs.mask.dtype == bool and theirs.depth_m.dtype == np.float32


@pytest.fixture
def store(store_location):
    opened = InspectionStore(store_location)
    yield opened
    opened.close()


def test_a_saved_gallery_loads_back_exactly(store):
    saved = gallery(seed=0)
    version = save_gallery(store, saved, note="first enrolment")
    loaded = load_gallery(store, "SKU-C0042")
    assert version == 1 and loaded.version == 1 and loaded.metadata["note"] == "first enrolment"
    assert loaded.nominal_score == pytest.approx(saved.nominal_score)
    assert [v.angle for v in loaded.views] == pytest.approx([v.angle for v in saved.views])
    for ours, theirs in zip(saved.views, loaded.views):
        np.testing.assert_array_equal(ours.patches, theirs.patches)
    np.testing.assert_allclose(loaded.shape.points, saved.shape.points, atol=1e-6)


def test_a_new_enrolment_becomes_active_and_the_old_version_stays_readable(store):
    save_gallery(store, gallery(seed=0))
    save_gallery(store, gallery(seed=1))
    assert load_gallery(store, "SKU-C0042").nominal_score == pytest.approx(2.7)
    assert load_gallery(store, "SKU-C0042", version=1).nominal_score == pytest.approx(1.7)
    store.activate("SKU-C0042", 1)   # roll back
    assert load_gallery(store, "SKU-C0042").version == 1


def test_an_unknown_sku_has_no_gallery(store):
    assert load_gallery(store, "SKU-C9999") is None


def test_active_galleries_are_one_per_sku_at_its_active_version(store):
    save_gallery(store, gallery(seed=0))
    save_gallery(store, gallery(seed=1))
    other = gallery(seed=2)
    other.sku = "SKU-B0001"
    save_gallery(store, other)
    store.activate("SKU-C0042", 1)
    assert store.skus_with_gallery() == ["SKU-B0001", "SKU-C0042"]
    assert [(g.sku, g.version) for g in active_galleries(store)] == [("SKU-B0001", 1), ("SKU-C0042", 1)]


def test_the_key_of_what_measured_the_nominal_loads_back_beside_it(store):
    keyed, plain = posed_gallery(seed=0), posed_gallery(seed=1)
    keyed.metadata[NOMINAL_KEY] = "shape-0123456789"
    plain.sku = "SKU-C0043"
    save_gallery(store, keyed)
    save_gallery(store, plain)
    loaded = load_gallery(store, "SKU-C0042")
    assert loaded.metadata[NOMINAL_KEY] == "shape-0123456789"
    assert set(loaded.registered_nominal) == set(NOMINAL)   # the key is not a signal's nominal
    assert NOMINAL_KEY not in load_gallery(store, "SKU-C0043").metadata


def test_posed_crops_and_the_registered_nominal_load_back_exactly(store):
    saved = posed_gallery(seed=0)
    saved.views[2].posed = None   # a view added without its camera (auto-enrolment) stays without
    save_gallery(store, saved)
    loaded = load_gallery(store, "SKU-C0042")
    assert loaded.registered_nominal == pytest.approx(NOMINAL) and set(loaded.registered_nominal) == set(NOMINAL)
    assert [view.posed is None for view in loaded.views] == [False, False, True, False]
    for ours, theirs in zip(saved.views, loaded.views):
        if ours.posed is not None:
            assert_same_crop(ours.posed, theirs.posed)


def test_the_identification_index_reads_patches_without_decoding_posed_crops(store):
    saved = posed_gallery(seed=0)
    save_gallery(store, saved)
    (indexed,) = active_galleries(store)
    assert all(view.posed is None for view in indexed.views)
    for ours, theirs in zip(saved.views, indexed.views):
        assert np.array_equal(ours.patches, theirs.patches)
    assert all(view.posed is not None for view in active_galleries(store, with_posed=True)[0].views)


def test_a_gallery_without_cameras_loads_without_them(store):
    save_gallery(store, gallery(seed=0))
    save_gallery(store, posed_gallery(seed=1))
    old = load_gallery(store, "SKU-C0042", version=1)
    assert all(view.posed is None for view in old.views) and old.registered_nominal == {}
    assert all(view.posed is not None for view in load_gallery(store, "SKU-C0042").views)


def test_a_gallery_stored_before_migration_5_loads_with_no_posed_crops(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:   # a station file as the store wrote it with schema version 4
        for number in range(1, 5):
            for statement in render(MIGRATIONS[number - 1], "sqlite"):
                db.execute(statement)
        db.execute("INSERT INTO skus (sku, created_at) VALUES ('SKU-OLD', 1.0)")
        db.execute("INSERT INTO gallery_versions (sku, version, num_views, active, created_at, nominal_score) "
                   "VALUES ('SKU-OLD', 1, 2, 1, 1.0, 1.5)")
        for angle in (0.0, 3.0):
            db.execute("INSERT INTO reference_views (gallery_id, wrist_angle, feature_dim, features) "
                       "VALUES (1, ?, 4, ?)", (angle, np.ones((3, 4), np.float32).tobytes()))
        db.execute("PRAGMA user_version = 4")
    store = InspectionStore(path)
    assert store.schema_version == len(MIGRATIONS)
    loaded = load_gallery(store, "SKU-OLD")
    assert [view.angle for view in loaded.views] == [0.0, 3.0] and loaded.nominal_score == 1.5
    assert all(view.posed is None for view in loaded.views) and loaded.registered_nominal == {}
    save_gallery(store, posed_gallery(seed=2))   # and the migrated file keeps new galleries' crops
    assert all(view.posed is not None for view in load_gallery(store, "SKU-C0042").views)
    store.close()


def test_a_real_size_posed_crop_is_compact_and_a_damaged_blob_is_a_store_error():
    crop = posed_crop(3, size=160)
    blob = encode_posed(crop)
    assert_same_crop(crop, decode_posed(blob))
    assert len(blob) < 200_000   # colour 77 kB and depth 102 kB raw; the random test crop barely compresses
    with pytest.raises(StoreError, match="unreadable posed crop"):
        decode_posed(blob[:1000])
