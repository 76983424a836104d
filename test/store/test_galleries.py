"""SKU galleries through the store (both backends): what is enrolled is what scoring reads back, version by version."""
from __future__ import annotations

import numpy as np
import pytest

from damage_perception.core.gallery import ReferenceView, SkuGallery
from damage_perception.core.shape_check import ReferenceShape
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import (
    active_galleries,
    load_gallery,
    save_gallery,
)


def gallery(seed: int, views: int = 4, patches: int = 30, dim: int = 152) -> SkuGallery:
    rng = np.random.default_rng(seed)
    references = [ReferenceView(0.7 * k, rng.normal(size=(patches, dim)).astype(np.float32)) for k in range(views)]
    shape = ReferenceShape(rng.normal(size=(500, 3)).astype(np.float32))
    return SkuGallery("SKU-C0042", references, shape, nominal_score=1.7 + seed)


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
