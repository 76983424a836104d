import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from damage_perception.core.boosted_trees import BoostedTrees, export_trees, fit_boosted_trees


def data(seed=0, rows=1500):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    y = (x[:, 0] + np.where(x[:, 1] > 0.5, 1.5, 0.0) * (x[:, 2] < 0) + rng.normal(0, 0.5, rows) > 0.8).astype(int)
    return x, y


def test_export_reproduces_scikit_learn_including_missing_values():
    x, y = data()
    x[np.random.default_rng(1).random(x.shape) < 0.03] = np.nan
    model = HistGradientBoostingClassifier(max_iter=60, max_depth=3, early_stopping=False, random_state=0).fit(x, y)
    trees = export_trees(model, ("a", "b", "c", "d"))
    assert np.allclose(trees.logit(x), model.decision_function(x), atol=1e-9)
    assert float(trees.logit(x[0])) == pytest.approx(float(model.decision_function(x[:1])[0]), abs=1e-9)


def test_round_trip_through_json_keeps_every_output():
    x, y = data()
    trees = fit_boosted_trees(x, y, ("a", "b", "c", "d"), (1, 0, 0, 0), iterations=40)
    again = BoostedTrees.from_dict(json.loads(json.dumps(trees.to_dict())))
    assert np.array_equal(again.logit(x), trees.logit(x))
    assert again.names == ("a", "b", "c", "d")


def test_monotone_feature_never_lowers_the_log_odds():
    x, y = data()
    trees = fit_boosted_trees(x, y, ("a", "b", "c", "d"), (1, 0, 0, 0), iterations=80)
    probe = np.repeat(x[:50], 40, axis=0)
    probe[:, 0] = np.tile(np.linspace(-3, 3, 40), 50)
    steps = np.diff(trees.logit(probe).reshape(50, 40), axis=1)
    assert (steps >= -1e-12).all()
    assert trees.logit(np.array([3.0, 0, 0, 0])) > trees.logit(np.array([-3.0, 0, 0, 0])) + 1.0


def test_one_class_is_refused():
    x, _ = data()
    with pytest.raises(ValueError, match="both classes"):
        fit_boosted_trees(x, np.zeros(len(x), int), ("a", "b", "c", "d"), (0, 0, 0, 0))
