"""Fusion of the per-view signals and of the views of an item, fitted on validation data.

Per view, a logistic regression over the view's signals (classifier log-odds, gallery anomaly, 3D extra and
missing shares, geometric score) gives the log-odds that the view shows damage. Per item, a second logistic
regression over summaries of its views' log-odds (largest, mean of the two largest, mean) gives the
probability that the item is damaged: a learned log-odds combination that does not assume the views are
independent (noisy-OR would, and views of one item are not). The item model is fitted at the validation
set's damage prior; ``item_probability(prior=...)`` moves it to another prior (Bayes: shift the log-odds).

With a gallery, a model may carry a **boosted item model** instead (``core.boosted_trees``): monotone
gradient-boosted trees over summaries of every signal across the views (``ITEM_FEATURES``), which use what
the logistic item model cannot (a missing part's registered residual with a calm classifier, printed
artwork's loud classifier with a pristine reference comparison). It needs the views' signals, so callers
pass them (``item_logit(..., signals=)``); without them, or without a gallery, the logistic models answer.

The boosted model may also read the **reference reading** (``REFERENCE_READING``): the classifier's largest
log-odds over the SKU's own gallery views, i.e. how damaged this product's pristine artwork looks to the
classifier. A printed splash or fake tear reads as damage on the item and on its references alike, so the
item's classifier log-odds *above* that reading (``READING_EXCESS``, derived here per view) is what the
classifier adds for this SKU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.boosted_trees import BoostedTrees, fit_boosted_trees
from damage_perception.core.registered_comparison import LEARNED_SIGNAL, PRISTINE

VIEW_SIGNALS = ("classifier", "anomaly", "shape_extra", "shape_missing", "geometric")
CLASSIFIER_ONLY = ("classifier", "geometric")   # what is left without a gallery for the SKU
REGISTERED_SIGNALS = ("reg_missing", "reg_extra", "reg_colour", "reg_feature", "reg_beside")
REFERENCE_READING = "classifier_reference"   # the classifier's largest log-odds over the SKU's gallery views
READING_EXCESS = "classifier_excess"         # a view's classifier log-odds less its SKU's reference reading
# A gallery without its views' crops has no reading: it enters as the median reading of the SKUs of v9's
# five fusion studies (780 galleries; quartiles -1.2 and 1.3).
TYPICAL_READING = -0.18
# What a view that lacks a gallery signal enters the fusion with (as ViewSignals.as_dict fills them in).
PRISTINE_SIGNALS = {"anomaly": 1.0, "shape_extra": 0.0, "shape_missing": 0.0, **PRISTINE, LEARNED_SIGNAL: 0.0,
                    REFERENCE_READING: TYPICAL_READING}

# (signal, summary over the item's views, monotone): summaries are "max", "top2" (mean of the two largest),
# "mean" and "min"; monotone +1 = more of it is never evidence against damage, -1 = never evidence for it,
# 0 = free.
ITEM_FEATURES: tuple[tuple[str, str, int], ...] = (
    ("classifier", "max", 1), ("classifier", "top2", 1), ("classifier", "mean", 1),
    ("anomaly", "max", 1), ("anomaly", "mean", 1),
    ("shape_extra", "max", 1), ("shape_missing", "max", 1),
    ("reg_missing", "max", 1), ("reg_missing", "top2", 1), ("reg_extra", "max", 1), ("reg_extra", "top2", 1),
    ("reg_colour", "max", 1), ("reg_colour", "top2", 1), ("reg_feature", "max", 1), ("reg_feature", "top2", 1),
    ("reg_beside", "max", 1), ("reg_beside", "top2", 1), ("reg_overlap", "min", 0),
    # the learned comparator's, where the model has one (fits without it leave these out)
    (LEARNED_SIGNAL, "max", 1), (LEARNED_SIGNAL, "top2", 1), (LEARNED_SIGNAL, "mean", 1),
    # the reference reading's, where the data has it: artwork the SKU's own references read as damaged
    (READING_EXCESS, "max", 1), (REFERENCE_READING, "max", -1),
)


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
        value = float(signals[name] if name in signals else PRISTINE_SIGNALS[name])
        values.append(np.log(max(value, 1e-3)) if name == "anomaly" else value)
    return np.asarray(values, float)


def _summary(values: np.ndarray, how: str) -> float:
    ordered = np.sort(values)[::-1]
    if how == "max":
        return float(ordered[0])
    if how == "top2":
        return float(ordered[:2].mean())
    if how == "mean":
        return float(ordered.mean())
    return float(ordered[-1])


def item_features(signals: list[dict[str, float]],
                  features: tuple[tuple[str, str, int], ...] = ITEM_FEATURES) -> np.ndarray:
    """The boosted item model's inputs (``features`` order, (signal, summary, monotone) as ``ITEM_FEATURES``)
    from the item's views' signals; a signal a view lacks enters as its pristine value, anomaly as its log."""
    row = []
    for name, how, _ in features:
        values = np.array([_view_value(view, name) for view in signals] or [np.nan])
        if name == "anomaly":
            values = np.log(np.maximum(values, 1e-3))
        row.append(_summary(values, how))
    return np.asarray(row, float)


def _view_value(view: dict[str, float], name: str) -> float:
    """One view's ``name`` signal (its pristine value when absent; ``READING_EXCESS`` derived)."""
    if name == READING_EXCESS:
        return float(view["classifier"]) - _view_value(view, REFERENCE_READING)
    return float(view.get(name, PRISTINE_SIGNALS.get(name, 0.0)))


