"""Auto-enrolment: which passed items may grow their SKU's gallery, and the grown gallery (synthetic arrays)."""
import dataclasses

import numpy as np
import pytest

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.enrolment import AutoEnrolConfig, auto_enrol_decision, grown_gallery
from damage_perception.core.gallery import build_gallery
from damage_perception.core.verdict import Decision, ItemVerdict, ViewResult
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import load_gallery, save_gallery

GRID, DIM = 6, 16
ANGLES = np.array([0.0, np.pi / 2, np.pi, 3 * np.pi / 2])


def view_patches(seed: int) -> np.ndarray:
    """(GRID, GRID, DIM) patch features of a pristine view: a few looks with a little noise."""
    rng = np.random.default_rng(seed)
    looks = np.random.default_rng(0).normal(0, 3, (5, DIM))
    return (looks[rng.integers(5, size=(GRID, GRID))] + rng.normal(0, 0.3, (GRID, GRID, DIM))).astype(np.float32)


def cloud(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.05, 0.05, (200, 3)).astype(np.float32)


def gallery(coreset_ratio: float = 0.1, views: int = 4):
    patches = np.stack([view_patches(k) for k in range(views)])
    angles = np.resize(ANGLES, views) + (np.arange(views) // 4) * 0.1   # a second round 0.1 rad on
    return build_gallery("SKU-1", patches, np.ones(patches.shape[:3], bool), angles,
                         [cloud(k) for k in range(views)], coreset_ratio)


def item_view(index: int, anomaly: float = 0.9) -> ViewResult:
    return ViewResult(index, float(ANGLES[index % 4] + 0.05), True, 0.001, signals={"anomaly": anomaly},
                      patches=view_patches(100 + index).reshape(-1, DIM), cloud=cloud(100 + index))


def verdict(views: list[ViewResult] | None = None, **changes) -> ItemVerdict:
    views = views if views is not None else [item_view(k) for k in range(4)]
    base = ItemVerdict(Decision.PASS, 0.002, 0.99, dict.fromkeys(DAMAGE_TYPES, 0.0), views, None, "pristine")
    return dataclasses.replace(base, **changes)


# --- the decision ---------------------------------------------------------------------------------------

def test_a_confident_pass_of_the_known_look_qualifies():
    assert auto_enrol_decision(verdict(), gallery(), AutoEnrolConfig(enabled=True)) == ""


@pytest.mark.parametrize("item, config, words", [
    (verdict(decision=Decision.REVIEW), AutoEnrolConfig(), "not PASS"),
    (verdict(decision=Decision.DIVERT), AutoEnrolConfig(), "not PASS"),
    (verdict(sku_mismatch=True, closest_sku="SKU-2"), AutoEnrolConfig(), "looks like SKU SKU-2"),
    (verdict(fused_score=0.05), AutoEnrolConfig(), "damage probability 0.05 > 0.01"),
    (verdict(fused_score=float("nan")), AutoEnrolConfig(), "damage probability"),
    (verdict([item_view(0), item_view(1, anomaly=1.6), item_view(2), item_view(3)]), AutoEnrolConfig(),
     "anomaly 1.60 > 1.2"),
    (verdict([item_view(k) for k in range(3)] + [ViewResult(3, 0.0, False, reason="no item")]),
     AutoEnrolConfig(), "found in 3 views, 4 needed"),
    (verdict([dataclasses.replace(item_view(k), patches=None) for k in range(4)]), AutoEnrolConfig(),
     "not kept"),
    (verdict(), AutoEnrolConfig(max_views_per_gallery=4), "has 4 views"),
])
def test_each_guard_refuses_with_its_reason(item, config, words):
    assert words in auto_enrol_decision(item, gallery(), config)


def test_an_item_without_a_gallery_is_refused():
    assert "no gallery" in auto_enrol_decision(verdict(), None, AutoEnrolConfig())


# --- the grown gallery ----------------------------------------------------------------------------------

def test_the_grown_gallery_keeps_the_reference_views_and_adds_the_items():
    current = gallery()
    item = verdict().views
    grown = grown_gallery(current, item)
    assert len(grown.views) == 8 and grown.sku == current.sku and grown.version == current.version + 1
    for kept, old in zip(grown.views, current.views):
        assert kept.angle == old.angle and np.array_equal(kept.patches, old.patches)
    assert [view.angle for view in grown.views[4:]] == [view.wrist_angle for view in item]
    assert all(0 < len(view.patches) < GRID * GRID for view in grown.views[4:])   # their coresets
    assert len(grown.shape.points) > len(current.shape.points)
    assert grown.nominal_score > 0 and grown.nominal_score != current.nominal_score


def test_the_nominal_is_recomputed_as_build_gallery_computes_it():
    # With every patch kept (coreset ratio 1), growing a gallery of views A by views B is building one of A + B.
    current = gallery(coreset_ratio=1.0)
    item = [dataclasses.replace(item_view(k), patches=view_patches(4 + k).reshape(-1, DIM),
                                wrist_angle=float(ANGLES[k] + 0.1)) for k in range(4)]
    grown = grown_gallery(current, item, coreset_ratio=1.0)
    built = gallery(coreset_ratio=1.0, views=8)
    assert grown.nominal_score == pytest.approx(built.nominal_score, rel=1e-6)
    for mine, theirs in zip(grown.views, built.views):
        assert mine.angle == pytest.approx(theirs.angle) and np.array_equal(mine.patches, theirs.patches)


def test_growth_stops_at_max_views_per_gallery():
    grown = grown_gallery(gallery(), verdict().views, max_views=6)
    assert len(grown.views) == 6
    assert len(grown_gallery(grown, verdict().views, max_views=6).views) == 6
    assert "has 6 views" in auto_enrol_decision(verdict(), grown, AutoEnrolConfig(max_views_per_gallery=6))


def test_the_store_numbers_the_grown_version_and_keeps_the_first(tmp_path):
    store = InspectionStore(tmp_path / "station.db")
    current = gallery()
    assert save_gallery(store, current, "enrolled by a person") == 1
    first = load_gallery(store, "SKU-1")
    assert save_gallery(store, grown_gallery(first, verdict().views), "auto-enrolled from item 7") == 2
    active = load_gallery(store, "SKU-1")
    assert active.version == 2 and len(active.views) == 8 and active.metadata["note"].startswith("auto-enrolled")
    assert len(load_gallery(store, "SKU-1", 1).views) == 4
    store.close()
