"""The view pipeline on rendered frames: invalid depth pixels mixed in (hidden surface is no evidence), and with
the shipped damage model against a gallery enrolled with its cameras (the registered comparison runs live) or
without (an old stored gallery: the reg_* signals keep their pristine defaults)."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.registered_comparison import PRISTINE
from damage_perception.core.view_pipeline import REG_COMPUTED, ViewInput, ViewPipeline
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig
from test.core.rendered_items import enrolment_views, rendered_views

GRIPPER = GripperGeometry()
GARBAGE = np.array([np.nan, np.inf, -np.inf, -0.5, 0.0], np.float32)


@pytest.fixture(scope="module")
def crushed_view():
    """A rendered view of a crushed carton that the geometric score flags when clean."""
    renderer = CellRenderer(SceneConfig(), GRIPPER)
    spec = next(spec for spec in make_catalogue(5, 0.8, 5) if spec.damage == "crush")
    renderer.set_item(build_item(spec, GRIPPER))
    return renderer.render(0.0, np.random.default_rng(1))


def process(view, depth: np.ndarray):
    pipeline = ViewPipeline(GRIPPER)
    return pipeline.process(ViewInput(depth, view.intrinsics, view.T_optical_gripper,
                                      list(view.finger_transforms), view.color))[0]


def with_garbage(depth: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixed = depth.astype(np.float32).copy()
    hit = rng.random(depth.shape) < fraction
    mixed[hit] = rng.choice(GARBAGE, size=int(hit.sum()))
    return mixed


def test_clean_rendered_view_is_usable_and_scores_the_damage(crushed_view):
    result = process(crushed_view, crushed_view.depth_m)
    assert result.found, result.reason
    assert result.score >= 0.5


@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_scattered_invalid_depth_makes_the_view_unusable_not_intact(crushed_view, fraction):
    """NaN / inf / negative / zero pixels sprinkled over the frame hide the crush from the score (0.72 clean,
    0.38 at 5 %, 0 at 20 % before this rule): the view must not count as a view of an intact item."""
    result = process(crushed_view, with_garbage(crushed_view.depth_m, fraction))
    assert not result.found
    assert result.reason.startswith("invalid depth:"), result.reason


# --- with the damage model: the registered comparison live ------------------------------------------------

@pytest.fixture(scope="module")
def enrolled():
    """The shipped model's pipeline and a gallery of SKU-C0101 enrolled as the node enrols (12 posed views)."""
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.enrolment import ENROL_VIEWS
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    from damage_perception.data.synthesize import view_angles

    model = DamageModel.load(SHIPPED_MODEL_FILE)
    pipeline = ViewPipeline(GRIPPER, model=model, keep_gallery_data=True)
    angles = view_angles(ENROL_VIEWS)
    enrolment, _ = enrolment_views(pipeline, rendered_views("SKU-C0101", "pristine", angles, seed=5), angles)
    return pipeline, enrolment.build(model, "SKU-C0101", ENROL_VIEWS)


def without_cameras(gallery):
    """The gallery as the store loads one enrolled before posed crops were kept."""
    views = [dataclasses.replace(view, posed=None) for view in gallery.views]
    return dataclasses.replace(gallery, views=views, registered_nominal={}, cache={})


ANGLE = 0.1   # rad: between two reference views (every 30 degrees), as an inspection's views fall


def test_a_view_against_a_posed_gallery_gets_computed_registered_signals(enrolled):
    pipeline, gallery = enrolled
    pristine = rendered_views("SKU-C0101", "pristine", [ANGLE], seed=9)[0]
    holed = rendered_views("SKU-C0101", "hole", [ANGLE], seed=9)[0]
    good, bad = (pipeline.process(view, wrist_angle=ANGLE, gallery=gallery)[0] for view in (pristine, holed))
    assert good.found and bad.found
    for result in (good, bad):
        assert result.signals[REG_COMPUTED] == 1.0 and "registered" in result.timings
        assert {name: result.signals[name] for name in PRISTINE} != PRISTINE
        assert 0.3 < result.signals["reg_overlap"] < 1.0 and result.signals["reg_colour"] != 1.0
    # the hole is material the references have and the view lacks, where it is
    assert bad.signals["reg_missing"] > 0.5 > 0.1 > good.signals["reg_missing"]
    # the shipped model's learned comparator sees the change too, and its change map shows where
    assert bad.signals["reg_learned"] > good.signals["reg_learned"] + 2.0
    assert bad.heatmap.max() > 0.9 and bad.heatmap.max() > good.heatmap.max()
    assert bad.logit > good.logit
    # kept for auto-enrolment: the view's crop with its camera
    assert good.posed is not None and good.posed.mask.shape == (160, 160)
    np.testing.assert_array_equal(good.posed.camera_from_gripper, pristine.camera_from_gripper)