def item_summary(view_logits: np.ndarray) -> np.ndarray:
    """Item-level inputs from its views' log-odds: largest, mean of the two largest, mean."""
    logits = np.asarray(view_logits, float)
    if logits.size == 0:
        return np.zeros(3)
    return np.array([_summary(logits, how) for how in ("max", "top2", "mean")])


@dataclass
class FusionModel:
    """View fusion (with and without a gallery) and item calibration."""

    view: LogisticModel
    view_classifier_only: LogisticModel
    item: LogisticModel
    item_classifier_only: LogisticModel
    fitted_prior: float          # share of damaged items in the data the item models were fitted on
    boosted: BoostedTrees | None = None   # the item model with a gallery, when fitted (needs the signals)

    @property
    def reads_reference(self) -> bool:
        """Whether the boosted item model reads the gallery's reference reading (``REFERENCE_READING``)."""
        return self.boosted is not None and any(name.startswith((REFERENCE_READING, READING_EXCESS))
                                                for name in self.boosted.names)

    @property
    def reads_geometric(self) -> bool:
        """Whether a view model reads the RANSAC geometric score (models fitted with ``geometric=False`` do not)."""
        return "geometric" in self.view.names or "geometric" in self.view_classifier_only.names

    def view_logit(self, signals: dict[str, float], has_gallery: bool = True) -> float:
        model = self.view if has_gallery else self.view_classifier_only
        return float(model.logit(view_signal_vector(signals, model.names)))

    def item_logit(self, view_logits: list[float], has_gallery: bool = True, prior: float | None = None,
                   signals: list[dict[str, float]] | None = None) -> float:
        """Calibrated log-odds that the item is damaged, at ``prior`` (default: the fitted prior): the boosted
        item model when it is fitted, there is a gallery and the views' ``signals`` are given, else the
        logistic model over the views' log-odds."""
        if self.boosted is not None and has_gallery and signals:
            logit = float(self.boosted.logit(item_features(signals, boosted_features(self.boosted))))
        else:
            model = self.item if has_gallery else self.item_classifier_only
            logit = float(model.logit(item_summary(np.asarray(view_logits))))
        if prior is not None:
            logit += _log_odds(prior) - _log_odds(self.fitted_prior)
        return logit

    def item_probability(self, view_logits: list[float], has_gallery: bool = True,
                         prior: float | None = None, signals: list[dict[str, float]] | None = None) -> float:
        return float(1.0 / (1.0 + np.exp(-self.item_logit(view_logits, has_gallery, prior, signals))))

    def to_dict(self) -> dict:
        return {"view": self.view.to_dict(), "view_classifier_only": self.view_classifier_only.to_dict(),
                "item": self.item.to_dict(), "item_classifier_only": self.item_classifier_only.to_dict(),
                "fitted_prior": self.fitted_prior, "boosted": self.boosted.to_dict() if self.boosted else None}

    @classmethod
    def from_dict(cls, data: dict) -> FusionModel:
        boosted = BoostedTrees.from_dict(data["boosted"]) if data.get("boosted") else None
        return cls(LogisticModel.from_dict(data["view"]), LogisticModel.from_dict(data["view_classifier_only"]),
                   LogisticModel.from_dict(data["item"]), LogisticModel.from_dict(data["item_classifier_only"]),
                   float(data["fitted_prior"]), boosted)


