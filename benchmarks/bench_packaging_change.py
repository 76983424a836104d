"""Packaging change (issue #7): false diverts of re-packaged items before and after enrolling the new look.

Renders the same small study twice, identical (SKUs, stations, grasps, seeds) but for the packaging
version (artwork changes, geometry does not: ``sim.items``), and scores its pristine items with the shipped
model in three conditions:

- unchanged: old-look items against the old-look gallery (the level of SKUs whose packaging did not change);
- changed, gallery not updated: new-look items against the old-look gallery;
- changed, new version enrolled: new-look items against a gallery enrolled from new-look views.

Prints, per condition, the share of good items diverted at the node's calibrated threshold
(``decision.divert_threshold`` of the config) and at the held-out study's 1 %-FPR threshold, and the median
and p95 of the gallery anomaly score and of the item probability, and the share of items the auto-enrolment
guard would take (``AutoEnrolConfig`` defaults: item probability and every view's anomaly under their
limits; the guard's other conditions, in ``core.enrolment.auto_enrol_decision``, need a live verdict).
Not a test: it renders ~250 episodes.

    .venv/bin/python benchmarks/bench_packaging_change.py [--skus-per-kind 4] [--items-per-sku 4] [--out out/packaging]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.enrolment import AutoEnrolConfig
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.data.study import Study, StudySettings, render_study
from damage_perception.data.study_scores import ItemScores, gallery_of, score_item

CONFIG = Path(__file__).resolve().parents[1] / "config" / "damage_perception.yaml"
ONE_PERCENT_FPR_THRESHOLD = 0.803   # docs/evaluation/evaluation.json, operating point at FPR 1 %


def render(out: Path, args: argparse.Namespace, packaging_version: int) -> Study:
    settings = StudySettings("demo", args.skus_per_kind, args.items_per_sku, 0.0, 6, 8, args.seed,
                             packaging_version=packaging_version)
    render_study(settings, out, workers=args.workers, progress=True)
    return Study(out)


def galleries(study: Study, model: DamageModel) -> dict:
    return {e["sku"]: gallery_of(model, study.load(e)) for e in study.entries if e["role"] == "gallery"}


def score(items: Study, references: dict, model: DamageModel) -> list[ItemScores]:
    return [score_item(model, items.load(e), references[e["sku"]]) for e in items.entries if e["role"] == "item"]


def summary(scored: list[ItemScores], fusion, threshold: float) -> dict:
    probability = np.array([item.item_probability(fusion) for item in scored])
    anomaly = np.array([max(s["anomaly"] for s in item.signals) if item.signals else np.inf for item in scored])
    guard = AutoEnrolConfig()   # the shipped defaults: would auto-enrolment (if on) take these items?
    auto_enrolled = (probability <= guard.max_item_probability) & (anomaly <= guard.max_anomaly)
    anomaly = anomaly[np.isfinite(anomaly)]
    return {"items": len(scored),
            "diverted_at_config_threshold": float(np.mean(probability >= threshold)),
            "diverted_at_1pct_fpr_threshold": float(np.mean(probability >= ONE_PERCENT_FPR_THRESHOLD)),
            "anomaly_median": float(np.median(anomaly)), "anomaly_p95": float(np.percentile(anomaly, 95)),
            "probability_median": float(np.median(probability)),
            "probability_p95": float(np.percentile(probability, 95)),
            "would_auto_enrol": float(np.mean(auto_enrolled))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus-per-kind", type=int, default=4)
    parser.add_argument("--items-per-sku", type=int, default=4)
    parser.add_argument("--seed", type=int, default=505)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/packaging"))
    args = parser.parse_args()

    model = DamageModel.load(SHIPPED_MODEL_FILE)
    threshold = float(yaml.safe_load(CONFIG.read_text())["damage_perception"]["ros__parameters"]["decision"]
                      ["divert_threshold"])
    old, new = render(args.out / "v0", args, 0), render(args.out / "v1", args, 1)
    old_galleries, new_galleries = galleries(old, model), galleries(new, model)
    results = {
        "unchanged": summary(score(old, old_galleries, model), model.fusion, threshold),
        "changed, gallery not updated": summary(score(new, old_galleries, model), model.fusion, threshold),
        "changed, new version enrolled": summary(score(new, new_galleries, model), model.fusion, threshold),
    }
    print(f"packaging change: {len(old_galleries)} SKUs, pristine items; calibrated threshold {threshold:.3f}, "
          f"1%-FPR threshold {ONE_PERCENT_FPR_THRESHOLD}")
    print(f"{'condition':32s} {'items':>5s} {'div@cal':>8s} {'div@1%':>7s} {'anomaly p50/p95':>16s} "
          f"{'prob p50/p95':>13s} {'auto-enrol':>10s}")
    for name, r in results.items():
        print(f"{name:32s} {r['items']:5d} {100 * r['diverted_at_config_threshold']:7.1f}% "
              f"{100 * r['diverted_at_1pct_fpr_threshold']:6.1f}% {r['anomaly_median']:7.2f}/{r['anomaly_p95']:<7.2f} "
              f"{r['probability_median']:6.3f}/{r['probability_p95']:.3f} {100 * r['would_auto_enrol']:9.1f}%")
    (args.out / "packaging_change.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
