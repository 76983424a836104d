"""Gradient-boosted trees for the item fusion: fitted by scikit-learn, evaluated in numpy.

The item model sees summaries of every view signal (largest, second largest, mean...). A logistic model
over the views' fused log-odds leaves much of their information unused (a missing part shows as a large
registered "missing" share with a calm classifier; printed artwork as a loud classifier with a pristine
reference comparison); trees find such interactions. Each feature that is evidence of damage is fitted
*monotone increasing* (``monotonic_cst``): the model cannot learn that more damage evidence makes an item
look better, which keeps its far tail, where the 0.1 % operating point lives, well behaved.

The fitted ensemble is stored as plain arrays (``BoostedTrees``), so a model file holds no pickled code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BoostedTrees:
    """A binary gradient-boosted ensemble: log-odds = ``baseline`` + the sum of every tree's leaf value.
    Nodes of all trees are concatenated; ``roots`` holds each tree's first node."""

    names: tuple[str, ...]
    baseline: float
    roots: np.ndarray        # (T,) int
    feature: np.ndarray      # (N,) int, the feature a split node tests
    threshold: np.ndarray    # (N,) float, x <= threshold goes left
    left: np.ndarray         # (N,) int, global node index
    right: np.ndarray        # (N,) int
    missing_left: np.ndarray  # (N,) bool, where a NaN goes
    leaf: np.ndarray         # (N,) bool
    value: np.ndarray        # (N,) float, a leaf's contribution to the log-odds
    depth: int               # longest root-to-leaf path

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of rows of ``x`` (R, len(names)), or of one row (returns a 0-d array)."""
        x = np.asarray(x, float)
        single = x.ndim == 1
        rows = np.atleast_2d(x)
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        row_index = np.arange(len(rows))[:, None]
        for _ in range(self.depth):
            values = rows[row_index, self.feature[node]]
            go_left = np.where(np.isnan(values), self.missing_left[node], values <= self.threshold[node])
            node = np.where(self.leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
        out = self.baseline + self.value[node].sum(axis=1)
        return out[0] if single else out

    def to_dict(self) -> dict:
        return {"names": list(self.names), "baseline": self.baseline, "depth": self.depth,
                **{k: getattr(self, k).tolist() for k in ("roots", "feature", "threshold", "left", "right",
                                                           "missing_left", "leaf", "value")}}

    @classmethod
    def from_dict(cls, data: dict) -> BoostedTrees:
        arrays = {k: np.asarray(data[k], t) for k, t in (("roots", int), ("feature", int), ("threshold", float),
                                                          ("left", int), ("right", int), ("missing_left", bool),
                                                          ("leaf", bool), ("value", float))}
        return cls(tuple(data["names"]), float(data["baseline"]), depth=int(data["depth"]), **arrays)


def fit_boosted_trees(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], monotone: tuple[int, ...],
                      iterations: int = 300, learning_rate: float = 0.05, max_depth: int = 3,
                      min_leaf: int = 10, seed: int = 0, weights: np.ndarray | None = None) -> BoostedTrees:
    """Fit scikit-learn's ``HistGradientBoostingClassifier`` (log-loss, no early stopping, seeded) with
    per-feature monotone constraints (+1 increasing, -1 decreasing, 0 free), optionally per-sample
    ``weights``, and export it."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(y, int)
    if len(np.unique(y)) < 2:
        raise ValueError(f"need both classes to fit, got {np.bincount(y, minlength=2).tolist()}")
    model = HistGradientBoostingClassifier(max_iter=iterations, learning_rate=learning_rate, max_depth=max_depth,
                                           min_samples_leaf=min_leaf, l2_regularization=1.0,
                                           monotonic_cst=list(monotone), early_stopping=False, random_state=seed)
    model.fit(np.asarray(x, float), y, sample_weight=weights)
    return export_trees(model, names)


def export_trees(model, names: tuple[str, ...]) -> BoostedTrees:
    """A fitted binary ``HistGradientBoostingClassifier`` as ``BoostedTrees`` (its node arrays, which
    scikit-learn keeps in ``_predictors``; ``test_boosted_trees`` checks the export against its own
    ``decision_function``)."""
    parts, roots, offset, depth = [], [], 0, 1
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        roots.append(offset)
        parts.append((nodes, offset))
        offset += len(nodes)
        depth = max(depth, int(nodes["depth"].max()) + 1)
    concat = np.concatenate([nodes for nodes, _ in parts])
    shift = np.concatenate([np.full(len(nodes), start) for nodes, start in parts])
    leaf = concat["is_leaf"].astype(bool)
    return BoostedTrees(tuple(names), float(np.ravel(model._baseline_prediction)[0]), np.asarray(roots, int),
                        concat["feature_idx"].astype(int), concat["num_threshold"].astype(float),
                        np.where(leaf, 0, concat["left"].astype(int) + shift),
                        np.where(leaf, 0, concat["right"].astype(int) + shift),
                        concat["missing_go_to_left"].astype(bool), leaf, concat["value"].astype(float), depth)
