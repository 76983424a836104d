"""Enrolment: the node's views made into a posed gallery by the shipped model (rendered views); auto-enrolment:
which passed items may grow their SKU's gallery, and the grown gallery (synthetic arrays)."""
import dataclasses

import numpy as np
import pytest

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.enrolment import ENROL_VIEWS, AutoEnrolConfig, auto_enrol_decision, grown_gallery
from damage_perception.core.gallery import build_gallery
from damage_perception.core.registered_comparison import LEARNED_SIGNAL, PRISTINE, crop_camera_matrix
from damage_perception.core.verdict import Decision, ItemVerdict, ViewResult
from damage_perception.core.view_pipeline import ViewPipeline
from damage_perception.data.synthesize import view_angles, worker_renderer
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import load_gallery, save_gallery
from test.core.rendered_items import enrolment_views, rendered_views
from test.store.test_galleries import NOMINAL, posed_crop

GRID, DIM = 6, 16
ANGLES = np.array([0.0, np.pi / 2, np.pi, 3 * np.pi / 2])


def view_patches(seed: int) -> np.ndarray:
    """(GRID, GRID, DIM) patch features of a pristine view: a few looks with a little noise."""
    rng = np.random.default_rng(seed)
    looks = np.random.default_rng(0).normal(0, 3, (5, DIM))
    return (looks[rng.integers(5, size=(GRID, GRID))] + rng.normal(0, 0.3, (GRID, GRID, DIM))).astype(np.float32)


def cloud(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.05, 0.05, (200, 3)).astype(np.float32)


def gallery(coreset_ratio: float = 0.1, views: int = 4, posed: bool = False):
    """A gallery of synthetic views; with ``posed``, each with a posed crop and the gallery's registered nominal
    (as a model-built gallery has)."""
    patches = np.stack([view_patches(k) for k in range(views)])
    angles = np.resize(ANGLES, views) + (np.arange(views) // 4) * 0.1   # a second round 0.1 rad on
    built = build_gallery("SKU-1", patches, np.ones(patches.shape[:3], bool), angles,
                          [cloud(k) for k in range(views)], coreset_ratio,
                          posed=[posed_crop(k) for k in range(views)] if posed else None)
    if posed:
        built.registered_nominal = dict(NOMINAL)
    return built


def item_view(index: int, anomaly: float = 0.9) -> ViewResult:
    return ViewResult(index, float(ANGLES[index % 4] + 0.05), True, 0.001, signals={"anomaly": anomaly},
                      patches=view_patches(100 + index).reshape(-1, DIM), cloud=cloud(100 + index))


def posed_item_view(index: int) -> ViewResult:
    """An item view as the pipeline keeps it for auto-enrolment, its posed crop too."""
    return dataclasses.replace(item_view(index), posed=posed_crop(100 + index))


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


def test_the_grown_gallery_keeps_the_old_views_posed_crops_and_adds_the_items():
    current = gallery(posed=True)
    item = [posed_item_view(k) for k in range(3)] + [item_view(3)]   # the last kept no posed crop
    grown = grown_gallery(current, item)
    assert [view.posed for view in grown.views[:4]] == [view.posed for view in current.views]
    assert [view.posed for view in grown.views[4:]] == [view.posed for view in item]
    assert grown.views[7].posed is None and grown.registered_nominal == current.registered_nominal == NOMINAL
    assert grown.registered_nominal is not current.registered_nominal


def test_a_gallery_enrolled_without_cameras_grows_without_them():
    # No registered nominal to normalise the comparison with: the gallery stays one without the comparison.
    grown = grown_gallery(gallery(), [posed_item_view(k) for k in range(4)])
    assert all(view.posed is None for view in grown.views) and grown.registered_nominal == {}


def test_a_grown_posed_gallery_keeps_its_crops_through_the_store(tmp_path):
    store = InspectionStore(tmp_path / "station.db")
    save_gallery(store, gallery(posed=True), "enrolled by a person")
    grown = grown_gallery(load_gallery(store, "SKU-1"), [posed_item_view(k) for k in range(4)])
    assert save_gallery(store, grown, "auto-enrolled from item 7") == 2
    active = load_gallery(store, "SKU-1")
    assert all(view.posed is not None for view in active.views) and active.registered_nominal == NOMINAL
    np.testing.assert_array_equal(active.views[5].posed.color, posed_crop(101).color)
    store.close()


# --- enrolment at the station (rendered views, the shipped model) --------------------------------------

@pytest.fixture(scope="module")
def shipped_model():
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    return DamageModel.load(SHIPPED_MODEL_FILE)


@pytest.fixture(scope="module")
def pipeline(shipped_model):
    return ViewPipeline(worker_renderer()[1], model=shipped_model)


@pytest.fixture(scope="module")
def pristine_views():
    """An item of SKU-C0101 at the enrolment's wrist angles."""
    angles = view_angles(ENROL_VIEWS)
    return rendered_views("SKU-C0101", "pristine", angles, seed=5), angles


def test_the_enrolment_default_is_twelve_views():
    assert ENROL_VIEWS == 12


def test_enrolled_views_make_a_posed_gallery_with_its_registered_nominal(shipped_model, pipeline, pristine_views):
    views, angles = pristine_views
    enrolment, results = enrolment_views(pipeline, views, angles)
    assert len(enrolment) == ENROL_VIEWS
    built = enrolment.build(shipped_model, "SKU-C0101", ENROL_VIEWS)
    assert built.metadata["refused_views"] == {} and enrolment.kept_by(built) == list(range(ENROL_VIEWS))
    for reference, view, result, posed in zip(built.views, views, results, enrolment.posed):
        assert reference.posed is posed
        np.testing.assert_array_equal(posed.camera_from_gripper, view.camera_from_gripper)
        i = view.intrinsics   # the crop's camera: the full image's moved to the crop's box
        np.testing.assert_allclose(posed.camera_matrix, crop_camera_matrix(i.fx, i.fy, i.cx, i.cy, result.crop_box,
                                                                           160))
        assert posed.color.shape == (160, 160, 3) and posed.mask.sum() > 1000
    learned = {LEARNED_SIGNAL} if shipped_model.comparator is not None else set()
    assert set(built.registered_nominal) == set(PRISTINE) | learned
    assert 0.5 < built.registered_nominal["reg_overlap"] <= 1.0
    assert built.registered_nominal["reg_missing"] < 0.1 and built.registered_nominal["reg_colour"] > 0


def test_a_view_of_another_item_is_left_out_of_the_enrolment(shipped_model, pipeline, pristine_views):
    views, angles = list(pristine_views[0]), pristine_views[1]
    views[4] = rendered_views("BK-C0102", "pristine", [angles[4]], seed=6)[0]   # someone swapped the item
    enrolment, _ = enrolment_views(pipeline, views, angles)
    built = enrolment.build(shipped_model, "SKU-C0101", ENROL_VIEWS)
    assert list(built.metadata["refused_views"]) == [f"{np.degrees(angles[4]):.0f} deg"]
    kept = [k for k in range(ENROL_VIEWS) if k != 4]
    assert enrolment.kept_by(built) == kept and [view.angle for view in built.views] == [angles[k] for k in kept]

