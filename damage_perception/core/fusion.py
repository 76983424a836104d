"""Fusion of the per-view signals and of the views of an item, fitted on validation data.

Per view, a logistic regression over the view's signals (classifier log-odds, gallery anomaly, 3D extra and
missing shares, geometric score) gives the log-odds that the view shows damage. Per item, a second logistic
regression over summaries of its views' log-odds (largest, mean of the two largest, mean) gives the
probability that the item is damaged: a learned log-odds combination that does not assume the views are
independent (noisy-OR would, and views of one item are not). The item model is fitted at the validation
set's damage prior; ``item_probability(prior=...)`` moves it to another prior (Bayes: shift the log-odds).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEW_SIGNALS = ("classifier", "anomaly", "shape_extra", "shape_missing", "geometric")
CLASSIFIER_ONLY = ("classifier", "geometric")   # what is left without a gallery for the SKU


@dataclass
class LogisticModel:
    """A fitted logistic regression on standardised inputs (numpy only at inference)."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for rows of ``x`` (N, len(names)) or one row."""
        return ((np.asarray(x, float) - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept)}

    @classmethod
    def from_dict(cls, data: dict) -> LogisticModel:
        return cls(tuple(data["names"]), np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], balanced: bool = True,
                 c: float = 1.0) -> LogisticModel:
    """L2-regularised logistic regression (scikit-learn's lbfgs) on standardised ``x``."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, float)
    y = np.asarray(y, int)
    if len(np.unique(y)) < 2:
        raise ValueError(f"need both classes to fit, got {np.bincount(y, minlength=2).tolist()}")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=1000)
    model.fit((x - mean) / scale, y)
    return LogisticModel(names, mean, scale, model.coef_[0].astype(float), float(model.intercept_[0]))


def view_signal_vector(signals: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    """The fusion input of one view, in ``names`` order; anomaly enters as its log (a ratio to nominal)."""
    values = []
    for name in names:
        value = float(signals[name])
        values.append(np.log(max(value, 1e-3)) if name == "anomaly" else value)
    return np.asarray(values, float)


def item_summary(view_logits: np.ndarray) -> np.ndarray:
    """Item-level inputs from its views' log-odds: largest, mean of the two largest, mean."""
    ordered = np.sort(np.asarray(view_logits, float))[::-1]
    if ordered.size == 0:
        return np.zeros(3)
    return np.array([ordered[0], ordered[:2].mean(), ordered.mean()])


@dataclass
class FusionModel:
    """View fusion (with and without a gallery) and item calibration."""

    view: LogisticModel
    view_classifier_only: LogisticModel
    item: LogisticModel
    item_classifier_only: LogisticModel
    fitted_prior: float          # share of damaged items in the data the item models were fitted on

    def view_logit(self, signals: dict[str, float], has_gallery: bool = True) -> float:
        model = self.view if has_gallery else self.view_classifier_only
        return float(model.logit(view_signal_vector(signals, model.names)))

    def item_logit(self, view_logits: list[float], has_gallery: bool = True, prior: float | None = None) -> float:
        """Calibrated log-odds that the item is damaged, at ``prior`` (default: the fitted prior)."""
        model = self.item if has_gallery else self.item_classifier_only
        logit = float(model.logit(item_summary(np.asarray(view_logits))))
        if prior is not None:
            logit += _log_odds(prior) - _log_odds(self.fitted_prior)
        return logit

    def item_probability(self, view_logits: list[float], has_gallery: bool = True,
                         prior: float | None = None) -> float:
        return float(1.0 / (1.0 + np.exp(-self.item_logit(view_logits, has_gallery, prior))))

    def to_dict(self) -> dict:
        return {"view": self.view.to_dict(), "view_classifier_only": self.view_classifier_only.to_dict(),
                "item": self.item.to_dict(), "item_classifier_only": self.item_classifier_only.to_dict(),
                "fitted_prior": self.fitted_prior}

    @classmethod
    def from_dict(cls, data: dict) -> FusionModel:
        return cls(LogisticModel.from_dict(data["view"]), LogisticModel.from_dict(data["view_classifier_only"]),
                   LogisticModel.from_dict(data["item"]), LogisticModel.from_dict(data["item_classifier_only"]),
                   float(data["fitted_prior"]))


def _log_odds(p: float) -> float:
    p = float(np.clip(p, 1e-9, 1 - 1e-9))
    return float(np.log(p / (1 - p)))


@dataclass
class FusionData:
    """Validation data to fit fusion on: per view its signals and labels, grouped by item."""

    signals: list[list[dict[str, float]]]   # per item, per view
    shows_damage: list[np.ndarray]          # per item, per view bool
    damaged: np.ndarray                     # per item bool


def fit_fusion(data: FusionData) -> FusionModel:
    """Fit the view models on views that show damage against views of pristine items (views of damaged
    items that do not show it are left out: they are neither), then the item models on all items."""
    def view_models(names: tuple[str, ...]) -> LogisticModel:
        rows, labels = [], []
        for signals, shows, damaged in zip(data.signals, data.shows_damage, data.damaged):
            for view, show in zip(signals, shows):
                if damaged and not show:
                    continue
                rows.append(view_signal_vector(view, names))
                labels.append(int(damaged))
        return fit_logistic(np.array(rows), np.array(labels), names)

    def item_model(view_model: LogisticModel) -> LogisticModel:
        rows = [item_summary(view_model.logit(np.array([view_signal_vector(v, view_model.names) for v in signals])))
                for signals in data.signals]
        return fit_logistic(np.array(rows), data.damaged.astype(int), ("max", "top2", "mean"), balanced=False)

    full, partial = view_models(VIEW_SIGNALS), view_models(CLASSIFIER_ONLY)
    return FusionModel(full, partial, item_model(full), item_model(partial), float(np.mean(data.damaged)))
