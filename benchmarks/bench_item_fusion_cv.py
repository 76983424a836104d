"""Item fusion side by side: logistic against boosted item models, SKU-grouped 4-fold cross-validation.

    .venv/bin/python benchmarks/bench_item_fusion_cv.py out/evaluation/fusion_v2/scores.jsonl

Reads a study's scores (``evaluate`` writes ``scores.jsonl``), fits both fusions (shape check left out, as the
shipped model does) on three quarters of the SKUs and scores the fourth, over three seeded fold draws. Prints
the mean AUROC and recall at FPR 0.5 %, 1 % and 2 % of each; no assertions. The last two rows are the path of
an SKU without a gallery (classifier-only view model, logistic item model) fitted with and without the RANSAC
geometric score: what that signal adds.
"""
import sys

import numpy as np

from damage_perception.core.fusion import fit_fusion
from damage_perception.core.metrics import auroc
from damage_perception.data.study_scores import fusion_data, load_scores


def recall_at(damaged: np.ndarray, good: np.ndarray, fpr: float) -> float:
    return float(np.mean(damaged > np.quantile(good, 1 - fpr, method="higher")))


def without_gallery(item, model) -> float:
    """The item's probability as an SKU without a gallery gets it: classifier-only view and item models."""
    logits = [model.view_logit(signals, has_gallery=False) for signals in item.signals]
    return model.item_probability(logits, has_gallery=False)


def main(path: str) -> None:
    items = [i for i in load_scores(path) if i.signals and i.has_gallery]
    damaged = np.array([i.damaged for i in items])
    skus = np.array([i.sku for i in items])
    unique = np.unique(skus)
    figures: dict[str, list[tuple[float, ...]]] = {"logistic": [], "boosted": [], "no gallery, + geometric": [],
                                                   "no gallery, classifier only": []}
    for seed in range(3):
        fold_of = dict(zip(np.random.default_rng(seed).permutation(unique), np.arange(len(unique)) % 4))
        folds = np.array([fold_of[s] for s in skus])
        scores = {name: np.zeros(len(items)) for name in figures}
        for fold in range(4):
            train = fusion_data([i for i, f in zip(items, folds) if f != fold])
            test = [i for i, f in zip(items, folds) if f == fold]
            for name in figures:
                model = fit_fusion(train, boosted=name == "boosted", shape_check=False,
                                   geometric=name != "no gallery, classifier only")
                scores[name][folds == fold] = [i.item_probability(model) if not name.startswith("no gallery")
                                               else without_gallery(i, model) for i in test]
        for name, s in scores.items():
            figures[name].append((auroc(s[damaged], s[~damaged]),
                                  *(recall_at(s[damaged], s[~damaged], f) for f in (0.005, 0.01, 0.02))))
    print(f"{len(items)} items ({int(damaged.sum())} damaged) of {len(unique)} SKUs, 4 folds x 3 seeds")
    for name, rows in figures.items():
        mean = np.mean(rows, axis=0)
        print(f"{name:27s} AUROC {mean[0]:.3f}  recall at FPR 0.5% {mean[1]:.3f}  1% {mean[2]:.3f}  2% {mean[3]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
