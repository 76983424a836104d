import json

import numpy as np
import pytest

from damage_perception.core.fusion import (
    CLASSIFIER_ONLY,
    READING_EXCESS,
    REFERENCE_READING,
    TYPICAL_READING,
    VIEW_SIGNALS,
    FusionData,
    FusionModel,
    LogisticModel,
    boosted_features,
    fit_fusion,
    fit_logistic,
    item_features,
    item_summary,
    type_balanced_weights,
    view_signal_vector,
)
from damage_perception.core.metrics import auroc
from damage_perception.core.registered_comparison import LEARNED_SIGNAL

INFORMATIVE = ("classifier", "anomaly", "shape_extra")


def view_signals(rng, shows):
    shift = 1.0 if shows else 0.0
    return {"classifier": rng.normal(-2.0 + 3.0 * shift), "anomaly": float(np.exp(rng.normal(0.0 + 0.8 * shift, 0.3))),
            "shape_extra": abs(rng.normal(0.01 + 0.05 * shift, 0.02)),
            "shape_missing": abs(rng.normal(0.01, 0.01)), "geometric": rng.uniform(0, 1)}  # last two: noise


def fusion_data(items=300, views=4, seed=0):
    rng = np.random.default_rng(seed)
    damaged = rng.random(items) < 0.3
    signals, shows = [], []
    for bad in damaged:
        show = np.zeros(views, bool)
        if bad:
            show[rng.choice(views, 2, replace=False)] = True  # damage on one side: seen by half of the views
        shows.append(show)
        signals.append([view_signals(rng, s) for s in show])
    return FusionData(signals, shows, damaged)


@pytest.fixture(scope="module")
def fitted():
    data = fusion_data()
    return data, fit_fusion(data)


def test_fit_gives_positive_weights_to_informative_signals(fitted):
    _, model = fitted
    coef = dict(zip(model.view.names, model.view.coef))
    assert model.view.names == VIEW_SIGNALS and model.view_classifier_only.names == CLASSIFIER_ONLY
    for name in INFORMATIVE:
        assert coef[name] > 0.5
        assert coef[name] > 2 * max(abs(coef["shape_missing"]), abs(coef["geometric"]))
    assert model.view_classifier_only.coef[0] > 0.5
    assert model.item.coef.sum() > 0


def test_fitted_item_probability_separates_damaged_items(fitted):
    _, model = fitted
    test = fusion_data(items=200, seed=1)
    probabilities = np.array([model.item_probability([model.view_logit(v) for v in views]) for views in test.signals])
    assert auroc(probabilities[test.damaged], probabilities[~test.damaged]) > 0.95
    assert model.fitted_prior == pytest.approx(np.mean(fusion_data().damaged))


def test_prior_shift_is_the_bayes_log_odds_shift(fitted):
    _, model = fitted
    logits = [-1.0, 0.5, 2.0]
    base = model.item_probability(logits)
    fp = model.fitted_prior
    for prior in (0.01, 0.1, 0.5):
        odds = base / (1 - base) * (prior / (1 - prior)) / (fp / (1 - fp))
        assert model.item_probability(logits, prior=prior) == pytest.approx(odds / (1 + odds), rel=1e-9)
    assert model.item_probability(logits, prior=fp) == pytest.approx(base, rel=1e-12)
    assert model.item_probability(logits, prior=0.01) < base < model.item_probability(logits, prior=0.5)


def test_round_trip_through_json_keeps_every_output(fitted):
    data, model = fitted
    again = FusionModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for views in data.signals[:20]:
        for has_gallery in (True, False):
            logits = [model.view_logit(v, has_gallery) for v in views]
            assert [again.view_logit(v, has_gallery) for v in views] == logits
            assert (again.item_logit(logits, has_gallery, prior=0.05)
                    == model.item_logit(logits, has_gallery, prior=0.05))
    assert again.view.names == model.view.names and again.fitted_prior == model.fitted_prior


def test_fit_raises_with_one_class():
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(np.random.default_rng(0).normal(size=(20, 2)), np.zeros(20), ("a", "b"))
    data = fusion_data(items=30)
    data.damaged[:] = False
    data.shows_damage = [np.zeros_like(s) for s in data.shows_damage]
    with pytest.raises(ValueError):
        fit_fusion(data)


def logistic(names, coef, intercept):
    return LogisticModel(tuple(names), np.zeros(len(names)), np.ones(len(names)), np.asarray(coef, float), intercept)


