"""DamageModel files: a saved model loads to the same outputs; damaged, foreign or absent files say why."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from damage_perception.core.classifier import ClassifierOutput, DamageHead
from damage_perception.core.comparator import ComparatorHead
from damage_perception.core.damage_model import DamageModel, ModelLoadError, ViewSignals
from damage_perception.core.fusion import VIEW_SIGNALS, FusionData, fit_fusion


def small_fusion(seed: int = 0):
    rng = np.random.default_rng(seed)
    views, shows, damaged = [], [], []
    for item in range(60):
        bad = item % 2 == 0
        shows_damage = np.array([bad and k < 2 for k in range(4)])
        views.append([{name: float(rng.normal(2.0 if s else 0.0) if name != "anomaly" else np.exp(rng.normal(s)))
                       for name in VIEW_SIGNALS} for s in shows_damage])
        shows.append(shows_damage)
        damaged.append(bad)
    return fit_fusion(FusionData(views, shows, np.array(damaged)))


@pytest.fixture(scope="module")
def model() -> DamageModel:
    torch.manual_seed(3)
    return DamageModel(DamageHead(), small_fusion(), version="test-model")


def test_a_saved_model_loads_with_the_same_head_fusion_and_version(model, tmp_path):
    path = model.save(tmp_path / "model.pt")
    loaded = DamageModel.load(path)
    assert loaded.version == "test-model"
    for name, tensor in model.head.state_dict().items():
        assert torch.equal(tensor, loaded.head.state_dict()[name]), name
    signals = dict.fromkeys(VIEW_SIGNALS, 0.5)
    assert loaded.fusion.view_logit(signals, True) == pytest.approx(model.fusion.view_logit(signals, True))


def test_an_absent_file_says_it_does_not_exist(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        DamageModel.load(tmp_path / "absent.pt")


def test_a_truncated_file_is_unreadable(model, tmp_path):
    path = model.save(tmp_path / "model.pt")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ModelLoadError, match="unreadable"):
        DamageModel.load(path)


def test_a_torch_file_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="not a damage model"):
        DamageModel.load(path)


def test_a_head_of_another_shape_does_not_fit(model, tmp_path):
    path = model.save(tmp_path / "model.pt")
    data = torch.load(path, weights_only=True)
    name = next(iter(data["head"]))
    data["head"][name] = torch.zeros(1)
    torch.save(data, path)
    with pytest.raises(ModelLoadError, match="does not fit"):
        DamageModel.load(path)


def test_the_alignment_is_recorded_and_files_without_it_align_by_shape(model, tmp_path):
    model.alignment = "coloured"
    path = model.save(tmp_path / "model.pt")
    assert DamageModel.load(path).alignment == "coloured"
    data = torch.load(path, weights_only=True)
    del data["alignment"]   # a file written before the alignment was recorded (the v2 models)
    torch.save(data, path)
    assert DamageModel.load(path).alignment == "shape"
    data["alignment"] = "telepathic"
    torch.save(data, path)
    with pytest.raises(ModelLoadError, match="alignment"):
        DamageModel.load(path)


def test_a_comparator_is_saved_with_the_model_and_files_without_one_load_without(model, tmp_path):
    assert DamageModel.load(model.save(tmp_path / "plain.pt")).comparator is None
    torch.manual_seed(4)
    comparator = ComparatorHead(152)
    with_comparator = DamageModel(model.head, model.fusion, "with-comparator", comparator=comparator)
    loaded = DamageModel.load(with_comparator.save(tmp_path / "comparator.pt"))
    for name, tensor in comparator.state_dict().items():
        assert torch.equal(tensor, loaded.comparator.state_dict()[name]), name


def test_leaving_out_hidden_cells_is_recorded_and_keys_the_nominal_apart(model, tmp_path):
    torch.manual_seed(4)
    plain = DamageModel(model.head, model.fusion, "plain", alignment="shape", comparator=ComparatorHead(152))
    hidden = DamageModel(model.head, model.fusion, "hidden", alignment="shape", comparator=plain.comparator,
                         leave_out_hidden=True)
    # the gallery's nominal comparator score is read without those cells: one measured with them is not its own
    assert hidden.nominal_key == plain.nominal_key + "-hidden"
    path = hidden.save(tmp_path / "hidden.pt")
    assert DamageModel.load(path).leave_out_hidden
    data = torch.load(path, weights_only=True)
    del data["leave_out_hidden"]   # a file written before the option (v9 and older): every cell judged
    torch.save(data, path)
    assert not DamageModel.load(path).leave_out_hidden


def test_the_damage_heatmap_takes_the_comparator_where_it_is_hotter():
    calm = np.full((4, 4), 0.1, np.float32)
    signals = ViewSignals(ClassifierOutput(-3.0, {}, calm), None, None, 0.0)
    assert signals.damage_heatmap() is calm   # no comparator ran: the classifier's map
    change = np.zeros((4, 4), np.float32)
    change[2, 3] = 0.9   # a missing part the classifier does not see
    signals.change = change
    heatmap = signals.damage_heatmap()
    assert np.unravel_index(np.argmax(heatmap), heatmap.shape) == (2, 3) and heatmap[0, 0] == pytest.approx(0.1)


def test_a_gallery_without_the_comparators_nominal_is_stale_for_a_model_with_one(model):
    from damage_perception.core.gallery import NOMINAL_KEY, ReferenceView, SkuGallery
    from damage_perception.core.registered_comparison import LEARNED_SIGNAL, PosedCrop
    from damage_perception.core.shape_check import ReferenceShape
    posed = PosedCrop(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), np.zeros((8, 8), bool), np.eye(3),
                      np.eye(4))
    old = SkuGallery("SKU-1", [ReferenceView(0.0, np.zeros((1, 4), np.float32), posed)],
                     ReferenceShape(np.zeros((0, 3), np.float32)), 1.0, 3, {}, {"reg_feature": 2.0})
    with_comparator = DamageModel(model.head, model.fusion, "with-comparator", comparator=ComparatorHead(152))
    assert model.stale_gallery(old) is None   # no comparator: nothing it lacks
    assert "re-enrol" in with_comparator.stale_gallery(old)
    current = dataclasses.replace(old, registered_nominal={"reg_feature": 2.0, LEARNED_SIGNAL: -3.0},
                                  metadata={NOMINAL_KEY: with_comparator.nominal_key})
    assert with_comparator.stale_gallery(current) is None and with_comparator.stale_gallery(None) is None


def test_a_gallery_whose_nominal_another_comparator_measured_is_stale(model):
    from damage_perception.core.gallery import NOMINAL_KEY, ReferenceView, SkuGallery
    from damage_perception.core.registered_comparison import LEARNED_SIGNAL, PosedCrop
    from damage_perception.core.shape_check import ReferenceShape
    posed = PosedCrop(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), np.zeros((8, 8), bool), np.eye(3),
                      np.eye(4))
    torch.manual_seed(1)
    first = DamageModel(model.head, model.fusion, "first", alignment="shape", comparator=ComparatorHead(152))
    torch.manual_seed(2)
    retrained = DamageModel(model.head, model.fusion, "retrained", alignment="shape", comparator=ComparatorHead(152))
    assert first.nominal_key != retrained.nominal_key and first.nominal_key.startswith("shape-")
    gallery = SkuGallery("SKU-1", [ReferenceView(0.0, np.zeros((1, 4), np.float32), posed)],
                         ReferenceShape(np.zeros((0, 3), np.float32)), 1.0, 3, {NOMINAL_KEY: first.nominal_key},
                         {"reg_feature": 2.0, LEARNED_SIGNAL: -3.0})
    assert first.stale_gallery(gallery) is None
    assert "another comparator" in retrained.stale_gallery(gallery)
    assert first.usable_nominal(gallery) == gallery.registered_nominal   # its own baseline: read whole
    assert retrained.usable_nominal(gallery) == {"reg_feature": 2.0}   # not its baseline: no comparator score
    coloured = DamageModel(model.head, model.fusion, "coloured", alignment="coloured", comparator=first.comparator)
    assert "another comparator or alignment" in coloured.stale_gallery(gallery)
    # galleries enrolled before the key was kept count as the shipped v4's, whose key LEGACY_NOMINAL_KEY is
    legacy = dataclasses.replace(gallery, metadata={})
    assert "another comparator" in first.stale_gallery(legacy)


def test_galleries_without_a_nominal_key_are_read_as_v4s():
    from damage_perception.core.damage_model import LEGACY_NOMINAL_KEY
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    v4 = DamageModel.load(SHIPPED_MODEL_FILE.with_name("damage_model_v4.pt"))
    assert v4.version == "effl0-head-s1200-seed0-cmp1500-noshape-nogeo-gb-3613d3c9eb"
    assert v4.nominal_key == LEGACY_NOMINAL_KEY


def test_aligned_images_featurized_in_the_views_batch_get_the_patches_of_their_own_call(model):
    """One backbone call for the views and their aligned reference images (the node's path) gives each the
    patches a call of its own gives."""
    rng = np.random.default_rng(4)
    colors = rng.integers(0, 256, (2, 160, 160, 3)).astype(np.uint8)
    aligned = rng.integers(0, 256, (2, 160, 160, 3)).astype(np.uint8)
    masks = np.zeros((2, 160, 160), bool)
    masks[:, 40:120, 30:130] = True
    depths = np.where(masks, 0.6, 0.0).astype(np.float32)
    together = model.featurize(colors, masks, depths, aligned)
    alone = model.featurize(colors, masks, depths)
    np.testing.assert_allclose(together.patches, alone.patches, atol=1e-4)
    np.testing.assert_allclose(together.aligned, model.featurize(aligned, masks, depths).patches, atol=1e-4)
    assert together.features.shape == alone.features.shape and alone.aligned is None


def test_the_reference_reading_is_the_classifiers_loudest_gallery_view_once_per_head(model):
    from damage_perception.core.fusion import REFERENCE_READING
    from damage_perception.core.gallery import ReferenceView, SkuGallery
    from damage_perception.core.registered_comparison import PosedCrop
    from damage_perception.core.shape_check import ReferenceShape
    rng = np.random.default_rng(7)
    colors = rng.integers(0, 256, (3, 160, 160, 3)).astype(np.uint8)
    masks = np.zeros((3, 160, 160), bool)
    masks[:, 40:120, 30:130] = True
    depths = np.where(masks, 0.6, 0.0).astype(np.float32)
    crops = [PosedCrop(colors[k], depths[k], masks[k], np.eye(3), np.eye(4)) for k in range(3)]
    gallery = SkuGallery("SKU-1", [ReferenceView(0.1 * k, np.zeros((1, 4), np.float32), crops[k]) for k in range(3)],
                         ReferenceShape(np.zeros((0, 3), np.float32)))
    expected = max(output.logit for output in model.classify(model.featurize(colors, masks, depths)))
    assert model.reference_reading(gallery) == pytest.approx(expected, abs=1e-4)
    torch.manual_seed(9)
    other = DamageModel(DamageHead(), model.fusion, "other head")   # its own reading, not the cached one
    assert other.reference_reading(gallery) != pytest.approx(expected, abs=1e-4)
    assert len([key for key in gallery.cache if key[0] == "reference_reading"]) == 2
    without_crops = SkuGallery("SKU-2", [ReferenceView(0.0, np.zeros((1, 4), np.float32))],
                               ReferenceShape(np.zeros((0, 3), np.float32)))
    assert model.reference_reading(without_crops) is None and model.reference_reading(None) is None
    view = ViewSignals(ClassifierOutput(1.0, {}, np.zeros((2, 2), np.float32)), None, None, 0.0,
                       reference_reading=2.5)
    assert view.as_dict()[REFERENCE_READING] == 2.5
    assert REFERENCE_READING not in dataclasses.replace(view, reference_reading=None).as_dict()
