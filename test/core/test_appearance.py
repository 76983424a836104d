"""The appearance model (core/appearance.py): builds, shapes, file round trip, clear errors, training lowers
the loss and resumes exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from damage_perception.core.appearance import (
    SHIPPED_APPEARANCE_FILE,
    AppearanceModel,
    TailTrainer,
    TrainSettings,
    appearance_probability,
    augment,
    trunk_maps,
)
from damage_perception.core.damage_model import ModelLoadError

SIZE = 64


@pytest.fixture(scope="module")
def model() -> AppearanceModel:
    return AppearanceModel("efficientnet-lite0", SIZE)


def _photos(count: int, damaged: bool, rng: np.random.Generator, side: int = 96) -> np.ndarray:
    images = np.full((count, side, side, 3), (150, 110, 70), np.uint8)
    images = images + rng.integers(0, 25, images.shape, dtype=np.uint8)
    if damaged:
        for image in images:
            a, b = rng.integers(5, side - 5, 2), rng.integers(5, side - 5, 2)
            cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (15, 15, 15), 7)
    return images


def test_model_builds_with_the_stride32_stage_trained_and_gives_one_logit_per_photo(model):
    assert model.first_trained_block == 11 and model.block_count == 16
    assert all(not p.requires_grad for p in model.frozen_blocks.parameters())
    assert all(p.requires_grad for p in model.trained_modules().parameters())
    images = np.random.default_rng(0).integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8)
    maps = trunk_maps(model, images)
    assert maps.shape == (3, 112, SIZE // 16, SIZE // 16) and maps.dtype == np.float16
    assert model.tail(torch.from_numpy(maps)).shape == (3,)
    assert model.logits(images).shape == (3,)
    # any photo size: padded to a square, resized to the model's size
    probabilities = appearance_probability(model, [images[0], np.zeros((50, 120, 3), np.uint8)])
    assert probabilities.shape == (2,) and np.all((probabilities > 0) & (probabilities < 1))
    assert appearance_probability(model, []).shape == (0,)


def test_save_and_load_give_the_same_scores(model, tmp_path):
    torch.manual_seed(1)
    with torch.no_grad():
        model.head[1].weight.normal_(0, 0.05)
        model.tail_blocks[0]._project_conv.weight.mul_(1.1)
    model.scales, model.version = (1.0, 1.25), "test-version"
    images = np.random.default_rng(2).integers(0, 255, (2, SIZE, SIZE, 3), dtype=np.uint8)
    path = model.save(tmp_path / "app.pt", meta={"note": "x"})
    loaded = AppearanceModel.load(path)
    assert (loaded.backbone, loaded.size, loaded.first_trained_block) == ("efficientnet-lite0", SIZE, 11)
    assert loaded.version == "test-version" and loaded.scales == (1.0, 1.25) and loaded.meta == {"note": "x"}
    np.testing.assert_allclose(loaded.logits(images), model.logits(images), atol=1e-5)
    assert not np.allclose(AppearanceModel("efficientnet-lite0", SIZE).logits(images), model.logits(images))
    assert path.stat().st_size < 20e6
    # ONNX Runtime scores as torch does
    assert loaded.use_onnx() == "onnxruntime"
    np.testing.assert_allclose(loaded.logits(images), model.logits(images), atol=1e-3)


def test_a_missing_or_corrupt_file_gives_a_clear_error(model, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        AppearanceModel.load(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(ModelLoadError, match="unreadable"):
        AppearanceModel.load(tmp_path / "junk.pt")
    good = model.save(tmp_path / "good.pt")
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:100_000])
    with pytest.raises(ModelLoadError, match="unreadable"):
        AppearanceModel.load(tmp_path / "cut.pt")
    torch.save({"format": 1, "head": {}}, tmp_path / "other.pt")   # a damage model's format, not ours
    with pytest.raises(ModelLoadError, match="not an appearance model"):
        AppearanceModel.load(tmp_path / "other.pt")
    data = torch.load(good, weights_only=True)
    data["trained"] = {k: v for k, v in data["trained"].items() if not k.startswith("head")}
    torch.save(data, tmp_path / "partial.pt")
    with pytest.raises(ModelLoadError, match="does not fit"):
        AppearanceModel.load(tmp_path / "partial.pt")
    data["backbone"] = "efficientnet-b9"
    torch.save(data, tmp_path / "unknown.pt")
    with pytest.raises(ModelLoadError):
        AppearanceModel.load(tmp_path / "unknown.pt")


def test_augment_gives_varied_crops_of_the_asked_size():
    photo = _photos(1, True, np.random.default_rng(3), side=128)[0]
    rng = np.random.default_rng(4)
    copies = [augment(photo, SIZE, rng) for _ in range(4)]
    assert all(c.shape == (SIZE, SIZE, 3) and c.dtype == np.uint8 for c in copies)
    assert not np.array_equal(copies[0], copies[1])


@pytest.fixture(scope="module")
def maps(model):
    """Cached trunk maps of 20 synthetic training photos (2 augmented copies) and 6 validation photos."""
    rng = np.random.default_rng(0)
    photos = np.concatenate([_photos(10, True, rng), _photos(10, False, rng)])
    aug = np.random.default_rng(5)
    train = np.stack([trunk_maps(model, np.stack([augment(p, SIZE, aug) for p in photos])) for _ in range(2)])
    val_photos = np.concatenate([_photos(3, True, rng), _photos(3, False, rng)])
    val = np.stack([trunk_maps(model, np.stack([cv2.resize(p, (SIZE, SIZE)) for p in val_photos]))])
    return train, np.r_[np.ones(10), np.zeros(10)].astype(np.float32), val, np.r_[np.ones(3), np.zeros(3)]


def _trainer(maps, epochs: int) -> TailTrainer:
    torch.manual_seed(0)   # the head's initial weights
    train, labels, val, val_labels = maps
    settings = TrainSettings(epochs=epochs, batch=8, lr_backbone=1e-3, lr_head=1e-2, patience=100)
    return TailTrainer(AppearanceModel("efficientnet-lite0", SIZE), train, labels, val, val_labels, settings)


def _training_loss(trainer: TailTrainer) -> float:
    """Loss on every cached training map, in eval mode (no dropout: comparable before and after)."""
    trainer.model.eval()
    with torch.no_grad():
        maps = torch.from_numpy(trainer.train_maps.reshape(-1, *trainer.train_maps.shape[2:]))
        labels = torch.from_numpy(np.tile(trainer.train_labels, trainer.train_maps.shape[0]))
        return float(trainer.loss(trainer.model.tail(maps), labels))


def test_a_tiny_training_run_lowers_the_loss(maps):
    trainer = _trainer(maps, epochs=6)
    before = _training_loss(trainer)
    records = [trainer.run_epoch() for _ in range(6)]
    assert trainer.done and len(records) == 6
    assert _training_loss(trainer) < 0.7 * before
    assert trainer.best_auroc >= 0.8 and 0 <= trainer.best_epoch < 6
    model = trainer.finish()
    assert not model.training


def test_training_interrupted_and_resumed_from_its_state_ends_where_straight_training_does(maps):
    straight = _trainer(maps, epochs=3)
    while not straight.done:
        straight.run_epoch()
    first = _trainer(maps, epochs=3)
    first.run_epoch()
    state = first.state_dict()
    resumed = _trainer(maps, epochs=3)   # a fresh process: new model, new trainer
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    while not resumed.done:
        resumed.run_epoch()
    for (name, a), b in zip(straight.model.trained_modules().state_dict().items(),
                            resumed.model.trained_modules().state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert [h.loss for h in resumed.history] == pytest.approx([h.loss for h in straight.history])


def test_the_shipped_appearance_model_loads_and_scores():
    shipped = AppearanceModel.load(SHIPPED_APPEARANCE_FILE)
    assert SHIPPED_APPEARANCE_FILE.stat().st_size <= 20e6
    assert shipped.version.startswith("app-") and shipped.meta["split"] == "train" and shipped.meta["seed"] == 0
    photos = _photos(2, True, np.random.default_rng(7), side=160)
    probabilities = appearance_probability(shipped, list(photos))
    assert probabilities.shape == (2,) and np.all((probabilities > 0) & (probabilities < 1))