def _log_odds(p: float) -> float:
    p = float(np.clip(p, 1e-9, 1 - 1e-9))
    return float(np.log(p / (1 - p)))


@dataclass
class FusionData:
    """Validation data to fit fusion on: per view its signals and labels, grouped by item."""

    signals: list[list[dict[str, float]]]   # per item, per view
    shows_damage: list[np.ndarray]          # per item, per view bool
    damaged: np.ndarray                     # per item bool
    damage_types: list[str] | None = None   # per item ("pristine" for good ones), for type weighting


def type_balanced_weights(damaged: np.ndarray, damage_types: list[str]) -> np.ndarray:
    """Item weights under which every damage type carries the same share of the damaged items' total weight
    (unchanged, so the fitted prior is too); good items weigh 1. Without it the fit serves the common types
    (spill, crush) and a rare one such as a missing part is left to the far tail the operating point cuts."""
    weights = np.ones(len(damaged))
    kinds = np.asarray(damage_types)
    present = sorted(set(kinds[damaged]))
    for name in present:
        among = damaged & (kinds == name)
        weights[among] = damaged.sum() / (len(present) * among.sum())
    return weights


def boosted_features(model: BoostedTrees) -> tuple[tuple[str, str, int], ...]:
    """The (signal, summary, monotone) inputs a boosted item model was fitted on, from its names
    (``signal_summary``): models fitted before a signal existed keep reading only theirs."""
    monotone = {(name, how): m for name, how, m in ITEM_FEATURES}
    pairs = [tuple(name.rsplit("_", 1)) for name in model.names]
    return tuple((name, how, monotone.get((name, how), 0)) for name, how in pairs)


def fit_boosted_item_model(data: FusionData, shape_check: bool = True, balance_types: bool = False) -> BoostedTrees:
    """The boosted item model (``ITEM_FEATURES``; the comparator's and the reference reading's only when the
    data has them) fitted on every item, at the data's damage prior; without ``shape_check`` the shape features
    are held at their pristine value (a constant is never split on, so the model ignores them, as the node will
    not compute them); with ``balance_types`` every damage type weighs the same (``type_balanced_weights``)."""
    if balance_types and data.damage_types is None:
        raise ValueError("balance_types needs the items' damage types")

    def present(name: str) -> bool:
        return any(name in view for signals in data.signals for view in signals)

    absent = {name for name in (LEARNED_SIGNAL, REFERENCE_READING) if not present(name)}
    if REFERENCE_READING in absent:
        absent.add(READING_EXCESS)
    features = tuple(f for f in ITEM_FEATURES if f[0] not in absent)
    x = np.array([item_features(signals, features) for signals in data.signals])
    if not shape_check:
        x[:, [k for k, (name, _, _) in enumerate(features) if name.startswith("shape_")]] = 0.0
    names = tuple(f"{name}_{how}" for name, how, _ in features)
    weights = type_balanced_weights(data.damaged, data.damage_types) if balance_types else None
    return fit_boosted_trees(x, data.damaged.astype(int), names, tuple(m for _, _, m in features), weights=weights)


def fit_fusion(data: FusionData, boosted: bool = False, shape_check: bool = True,
               geometric: bool = True, balance_types: bool = False) -> FusionModel:
    """Fit the view models on views that show damage against views of pristine items (views of damaged
    items that do not show it are left out: they are neither), then the item models on all items (with
    ``boosted``, the boosted item model too; without ``shape_check`` the shape signals are left out, without
    ``geometric`` the RANSAC geometric score: a node running the model then does not compute it)."""
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

    registered = any("reg_missing" in view for signals in data.signals for view in signals)
    learned = any(LEARNED_SIGNAL in view for signals in data.signals for view in signals)
    names = VIEW_SIGNALS + REGISTERED_SIGNALS if registered else VIEW_SIGNALS
    names += (LEARNED_SIGNAL,) if learned else ()
    if not shape_check:
        names = tuple(n for n in names if not n.startswith("shape_"))
    without = () if geometric else ("geometric",)
    full = view_models(tuple(n for n in names if n not in without))
    partial = view_models(tuple(n for n in CLASSIFIER_ONLY if n not in without))
    return FusionModel(full, partial, item_model(full), item_model(partial), float(np.mean(data.damaged)),
                       fit_boosted_item_model(data, shape_check, balance_types) if boosted else None)
