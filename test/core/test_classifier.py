import numpy as np
import pytest
import torch

from damage_perception.core.backbone import FEATURE_CHANNELS
from damage_perception.core.classifier import CLASSES, cell_labels, classifier_outputs, view_logit
from damage_perception.core.metrics import auroc
from damage_perception.core.training import TrainingViews, TrainSettings, train_head


def test_cell_labels_majority_and_the_15_percent_rule():
    damage = np.zeros((1, 16, 16), np.uint8)      # 2 x 2 cells of 64 px; 15 % is 9.6 px
    damage[0, 0:2, 0:5] = 2                        # cell (0, 0): 10 px tear -> tear
    damage[0, 0:3, 8:11] = 3                       # cell (0, 1): 9 px hole -> under 15 %: none
    damage[0, 8:10, 0:4] = 1                       # cell (1, 0): 8 px crush ...
    damage[0, 10, 0:5] = 3                         # ... and 5 px hole -> 13 px damaged, crush the commonest
    damage[0, 8, 8:12] = 1                         # cell (1, 1): 4 px crush and 6 px hole: neither type alone
    damage[0, 9, 8:14] = 3                         # reaches 15 %, together they do -> hole
    np.testing.assert_array_equal(cell_labels(damage), [[[2, 0], [1, 3]]])
    assert cell_labels(damage).dtype == np.int64


def test_view_logit_ignores_cells_outside_the_mask():
    logits = torch.zeros(1, len(CLASSES), 2, 2)
    logits[0, 1, 0, 0] = 20.0      # outside the item: would dominate
    logits[0, 2, 1, 1] = 1.0       # inside
    cells = torch.tensor([[[False, True], [True, True]]])
    expected = float(torch.logsumexp(torch.tensor([0.0, 1.0, 0, 0, 0, 0]), 0))  # damage vs 'none' at (1, 1)
    assert float(view_logit(logits, cells)[0]) == pytest.approx(expected, abs=1e-5)
    assert float(view_logit(logits, torch.ones(1, 2, 2, dtype=torch.bool))[0]) > 19.0


def test_classifier_outputs_shapes_and_values():
    torch.manual_seed(0)
    logits = torch.randn(3, len(CLASSES), 4, 5)
    cells = torch.zeros(3, 4, 5, dtype=torch.bool)
    cells[:, 1:3, 1:4] = True
    outputs = classifier_outputs(logits, cells)
    assert len(outputs) == 3
    for k, output in enumerate(outputs):
        assert output.heatmap.shape == (4, 5)
        assert np.all(output.heatmap[~cells[k].numpy()] == 0) and np.all(output.heatmap[cells[k].numpy()] > 0)
        assert set(output.type_probabilities) == set(CLASSES[1:])
        assert output.logit == pytest.approx(float(view_logit(logits[k:k + 1], cells[k:k + 1])[0]))
        assert output.probability == pytest.approx(1 / (1 + np.exp(-output.logit)))
        np.testing.assert_allclose(output.heatmap.max(), output.probability, rtol=1e-5)  # the worst cell's


def tiny_views(count=24, size=6, seed=0):
    """Random features; half the views have a 2 x 2 patch of crush cells whose features are shifted."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, FEATURE_CHANNELS, size, size, generator=generator)
    labels = torch.zeros(count, size, size, dtype=torch.int64)
    for k in range(0, count, 2):
        r, c = (k // 2) % (size - 1), (k // 3) % (size - 1)
        labels[k, r:r + 2, c:c + 2] = 1
        features[k, :30, r:r + 2, c:c + 2] += 1.5
    return TrainingViews(features.half(), torch.zeros(count, 4, size, size),
                         torch.ones(count, size, size, dtype=torch.bool), labels)


def view_logits(head, views):
    with torch.no_grad():
        return view_logit(head(views.features.float(), views.depth), views.cells).numpy()


def test_training_lowers_the_loss_and_separates_damaged_views(tmp_path):
    views = tiny_views()
    losses = []
    head = train_head(views, TrainSettings(steps=30, batch=8, checkpoint_every=10), checkpoint_dir=tmp_path,
                      progress=False, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 30 and not head.training
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    held_out = tiny_views(seed=1)
    logits = view_logits(head, held_out)
    assert auroc(logits[held_out.shows_damage], logits[~held_out.shows_damage]) > 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00010.pt", "step_00020.pt", "step_00030.pt"]
    checkpoint = torch.load(tmp_path / "step_00030.pt", weights_only=True)
    assert checkpoint["step"] == 30
    for name, value in head.state_dict().items():
        assert torch.equal(checkpoint["head"][name], value)


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    views = tiny_views(count=8)
    settings = TrainSettings(steps=5, batch=4)
    first, again = (train_head(views, settings, progress=False).state_dict() for _ in range(2))
    other = train_head(views, TrainSettings(steps=5, batch=4, seed=1), progress=False).state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_training_needs_both_kinds_of_views():
    views = tiny_views(count=4)
    views.labels.zero_()
    with pytest.raises(ValueError, match="with and without damage"):
        train_head(views, TrainSettings(steps=1, batch=2), progress=False)