def test_a_gallery_without_cameras_still_scores_with_the_pristine_defaults(enrolled):
    pipeline, gallery = enrolled
    holed = rendered_views("SKU-C0101", "hole", [ANGLE], seed=9)[0]
    result = pipeline.process(holed, wrist_angle=ANGLE, gallery=without_cameras(gallery))[0]
    assert result.found and np.isfinite(result.logit) and "anomaly" in result.signals
    assert result.signals[REG_COMPUTED] == 0.0 and "registered" not in result.timings
    assert {name: result.signals[name] for name in PRISTINE} == PRISTINE
    with_comparison = pipeline.process(holed, wrist_angle=ANGLE, gallery=gallery)[0]
    assert with_comparison.logit > result.logit   # what the fallback misses of the hole


def without_geometric(logistic):
    """The logistic view model with the geometric score's input left out."""
    from damage_perception.core.fusion import LogisticModel
    keep = [k for k, name in enumerate(logistic.names) if name != "geometric"]
    return LogisticModel(tuple(logistic.names[k] for k in keep), logistic.mean[keep], logistic.scale[keep],
                         logistic.coef[keep], logistic.intercept)


def test_a_model_whose_fusion_does_not_read_the_geometric_score_skips_it(enrolled):
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    _, gallery = enrolled
    # v2 (same head and alignment as the shipped model, so the same gallery) still reads the geometric score
    pipeline = ViewPipeline(GRIPPER, model=DamageModel.load(SHIPPED_MODEL_FILE.with_name("damage_model_v2.pt")))
    model = copy.copy(pipeline.model)
    model.fusion = dataclasses.replace(model.fusion, view=without_geometric(model.fusion.view),
                                       view_classifier_only=without_geometric(model.fusion.view_classifier_only))
    assert pipeline.model.fusion.reads_geometric and not model.fusion.reads_geometric
    holed = rendered_views("SKU-C0101", "hole", [ANGLE], seed=9)[0]
    full = pipeline.process(holed, wrist_angle=ANGLE, gallery=gallery)[0]
    skipped = ViewPipeline(GRIPPER, model=model).process(holed, wrist_angle=ANGLE, gallery=gallery)[0]
    assert full.signals["geometric"] > 0.0 and skipped.signals["geometric"] == 0.0
    # the same view logit less the geometric term
    view = pipeline.model.fusion.view
    k = view.names.index("geometric")
    geometric_term = view.coef[k] * (full.signals["geometric"] - view.mean[k]) / view.scale[k]
    assert skipped.logit == pytest.approx(full.logit - geometric_term, abs=1e-6)
    assert skipped.signals["reg_missing"] == pytest.approx(full.signals["reg_missing"])


def test_edges_at_an_items_pixels_equal_the_full_frames_edges():
    """``edges_at`` computes the depth edges on the pixels' bounding box only: at those pixels they are the
    full frame's, for an item inside the image and one touching its corner (where the image border is an edge)."""
    from damage_perception.core.view_pipeline import depth_edges, edges_at
    rng = np.random.default_rng(5)
    depth = (0.6 + 0.004 * rng.random((48, 64))).astype(np.float32)
    depth[:, 40:] += 0.2
    depth[rng.random(depth.shape) < 0.04] = np.nan
    full = depth_edges(depth, 0.008, 0.01).reshape(-1)
    inside = np.zeros(depth.shape, bool)
    inside[10:30, 30:50] = True
    corner = np.zeros(depth.shape, bool)
    corner[:6, :9] = True
    for grow_px in (0, 1, 2):
        full = depth_edges(depth, 0.008, 0.01, grow_px).reshape(-1)
        for item in (inside, corner):
            pixels = np.flatnonzero(item)
            np.testing.assert_array_equal(edges_at(depth, pixels, 0.008, 0.01, grow_px), full[pixels])
    assert edges_at(depth, np.zeros(0, int), 0.008, 0.01).shape == (0,)