def test_without_a_gallery_the_classifier_only_models_are_used():
    model = FusionModel(view=logistic(VIEW_SIGNALS, [1, 5, 7, 11, 13], 0.0),
                        view_classifier_only=logistic(CLASSIFIER_ONLY, [2, 3], 0.5),
                        item=logistic(("max", "top2", "mean"), [1, 0, 0], 0.0),
                        item_classifier_only=logistic(("max", "top2", "mean"), [0, 0, 2], -1.0), fitted_prior=0.2)
    signals = {"classifier": 1.0, "geometric": 0.25}  # no gallery: no anomaly or shape signals at all
    assert model.view_logit(signals, has_gallery=False) == pytest.approx(2 * 1.0 + 3 * 0.25 + 0.5)
    full = {**signals, "anomaly": np.e, "shape_extra": 0.1, "shape_missing": 0.2}
    assert model.view_logit(full, has_gallery=True) == pytest.approx(1.0 + 5 * 1.0 + 7 * 0.1 + 11 * 0.2 + 13 * 0.25)
    assert model.view_logit({**full, "anomaly": 50.0}, has_gallery=False) == model.view_logit(full, has_gallery=False)
    assert model.item_logit([3.0, 1.0], has_gallery=False) == pytest.approx(2 * 2.0 - 1.0)
    assert model.item_logit([3.0, 1.0], has_gallery=True) == pytest.approx(3.0)


def test_signal_vector_takes_the_log_of_anomaly_and_item_summary_orders_views():
    vector = view_signal_vector({"anomaly": 0.0, "classifier": 2.0}, ("classifier", "anomaly"))
    np.testing.assert_allclose(vector, [2.0, np.log(1e-3)])
    np.testing.assert_allclose(item_summary(np.array([0.0, 3.0, -1.0, 1.0])), [3.0, 2.0, 0.75])


def registered_item(rng, kind):
    """Views of an item whose classifier is fooled by printed artwork ("art") or misses a missing part."""
    views = []
    for k in range(4):
        view = {"classifier": rng.normal(-2.0, 1.0), "anomaly": float(np.exp(rng.normal(0, 0.2))),
                "shape_extra": 0.01, "shape_missing": 0.01, "geometric": 0.1,
                "reg_missing": abs(rng.normal(0.05, 0.03)), "reg_extra": abs(rng.normal(0.1, 0.05)),
                "reg_colour": 1.0, "reg_feature": 1.0, "reg_overlap": 0.85}
        if kind == "art":
            view["classifier"] = rng.normal(3.0, 1.0)
        if kind == "missing" and k < 2:
            view["reg_missing"] = rng.uniform(0.4, 0.9)
        views.append(view)
    return views


def test_boosted_item_model_ranks_missing_parts_above_printed_artwork():
    rng = np.random.default_rng(3)
    kinds = rng.choice(["good", "art", "missing"], size=600, p=[0.5, 0.25, 0.25])
    data = FusionData([registered_item(rng, k) for k in kinds], [np.array([k == "missing"] * 2 + [False] * 2)
                                                                   for k in kinds], kinds == "missing")
    model = fit_fusion(data, boosted=True)
    again = FusionModel.from_dict(json.loads(json.dumps(model.to_dict())))
    test_kinds = rng.choice(["good", "art", "missing"], size=300, p=[0.5, 0.25, 0.25])
    test = [registered_item(rng, k) for k in test_kinds]
    boosted = np.array([again.item_probability([again.view_logit(v) for v in views], signals=views) for views in test])
    damaged = test_kinds == "missing"
    assert again.boosted is not None and "reg_missing" in again.view.names
    assert auroc(boosted[damaged], boosted[~damaged]) > 0.97
    assert auroc(boosted[damaged], boosted[test_kinds == "art"]) > 0.97
    no_gallery = again.item_probability([again.view_logit(v, False) for v in test[0]], has_gallery=False,
                                        signals=test[0])
    assert no_gallery == pytest.approx(again.item_probability([again.view_logit(v, False) for v in test[0]],
                                                              has_gallery=False))


def test_fusion_fitted_without_the_geometric_score_does_not_read_it(fitted):
    data, model = fitted
    without = fit_fusion(data, geometric=False)
    assert model.reads_geometric and not without.reads_geometric
    assert without.view.names == tuple(n for n in VIEW_SIGNALS if n != "geometric")
    assert without.view_classifier_only.names == ("classifier",)
    # a view's geometric score changes the model fitted with it, not the one fitted without
    view = dict.fromkeys(VIEW_SIGNALS, 0.5)
    louder = {**view, "geometric": 5.0}
    assert without.view_logit(louder) == without.view_logit(view) and model.view_logit(louder) != model.view_logit(view)


def test_a_boosted_model_reads_the_comparator_only_when_fitted_with_it():
    rng = np.random.default_rng(5)
    kinds = rng.choice(["good", "missing"], size=400)
    items = [registered_item(rng, k) for k in kinds]
    shows = [np.array([k == "missing"] * 2 + [False] * 2) for k in kinds]
    before = fit_fusion(FusionData(items, shows, kinds == "missing"), boosted=True)
    for views, kind in zip(items, kinds):   # a comparator that sees the missing part in its two views
        for k, view in enumerate(views):
            view[LEARNED_SIGNAL] = rng.normal(4.0 if kind == "missing" and k < 2 else -4.0, 0.5)
    after = fit_fusion(FusionData(items, shows, kinds == "missing"), boosted=True)
    assert LEARNED_SIGNAL not in before.view.names and LEARNED_SIGNAL in after.view.names
    assert [f for f in boosted_features(after.boosted) if f[0] == LEARNED_SIGNAL] == \
        [(LEARNED_SIGNAL, "max", 1), (LEARNED_SIGNAL, "top2", 1), (LEARNED_SIGNAL, "mean", 1)]
    views = items[list(kinds).index("good")]
    louder = [{**view, LEARNED_SIGNAL: 8.0} for view in views]
    assert before.item_logit([], signals=louder) == before.item_logit([], signals=views)
    assert after.item_logit([], signals=louder) > after.item_logit([], signals=views)


