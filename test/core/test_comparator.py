import numpy as np
import pytest
import torch

from damage_perception.core.comparator import (
    LOW_LOGIT,
    MAP_NAMES,
    ComparatorHead,
    cell_labels,
    compare,
    residual_maps,
    view_score,
)
from damage_perception.core.metrics import auroc
from damage_perception.core.registered_comparison import LEARNED_SIGNAL, correspond, normalised
from damage_perception.core.training import ComparatorSettings, train_comparator
from test.core.test_registered_comparison import SIZE, plane


def test_residual_maps_put_a_dent_in_its_cells():
    view = plane()
    view.depth_m[8:32, 8:32] = 0.53   # pushed in: cells (1..3, 1..3) of 8 px
    correspondence = correspond(view, np.eye(4), [plane()], np.ones((SIZE, SIZE), bool))
    grid = SIZE // 8
    patches = np.zeros((grid, grid, 4), np.float32)
    maps = residual_maps(correspondence, patches, patches, np.ones((grid, grid), bool))
    missing = maps[..., MAP_NAMES.index("missing")]
    assert maps.shape == (grid, grid, len(MAP_NAMES))
    assert missing[1:4, 1:4].min() == pytest.approx(1.0) and missing[5:, :].max() == 0.0
    assert maps[..., MAP_NAMES.index("matched")][5:, 5:].min() == pytest.approx(1.0)


def test_cell_labels_saturate_at_a_quarter_of_the_cell():
    damage = np.zeros((16, 16), np.uint8)
    damage[0:2, 0:8] = 3      # a quarter of cell (0, 0)
    damage[8:9, 8:12] = 1     # a sixteenth of cell (1, 1)
    labels = cell_labels(damage, 2)
    assert labels[0, 0] == pytest.approx(1.0) and labels[1, 1] == pytest.approx(0.25) and labels[0, 1] == 0.0


def test_view_score_averages_the_largest_compared_cells():
    logits = np.array([[5.0, 1.0], [3.0, 9.0]])
    compared = np.array([[True, True], [True, False]])
    assert view_score(logits, compared, count=2) == pytest.approx(4.0)
    assert view_score(logits, np.zeros_like(compared)) == LOW_LOGIT


def synthetic_pairs(count: int, seed: int, grid: int = 8, dim: int = 6):
    """Views against aligned references: artwork (a feature offset) on both in some cells, a change (the view
    departs from its reference) in others; only the change is damage."""
    rng = np.random.default_rng(seed)
    aligned = rng.normal(size=(count, grid, grid, dim)).astype(np.float32)
    query = aligned + 0.1 * rng.normal(size=aligned.shape).astype(np.float32)
    labels = np.zeros((count, grid, grid), np.float32)
    art = np.zeros((count, grid, grid), bool)
    for k in range(count):
        r, c = rng.integers(grid, size=2)
        art[k, r, c] = True
        query[k, r, c] += 4.0
        aligned[k, r, c] += 4.0          # the reference shows the same artwork
        if k % 2:
            r, c = rng.integers(grid, size=2)
            query[k, r, c] += rng.choice([-3.0, 3.0], size=dim)   # the item changed here
            labels[k, r, c], art[k, r, c] = 1.0, False
    maps = np.zeros((count, grid, grid, len(MAP_NAMES)), np.float32)
    maps[..., MAP_NAMES.index("compared")] = 1.0
    maps[..., MAP_NAMES.index("item")] = 1.0
    return query, aligned, maps, labels, art


def test_the_comparator_learns_a_change_and_ignores_artwork_the_reference_shows():
    query, aligned, maps, labels, _ = synthetic_pairs(400, seed=0)
    head = train_comparator(query, aligned, maps, labels, ComparatorSettings(steps=150, batch=32), progress=False)
    query, aligned, maps, labels, art = synthetic_pairs(200, seed=1)
    logits = np.stack([o.cell_logits for o in compare(head, query, aligned, maps)])
    assert auroc(logits[labels > 0.5], logits[labels < 0.5]) > 0.95
    assert auroc(logits[labels > 0.5], logits[art]) > 0.95   # artwork the reference shows is no change


def test_a_comparator_round_trips_through_its_state():
    head = ComparatorHead(6)
    query, aligned, maps, _, _ = synthetic_pairs(4, seed=2)
    head.fit_standardisation(*(torch.from_numpy(a).permute(0, 3, 1, 2) for a in (query, aligned, maps)))
    again = ComparatorHead(6)
    again.load_state_dict(head.state_dict())
    first, second = compare(head.eval(), query, aligned, maps), compare(again.eval(), query, aligned, maps)
    assert [o.score for o in first] == [o.score for o in second]


def test_cells_left_out_are_not_judged():
    head = ComparatorHead(6).eval()
    query, aligned, maps, _, _ = synthetic_pairs(2, seed=3)
    left_out = np.zeros(maps.shape[:3], bool)
    left_out[0, :4] = True                     # the top half of the first view
    judged, partly = compare(head, query, aligned, maps), compare(head, query, aligned, maps, left_out)
    assert (partly[0].cell_logits[:4] == LOW_LOGIT).all()
    np.testing.assert_array_equal(partly[0].cell_logits[4:], judged[0].cell_logits[4:])
    assert partly[0].score == pytest.approx(view_score(judged[0].cell_logits[4:], np.ones((4, 8), bool)))
    assert partly[1].score == judged[1].score


def test_the_comparator_score_is_read_against_the_gallerys_own_and_left_out_without_it():
    raw = {"reg_missing": 0.1, "reg_extra": 0.0, "reg_colour": 0.2, "reg_feature": 3.0, "reg_overlap": 0.9,
           "reg_beside": 0.0, LEARNED_SIGNAL: -1.0}
    nominal = {"reg_colour": 0.1, "reg_feature": 2.0, LEARNED_SIGNAL: -4.0}
    assert normalised(raw, nominal)[LEARNED_SIGNAL] == pytest.approx(3.0)   # 3 log-odds above its pristine views
    older = normalised(raw, {"reg_colour": 0.1, "reg_feature": 2.0})   # enrolled by a model without one
    assert LEARNED_SIGNAL not in older and older["reg_feature"] == pytest.approx(1.5)
