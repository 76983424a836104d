"""Side by side: our gallery anomaly detector and anomalib's PatchCore on the same crops and weights.

Used by ``damage-perception evaluate --anomalib``. Both detectors get each SKU's gallery views and score
the same item views; an item's anomaly score is its largest view score. Reported: item-level AUROC of both
on the same items, and the median per-image latency of each (ours: backbone + patch search; anomalib: its
whole forward pass, timed one image at a time).
"""
from __future__ import annotations

import numpy as np


def compare_with_anomalib(study, model, items, max_skus: int = 60, progress: bool = True) -> dict:
    """Compare on the items of up to ``max_skus`` SKUs (every k-th SKU of the study, all kinds)."""
    from tqdm import tqdm

    from damage_perception.baselines.anomalib_patchcore import AnomalibPatchCore
    from damage_perception.core.metrics import auroc

    skus = study.skus()
    chosen = set(skus[::max(1, len(skus) // max_skus)][:max_skus])
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
    anomalib = np.array([theirs[i.item_id] for i in compared])
    our_latency = [t["classifier"] + t.get("anomaly", 0.0) for i in compared for t in i.timings]
    return {"skus": len(chosen), "items": len(compared), "damaged_items": int(damaged.sum()),
            "ours": {"auroc": auroc(ours[damaged], ours[~damaged]),
                     "median_ms_per_image": float(np.median(our_latency) * 1000),
                     "latency_note": "backbone + head per view (batched per item) + patch search"},
            "anomalib_patchcore": {"auroc": auroc(anomalib[damaged], anomalib[~damaged]),
                                   "median_ms_per_image": baseline.median_latency_ms,
                                   "latency_note": "anomalib forward pass, one image at a time"}}
