"""Side by side: our gallery anomaly detector and anomalib's PatchCore on the same crops and weights.

Used by ``damage-perception evaluate --anomalib``. Both detectors get each SKU's gallery views and score
the same item views; an item's anomaly score is its largest view score. Reported on the same items: AUROC
and recall at FPR 0.1 % and 1 % of both and of the evaluated model's fused item score (what the node
decides on), and the median per-image latency of each (ours: backbone + patch search; anomalib: its whole
forward pass, timed one image at a time).
"""
from __future__ import annotations

import numpy as np


def figures(scores: np.ndarray, damaged: np.ndarray) -> dict[str, float]:
    """Item AUROC and recall at FPR 0.1 % and 1 % of ``scores``."""
    from damage_perception.core.metrics import auroc, recall_at_fpr

    return {"auroc": auroc(scores[damaged], scores[~damaged]),
            **{f"recall_at_fpr_{fpr:g}": recall_at_fpr(scores[damaged], scores[~damaged], fpr)[0]
               for fpr in (0.001, 0.01)}}


def evenly_spread(names: list[str], count: int) -> list[str]:
    """Up to ``count`` of ``names`` at evenly spaced positions, first and last included."""
    if len(names) <= count:
        return list(names)
    return [names[k] for k in np.unique(np.linspace(0, len(names) - 1, count).round().astype(int))]


def compare_with_anomalib(study, model, items, max_skus: int = 60, progress: bool = True) -> dict:
    """Compare on the items of up to ``max_skus`` SKUs, spread evenly over the study's SKUs in name order (so
    over every kind)."""
    from tqdm import tqdm

    from damage_perception.baselines.anomalib_patchcore import AnomalibPatchCore

    chosen = set(evenly_spread(study.skus(), max_skus))
    baseline = AnomalibPatchCore()
    theirs: dict[str, float] = {}
    for entry in tqdm([e for e in study.entries if e["sku"] in chosen], unit="episode", disable=not progress,
                      desc="anomalib", dynamic_ncols=True):
        episode = study.load(entry)
        found = episode.found
        if entry["role"] == "gallery":
            if found.sum() >= 2:
                baseline.fit({entry["sku"]: (episode.color[found], episode.mask[found])})
            continue
        if entry["sku"] in baseline.banks and found.any():
            theirs[episode.meta["item_id"]] = float(baseline.score(entry["sku"], episode.color[found],
                                                                   episode.mask[found]).max())
    compared = [i for i in items if i.item_id in theirs and i.signals and i.has_gallery]
    damaged = np.array([i.damaged for i in compared])
    ours = np.array([max(s["anomaly"] for s in i.signals) for i in compared])
    fused = np.array([i.item_probability(model.fusion) for i in compared])
    anomalib = np.array([theirs[i.item_id] for i in compared])
    our_latency = [t["classifier"] + t.get("anomaly", 0.0) for i in compared for t in i.timings]
    model_latency = [sum(t.values()) for i in compared for t in i.timings]
    return {"skus": len(chosen), "items": len(compared), "damaged_items": int(damaged.sum()),
            "good_items": int((~damaged).sum()),
            "ours": {**figures(ours, damaged), "median_ms_per_image": float(np.median(our_latency) * 1000),
                     "latency_note": "backbone + head per view (batched per item) + patch search"},
            "fused": {**figures(fused, damaged), "model_version": model.version,
                      "median_ms_per_image": float(np.median(model_latency) * 1000),
                      "latency_note": "every model stage of a view (classifier, gallery, registered, comparator)"},
            "anomalib_patchcore": {**figures(anomalib, damaged), "median_ms_per_image": baseline.median_latency_ms,
                                   "latency_note": "anomalib forward pass, one image at a time"}}
