"""The boosted item fusion per damage type, SKU-grouped cross-validation over one or more validation studies.

    .venv/bin/python benchmarks/bench_fusion_types_cv.py out/evaluation/fusion6_v5/scores.jsonl \
        out/evaluation/fusion6_blister_v5/scores.jsonl --folds 5 --seeds 3

With ``--extra-training F ...`` the items of those files join every fold's training data and are never
scored: the rows with and without them, printed side by side on the same folds, measure what more fusion data
adds (e.g. retired held-out studies).

Reads the scores ``evaluate`` wrote (each study scored by the same model), fits the boosted fusion as the
shipped model is fitted (no shape check, no RANSAC score) on the other folds' SKUs and scores the held-out
fold's, with and without damage types weighted equally (``--balance-types`` of ``train --refit-fusion``).
Prints, per variant, the mean over seeded fold draws of AUROC, recall at FPR 0.1 %, 0.2 %, 0.5 % and 1 % and
recall per damage type at ``--type-fpr`` (validation studies alone hold too few good items for 0.1 %: pool
retired held-out studies for it), and ``art``: the share of good items with printed damage-like artwork above
that point; no assertions. Signals the scores carry are read (the comparator's, the reference reading):
compare files scored with and without one to measure what it adds.
"""
import argparse

import numpy as np

from damage_perception.core.fusion import fit_fusion
from damage_perception.core.metrics import auroc, recall_at_fpr
from damage_perception.data.study_scores import fusion_data, load_scores

FPRS = (0.001, 0.002, 0.005, 0.01)   # 0.1 % means something only with several thousand good items


def cross_validated_scores(items, folds: int, seed: int, balance_types: bool, extra=()) -> np.ndarray:
    """Each item's fused probability from a fusion fitted on the folds its SKU is not in (and the ``extra``
    items, which are never scored)."""
    skus = np.array([i.sku for i in items])
    unique = np.unique(skus)
    fold_of = dict(zip(np.random.default_rng(seed).permutation(unique), np.arange(len(unique)) % folds))
    fold = np.array([fold_of[s] for s in skus])
    scores = np.zeros(len(items))
    for k in range(folds):
        train = fusion_data([i for i, f in zip(items, fold) if f != k] + list(extra))
        model = fit_fusion(train, boosted=True, shape_check=False, geometric=False, balance_types=balance_types)
        scores[fold == k] = [i.item_probability(model) for i, f in zip(items, fold) if f == k]
    return scores


def figures(items, scores: np.ndarray, type_fpr: float) -> dict[str, float]:
    damaged = np.array([i.damaged for i in items])
    types = np.array([i.damage for i in items])
    row = {"AUROC": auroc(scores[damaged], scores[~damaged])}
    for fpr in FPRS:
        row[f"{fpr:.1%}"] = recall_at_fpr(scores[damaged], scores[~damaged], fpr)[0]
    threshold = recall_at_fpr(scores[damaged], scores[~damaged], type_fpr)[1]
    for name in sorted(set(types[damaged])):
        row[name] = float(np.mean(scores[types == name] >= threshold))
    art = np.array([bool(i.printed_damage_art) and not i.damaged for i in items])
    row["art"] = float(np.mean(scores[art] >= threshold)) if art.any() else float("nan")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", help="scores.jsonl of validation studies scored by one model")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--type-fpr", type=float, default=0.005,
                        help="FPR at which recall per damage type is read (0.005 for validation studies alone; "
                             "0.001 once several thousand good items are pooled)")
    parser.add_argument("--items-weighted-only", action="store_true", help="skip the type-balanced fit")
    parser.add_argument("--extra-training", nargs="+", default=[], metavar="SCORES",
                        help="scores.jsonl whose items join every fold's training data and are never scored")
    args = parser.parse_args()
    items = [i for path in args.scores for i in load_scores(path) if i.signals and i.has_gallery]
    extra = [i for path in args.extra_training for i in load_scores(path) if i.signals and i.has_gallery]
    if {i.sku for i in extra} & {i.sku for i in items}:
        parser.error("--extra-training shares SKUs with the cross-validated studies")
    damaged = np.array([i.damaged for i in items])
    counts = {t: sum(i.damage == t for i in items) for t in sorted({i.damage for i in items if i.damaged})}
    print(f"{len(items)} items ({int(damaged.sum())} damaged: {counts}) of {len({i.sku for i in items})} SKUs, "
          f"{args.folds} SKU folds x {args.seeds} seeds; per type at FPR {args.type_fpr:.1%}")
    variants = [(balance, ()) for balance in ((False,) if args.items_weighted_only else (False, True))]
    if extra:
        print(f"and with {len(extra)} more items ({sum(i.damaged for i in extra)} damaged) in every fold's training")
        variants += [(balance, extra) for balance, _ in variants]
    for balance, more in variants:
        rows = [figures(items, cross_validated_scores(items, args.folds, seed, balance, more), args.type_fpr)
                for seed in range(args.seeds)]
        mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        name = ("types weighted equally" if balance else "items weighted equally") + (", + extra" if more else "")
        print(f"{name:32s} " + "  ".join(f"{key} {value:.4f}" for key, value in mean.items()))


if __name__ == "__main__":
    main()
