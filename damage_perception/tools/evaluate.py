"""`damage-perception evaluate`: item-level detection figures of a model on a held-out study.

Prints and writes ``evaluation.json``: AUROC, recall at FPR 0.1 % and 1 % (read off the good items, so the
study needs >= 1000 / 0.1 % good items for the first to be measured rather than extrapolated), per-type
recall and missing-part recall at the 0.1 % point, false diverts on printed damage-like artwork, views per
item, per-view latency, the same figures for each signal alone (what fusion adds), and a ROC and a
reliability plot. ``--comparator-tail N`` draws, for the good views of highest comparator score, the view,
the reference aligned into it and the comparator's change map: where a pristine item reads as changed. With
``--anomalib`` it also scores the same crops with anomalib's PatchCore on the same backbone weights and
reports AUROC and latency of both.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
import yaml

from damage_perception.baselines.anomalib_comparison import compare_with_anomalib
from damage_perception.core.metrics import auroc, recall_at_fpr, reliability, roc_curve
from damage_perception.data.study import Study
from damage_perception.data.study_scores import (
    add_reference_readings,
    gallery_of,
    load_scores,
    save_scores,
    score_study,
)
from damage_perception.tools.model_file import open_model

TARGET_FPRS = (0.001, 0.01)
SIGNALS_ALONE = ("classifier", "anomaly", "shape_extra", "shape_missing", "geometric", "reg_missing", "reg_extra",
                 "reg_colour", "reg_feature", "reg_learned")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="held-out study folder (SKUs and seeds not used in training)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--out", type=Path, default=Path("out/evaluation"), help="folder for JSON, scores, plots")
    parser.add_argument("--scores", type=Path, default=None,
                        help="reuse a scores.jsonl of this study and model instead of scoring again")
    parser.add_argument("--add-reference-readings", action="store_true",
                        help="with --scores written before the gallery's reference reading existed: add it (rebuilds "
                             "each SKU's gallery and runs the classifier on it, not the items) and write the "
                             "completed scores.jsonl to --out")
    parser.add_argument("--config", type=Path, default=None,
                        help="node YAML whose decision.divert_threshold (from calibrate) is also evaluated")
    parser.add_argument("--anomalib", action="store_true", help="also run anomalib's PatchCore on the same crops")
    parser.add_argument("--compare-model", type=Path, default=None, metavar="MODEL",
                        help="also evaluate this (e.g. the previous shipped) model on the same items, side by side; "
                             "with the same head and comparator its fusion is applied to the same scores")
    parser.add_argument("--compare-scores", type=Path, default=None, metavar="SCORES",
                        help="with --compare-model: that model's scores.jsonl of this study (from its own "
                             "`evaluate`) instead of scoring the study again with it")
    parser.add_argument("--comparator-tail", type=int, default=0, metavar="N",
                        help="draw comparator_tail.png: the N good views of highest comparator score, each with its "
                             "aligned reference and the comparator's change map (rebuilds their SKUs' galleries)")
    parser.add_argument("--tail", type=int, default=24,
                        help="good items of highest score drawn in tail.png (their most suspicious view)")
    parser.add_argument("--no-progress", action="store_true")


def item_scores_by_signal(items, fusion) -> dict[str, np.ndarray]:
    """Item scores: the fused probability, and each signal alone (its largest over the item's views)."""
    scores = {"fused": np.asarray([item.item_probability(fusion) for item in items])}
    for name in SIGNALS_ALONE:
        scores[name] = np.asarray([max((s.get(name, -math.inf) for s in item.signals), default=-math.inf)
                                   for item in items])
    return {name: values for name, values in scores.items() if np.isfinite(values).any()}


def operating_point(scores: np.ndarray, damaged: np.ndarray, target_fpr: float) -> dict:
    recall, threshold = recall_at_fpr(scores[damaged], scores[~damaged], target_fpr)
    return {"target_fpr": target_fpr, "recall": recall, "threshold": threshold,
            "measured_fpr": float(np.mean(scores[~damaged] >= threshold)),
            "good_items": int((~damaged).sum()), "measurable": bool((~damaged).sum() * target_fpr >= 1)}


def summarise(items, fusion, config_threshold: float | None = None) -> dict:
    """Every figure of the evaluation (JSON-ready)."""
    damaged = np.array([i.damaged for i in items])
    scores = item_scores_by_signal(items, fusion)
    fused = scores["fused"]
    point = operating_point(fused, damaged, 0.001)
    flagged = fused >= point["threshold"]
    types = sorted({i.damage for i in items if i.damaged})
    art = np.array([bool(i.printed_damage_art) for i in items])
    kinds = sorted({i.kind for i in items})
    timings = {stage: float(np.median([t[stage] for i in items for t in i.timings if stage in t]) * 1000)
               for stage in ("classifier", "anomaly", "shape", "registered")
               if any(stage in t for i in items for t in i.timings)}
    summary = {
        "items": len(items), "good_items": int((~damaged).sum()), "damaged_items": int(damaged.sum()),
        "auroc": auroc(fused[damaged], fused[~damaged]),
        "operating_points": [operating_point(fused, damaged, f) for f in TARGET_FPRS],
        "per_type_recall_at_fpr_0.001": {t: _rate(flagged, np.array([i.damage == t for i in items])) for t in types},
        "missing_part_recall_at_fpr_0.001": _rate(flagged, np.array([i.damage == "missing_part" for i in items])),
        "printed_art_false_divert_rate_at_fpr_0.001": _rate(flagged, art & ~damaged),
        "printed_art_good_items": int((art & ~damaged).sum()),
        "per_kind": {k: {"auroc": auroc(fused[damaged & (kind == k)], fused[~damaged & (kind == k)]),
                         "recall_at_fpr_0.001": _rate(flagged, damaged & (kind == k)),
                         "false_divert_rate_at_fpr_0.001": _rate(flagged, ~damaged & (kind == k))}
                     for k in kinds for kind in [np.array([i.kind for i in items])]},
        "mean_views": float(np.mean([len(i.signals) for i in items])),
        "per_view_latency_ms_median": timings,
        "signals_alone": {name: {"auroc": auroc(s[damaged], s[~damaged]),
                                 "recall_at_fpr_0.001": operating_point(s, damaged, 0.001)["recall"],
                                 "recall_at_fpr_0.01": operating_point(s, damaged, 0.01)["recall"]}
                          for name, s in scores.items()},
    }
    if config_threshold is not None:
        summary["at_config_threshold"] = {"threshold": config_threshold,
                                          "recall": _rate(fused >= config_threshold, damaged),
                                          "false_divert_rate": _rate(fused >= config_threshold, ~damaged)}
    return summary


def _rate(flags: np.ndarray, among: np.ndarray) -> float:
    return float(flags[among].mean()) if among.any() else math.nan


def plot_roc(items, fusion, path: Path) -> Path:
    """ROC curves (log false-positive axis) of the fused score and of each signal alone."""
    matplotlib.use("Agg")


    damaged = np.array([i.damaged for i in items])
    figure, axis = plt.subplots(figsize=(7, 5))
    for name, scores in item_scores_by_signal(items, fusion).items():
        fpr, tpr = roc_curve(scores[damaged], scores[~damaged])
        axis.step(np.maximum(fpr, 1e-4), tpr, where="post", label=name, linewidth=2.5 if name == "fused" else 1.2)
    for target in TARGET_FPRS:
        axis.axvline(target, color="grey", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlim(1e-4, 1)
    axis.set_ylim(0, 1.01)
    axis.set_xlabel("false-positive rate (good items diverted)")
    axis.set_ylabel("recall (damaged items diverted)")
    axis.set_title(f"Item-level ROC: {int((~damaged).sum())} good, {int(damaged.sum())} damaged held-out items")
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_reliability(items, fusion, path: Path) -> Path:
    """Predicted damage probability (moved to the study's damage prior) against the observed frequency."""
    matplotlib.use("Agg")


    damaged = np.array([i.damaged for i in items])
    prior = float(damaged.mean())
    probabilities = [fusion.item_probability([fusion.view_logit(s) for s in i.signals], prior=prior,
                                             signals=i.signals)
                     if i.signals else 0.0 for i in items]
    bins = reliability(probabilities, damaged, bins=10)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.plot([b[0] for b in bins], [b[1] for b in bins], marker="o")
    for mean, observed, count in bins:
        axis.annotate(str(count), (mean, observed), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axis.set_xlabel("predicted probability of damage")
    axis.set_ylabel("observed share damaged")
    axis.set_title(f"Reliability (prior {prior:.3f}; items per bin)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def config_threshold(path: Path | None) -> float | None:
    if path is None:
        return None

    params = yaml.safe_load(path.read_text())["damage_perception"]["ros__parameters"]
    return float(params["decision"]["divert_threshold"])


def run(args: argparse.Namespace) -> int:
    model = open_model(args.model, "evaluate")
    if model is None:
        return 2
    if model.fusion is None:
        print("evaluate: the model has no fitted fusion (train it with damage-perception train)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    study = Study(args.study)   # its index only: episodes are read as they are needed
    if args.add_reference_readings and not args.scores:
        print("evaluate: --add-reference-readings completes the --scores of an earlier run; give it", file=sys.stderr)
        return 2
    if args.scores:
        items = load_scores(args.scores)
        if args.add_reference_readings:
            items = add_reference_readings(study, model, items, progress=not args.no_progress)
            save_scores(items, args.out / "scores.jsonl")
    else:
        items = score_study(study, model, progress=not args.no_progress)
        save_scores(items, args.out / "scores.jsonl")
    summary = {"model_version": model.version, "study": str(args.study),
               **summarise(items, model.fusion, config_threshold(args.config))}
    if args.anomalib:
        summary["anomalib_comparison"] = compare_with_anomalib(study, model, items,
                                                               progress=not args.no_progress)
    if args.compare_model:
        other = compare_model(args.compare_model, model, study, items, args.no_progress, args.compare_scores)
        if other is None:
            return 2
        summary["compared_with"] = other
    plot_roc(items, model.fusion, args.out / "roc.png")
    plot_tail(study, items, model.fusion, args.out / "tail.png", args.tail)
    plot_reliability(items, model.fusion, args.out / "reliability.png")
    drawn = args.comparator_tail and plot_comparator_tail(study, items, model, args.out / "comparator_tail.png",
                                                          args.comparator_tail)
    if drawn:
        print(f"evaluate: wrote {drawn}")
    (args.out / "evaluation.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary)
    print(f"evaluate: wrote {args.out / 'evaluation.json'}, roc.png, reliability.png")
    return 0


def compare_model(path: Path, model, study: Study, items, no_progress: bool,
                  scores: Path | None = None) -> dict | None:
    """The figures of another model on the same study: its fusion on the same scores when it shares the
    head, the gallery scoring and the registered comparison (alignment and comparator: the signals are the
    same), else its own ``scores`` of the study when given (checked to be the same items), else the study
    scored again with it."""
    other = open_model(path, "evaluate")
    if other is None or other.fusion is None:
        return None
    same_head = all(torch.equal(a, b) for a, b in zip(model.head.state_dict().values(),
                                                       other.head.state_dict().values()))
    # A model without the boosted item model never read the registered signals, whichever alignment it names.
    no_registered = other.fusion.boosted is None
    if scores is not None:
        stripped = load_scores(scores)
        if sorted(i.item_id for i in stripped) != sorted(i.item_id for i in items):
            print(f"evaluate: {scores} does not hold this study's items", file=sys.stderr)
            return None
        scored_again = False
    elif same_head and other.gallery_scoring == model.gallery_scoring and (no_registered
                                                                           or other.nominal_key == model.nominal_key):
        # Without its own registered stage (when it reads none) its latency is less.
        stripped = [dataclasses.replace(i, signals=[{k: v for k, v in s.items() if not k.startswith("reg_")}
                                                    for s in i.signals],
                                        timings=[{k: v for k, v in t.items() if k != "registered"} for t in i.timings])
                    for i in items] if no_registered else items
        scored_again = False
    else:
        stripped = score_study(study, other, progress=not no_progress)
        scored_again = True
    figures = summarise(stripped, other.fusion)
    return {"model_version": other.version, "scored_again": scored_again, "from_scores": str(scores or ""),
            **{k: figures[k] for k in ("auroc", "operating_points", "missing_part_recall_at_fpr_0.001",
                                        "printed_art_false_divert_rate_at_fpr_0.001", "per_type_recall_at_fpr_0.001",
                                        "per_view_latency_ms_median")}}


def plot_tail(study: Study, items, fusion, path: Path, count: int) -> Path | None:
    """A contact sheet of the ``count`` good items of highest fused score: each one's most suspicious view
    (highest classifier log-odds), with its score, kind and printed artwork: what sets the 0.1 % point."""
    matplotlib.use("Agg")
    good = sorted((i for i in items if not i.damaged and i.signals), key=lambda i: -i.item_probability(fusion))[:count]
    if not good:
        return None
    columns = 6
    rows = math.ceil(len(good) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    crops = item_episodes(study, good)
    for axis, item in zip(axes.ravel(), good):
        episode = crops.get(item.item_id)
        if episode is None:
            continue
        found = np.flatnonzero(episode.found)
        worst = int(np.argmax([s["classifier"] for s in item.signals]))
        axis.imshow(episode.color[found[worst]])
        signals = item.signals[worst]
        learned = f" cmp {signals['reg_learned']:.1f}" if "reg_learned" in signals else ""
        axis.set_title(f"{item.item_probability(fusion):.3f} {item.kind}\n{item.printed_damage_art or 'plain'} "
                       f"cls {signals['classifier']:.1f} an {signals['anomaly']:.2f}{learned}", fontsize=7)
    figure.suptitle(f"The {len(good)} good items of highest damage score (most suspicious view)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def item_episodes(study: Study, items) -> dict:
    """The study's episodes of ``items`` (``ItemScores``) by item id; only their SKUs' episodes are read."""
    item_ids, skus = {i.item_id for i in items}, {i.sku for i in items}
    episodes = {}
    for entry in study.entries:
        if entry["role"] == "item" and entry["sku"] in skus and len(episodes) < len(item_ids):
            episode = study.load(entry)
            if episode.meta["item_id"] in item_ids:
                episodes[episode.meta["item_id"]] = episode
    return episodes


def plot_comparator_tail(study: Study, items, model, path: Path, count: int) -> Path | None:
    """The ``count`` views of good items with the highest comparator score (``reg_learned``): each view, its
    reference aligned into it (what the comparator compares with) and the comparator's per-cell change
    probability. A misregistered reference (a flat face slid in its plane, a bag's other sag) shows here."""
    views = sorted(((view["reg_learned"], item, k) for item in items if not item.damaged
                    for k, view in enumerate(item.signals) if "reg_learned" in view), key=lambda t: -t[0])[:count]
    if not views or model.comparator is None:
        print("evaluate: no comparator scores to draw a comparator tail from", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    episodes = item_episodes(study, [item for _, item, _ in views])
    gallery_entries = {entry["sku"]: entry for entry in study.entries if entry["role"] == "gallery"}
    galleries: dict = {}   # built once per SKU
    figure, axes = plt.subplots(len(views), 3, figsize=(6.6, 2.3 * len(views)), squeeze=False)
    for row, (score, item, k) in zip(axes, views):
        for axis in row:
            axis.axis("off")
        episode = episodes.get(item.item_id)
        if episode is None or item.sku not in gallery_entries:
            continue
        if item.sku not in galleries:
            galleries[item.sku] = gallery_of(model, study.load(gallery_entries[item.sku]))
        gallery = galleries[item.sku]
        index = np.flatnonzero(episode.found)[k:k + 1]
        posed, clouds = episode.posed_crops(index), [episode.clouds[j] for j in index]
        row[0].imshow(episode.color[index[0]])
        row[0].set_title(f"{item.kind} {item.sku}\n{item.printed_damage_art or 'plain'} cmp {score:.1f}", fontsize=7)
        row[1].set_title(f"aligned reference\noverlap {item.signals[k].get('reg_overlap', math.nan):.2f}", fontsize=7)
        row[2].set_title("comparator: change probability\nper cell", fontsize=7)
        # registered once: the same correspondence gives the drawn reference and the comparator's input
        correspondence = model.correspondences(clouds, gallery, posed)
        if correspondence is None:
            continue
        aligned = correspondence[0].aligned_color
        batch = model.featurize(episode.color[index], episode.mask[index], episode.depth_m[index], aligned[None])
        registered = model.registered_comparison(batch, clouds, gallery, posed, correspondences=correspondence)
        row[1].imshow(aligned)
        row[2].imshow(1.0 / (1.0 + np.exp(-registered.comparator[0].cell_logits)), vmin=0.0, vmax=1.0, cmap="magma")
    figure.suptitle(f"The {len(views)} good views of highest comparator score", fontsize=9)
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.35 / (2.3 * len(views))))   # room for the title
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def print_summary(summary: dict) -> None:
    print(f"items: {summary['good_items']} good, {summary['damaged_items']} damaged; model {summary['model_version']}")
    print(f"AUROC {summary['auroc']:.4f}; mean views {summary['mean_views']:.2f}")
    for point in summary["operating_points"]:
        note = "" if point["measurable"] else " (too few good items: extrapolated)"
        print(f"  recall at FPR {100 * point['target_fpr']:g}%: {100 * point['recall']:.1f}% "
              f"(threshold {point['threshold']:.4g}, measured FPR {100 * point['measured_fpr']:.2f}%){note}")
    print("  per type at FPR 0.1%: " + ", ".join(f"{t} {100 * r:.0f}%"
                                                 for t, r in summary["per_type_recall_at_fpr_0.001"].items()))
    print(f"  missing parts caught: {100 * summary['missing_part_recall_at_fpr_0.001']:.0f}%; printed-artwork "
          f"false diverts: {100 * summary['printed_art_false_divert_rate_at_fpr_0.001']:.2f}% "
          f"of {summary['printed_art_good_items']}")
    for name, figures in summary["signals_alone"].items():
        print(f"  {name:>13}: AUROC {figures['auroc']:.3f}, "
              f"recall at 0.1% {100 * figures['recall_at_fpr_0.001']:.1f}%, "
              f"at 1% {100 * figures['recall_at_fpr_0.01']:.1f}%")
    print("  per-view latency (median ms): " + ", ".join(f"{k} {v:.1f}"
                                                         for k, v in summary["per_view_latency_ms_median"].items()))
    if "anomalib_comparison" in summary:
        c = summary["anomalib_comparison"]
        print(f"  gallery anomaly alone vs anomalib PatchCore ({c['items']} items of {c['skus']} SKUs): AUROC "
              f"{c['ours']['auroc']:.3f} vs {c['anomalib_patchcore']['auroc']:.3f}; median ms per image "
              f"{c['ours']['median_ms_per_image']:.1f} vs {c['anomalib_patchcore']['median_ms_per_image']:.1f}")
        for name, label in (("fused", "this model, fused"), ("ours", "gallery anomaly alone"),
                            ("anomalib_patchcore", "anomalib PatchCore")):
            if name in c:   # evaluations written before the fused row was added lack it
                row = c[name]
                print(f"    {label:>22}: AUROC {row['auroc']:.3f}, recall at 0.1% "
                      f"{100 * row.get('recall_at_fpr_0.001', math.nan):.1f}%, at 1% "
                      f"{100 * row.get('recall_at_fpr_0.01', math.nan):.1f}%, {row['median_ms_per_image']:.1f} ms")
    if "at_config_threshold" in summary:
        at = summary["at_config_threshold"]
        print(f"  at the configured threshold {at['threshold']:.4g}: recall {100 * at['recall']:.1f}%, "
              f"false diverts {100 * at['false_divert_rate']:.2f}%")
    if "compared_with" in summary:
        other = summary["compared_with"]
        points = ", ".join(f"recall at FPR {100 * p['target_fpr']:g}% {100 * p['recall']:.1f}%"
                           for p in other["operating_points"])
        latency = sum(other["per_view_latency_ms_median"].values())
        print(f"  side by side, {other['model_version']} on the same items: AUROC {other['auroc']:.4f}, {points}, "
              f"missing parts {100 * other['missing_part_recall_at_fpr_0.001']:.0f}%, per-view model ms {latency:.1f}")