def artwork_items(rng, count: int) -> tuple[list, np.ndarray, np.ndarray]:
    """Items whose classifier reads printed artwork ("art") as loudly as real damage ("damaged"); the SKU's
    reference reading is loud only for the art (its pristine references show the same print)."""
    kinds = rng.choice(["good", "art", "damaged"], size=count, p=[0.5, 0.25, 0.25])
    items = []
    for kind in kinds:
        reading = rng.normal(3.0, 1.0) if kind == "art" else rng.normal(-2.0, 1.0)
        views = registered_item(rng, "art" if kind != "good" else "good")
        items.append([{**view, REFERENCE_READING: reading} for view in views])
    return items, kinds, kinds == "damaged"


def test_the_reference_reading_tells_printed_artwork_from_damage_the_classifier_reads_alike():
    rng = np.random.default_rng(11)
    items, kinds, damaged = artwork_items(rng, 800)
    shows = [np.array([bool(d)] * 4) for d in damaged]
    without = [[{k: v for k, v in view.items() if k != REFERENCE_READING} for view in views] for views in items]
    blind = fit_fusion(FusionData(without, shows, damaged), boosted=True)
    reading = fit_fusion(FusionData(items, shows, damaged), boosted=True)
    assert not blind.reads_reference and reading.reads_reference
    assert [f for f in boosted_features(reading.boosted) if f[0] in (READING_EXCESS, REFERENCE_READING)] == \
        [(READING_EXCESS, "max", 1), (REFERENCE_READING, "max", -1)]
    test, test_kinds, test_damaged = artwork_items(np.random.default_rng(12), 400)
    art = test_kinds == "art"

    def damage_over_art(model, views_of):
        scores = np.array([model.item_logit([], signals=views_of(views)) for views in test])
        return auroc(scores[test_damaged], scores[art])

    assert damage_over_art(reading, lambda views: views) > 0.95
    assert damage_over_art(blind, lambda views: [{k: v for k, v in view.items() if k != REFERENCE_READING}
                                                  for view in views]) < 0.7


def test_a_view_without_a_reference_reading_reads_as_a_typical_gallery():
    view = {"classifier": 2.5}
    features = ((READING_EXCESS, "max", 1), (REFERENCE_READING, "max", -1))
    assert item_features([view], features).tolist() == pytest.approx([2.5 - TYPICAL_READING, TYPICAL_READING])
    assert item_features([{**view, REFERENCE_READING: 4.0}], features).tolist() == pytest.approx([-1.5, 4.0])


def test_type_balanced_weights_give_every_damage_type_the_same_share():
    damaged = np.array([False, False, True, True, True, True])
    types = ["pristine", "pristine", "spill", "spill", "spill", "missing_part"]
    weights = type_balanced_weights(damaged, types)
    assert weights[~damaged].tolist() == [1.0, 1.0]
    assert weights[damaged].sum() == pytest.approx(4.0)   # the damaged items' total, hence the prior, is kept
    assert weights[2:5].sum() == pytest.approx(weights[5]) == pytest.approx(2.0)


def typed_item(rng, kind):
    """A registered item: a spill shows loudly in the classifier, a missing part faintly in reg_missing."""
    views = registered_item(rng, "art" if kind in ("art", "spill") else "good")
    if kind == "spill":
        views[0]["classifier"] = rng.normal(6.0, 1.0)
    if kind == "missing":
        for view in views[:2]:
            view["reg_missing"] = rng.normal(0.16, 0.04)
    return views


def test_balancing_damage_types_lifts_a_rare_type_above_the_good_items_tail():
    rng = np.random.default_rng(1)
    kinds = rng.choice(["good", "art", "spill", "missing"], size=900, p=[0.6, 0.2, 0.17, 0.03])
    items = [typed_item(rng, k) for k in kinds]
    types = ["pristine" if k in ("good", "art") else k for k in kinds]
    damaged = np.isin(kinds, ["spill", "missing"])
    shows = [np.array([bad] * 2 + [False] * 2) for bad in damaged]
    with pytest.raises(ValueError, match="damage types"):
        fit_fusion(FusionData(items, shows, damaged), boosted=True, balance_types=True)

    def margin(model) -> float:   # the median missing part's log-odds over the good items' 99th percentile
        logits = np.array([model.item_logit([], signals=views) for views in items])
        return float(np.median(logits[kinds == "missing"]) - np.quantile(logits[~damaged], 0.99))

    plain = margin(fit_fusion(FusionData(items, shows, damaged, types), boosted=True))
    balanced = margin(fit_fusion(FusionData(items, shows, damaged, types), boosted=True, balance_types=True))
    assert balanced > plain + 1.0   # 25 missing parts among 900 items: measured 3.8 -> 5.9
