"""`damage-perception identify`: product identification on a study: which enrolled SKU does an item look like?

Builds a ``core.identification.GalleryIndex`` from every SKU's gallery episode of the study (the reference views
an operator enrols) and queries it with each item episode's found views. Prints and writes
``identification.json``: SKUs, queries, top-1 / top-5 accuracy overall, per kind and for pristine and damaged
items separately, the top-1 confusions, median query latency, and the calibration of the node's mismatch rule
(``check_claim``: the claimed SKU is not among the top k AND the closest SKU is more than ``margin`` more
similar): its false-alarm rate on the study's items (all correctly labelled) over a grid of margins, the
smallest margin whose false-alarm rate is at most ``--target-false-alarm`` (at k = 1, the rule's strictest
form, used with two SKUs enrolled; so it holds for every k), and how many simulated mislabels (the item claimed
as another random SKU, or another SKU of its kind) that margin catches. Per-item rows go to
``identification_items.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from damage_perception.core.damage_model import DamageModel, ModelLoadError
from damage_perception.core.identification import (
    GalleryIndex,
    Match,
    check_claim,
    effective_top_k,
)
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.data.study import Study
from damage_perception.data.study_scores import gallery_of
from damage_perception.sim.catalogue import sku_kind

MARGINS = np.round(np.arange(0.0, 1.0001, 0.005), 3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="study folder (e.g. a catalogue study: many SKUs, few items)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--out", type=Path, default=Path("out/identification"), help="folder for the JSON files")
    parser.add_argument("--top-k", type=int, default=3, help="the node's identification.top_k")
    parser.add_argument("--target-false-alarm", type=float, default=0.01,
                        help="largest false-alarm rate of the mismatch rule on correctly labelled items")
    parser.add_argument("--max-skus", type=int, default=None, help="use only this many SKUs (spread over kinds)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated mislabels")
    parser.add_argument("--no-progress", action="store_true")


def ranks(skus: list[str], rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: rank of its own SKU (0 = most similar), gap to the most similar SKU, index of that SKU."""
    position = {sku: k for k, sku in enumerate(skus)}
    rank, gap, best = [], [], []
    for row in rows:
        sims, own = row["similarities"], position[row["sku"]]
        rank.append(int(np.count_nonzero(sims > sims[own])))   # ties count in the item's favour
        best.append(int(np.argmax(sims)))
        gap.append(float(sims.max() - sims[own]))
    return np.asarray(rank), np.asarray(gap), np.asarray(best)


def accuracy(rank: np.ndarray) -> dict:
    return {"queries": int(len(rank)), "top1": float(np.mean(rank < 1)) if len(rank) else math.nan,
            "top5": float(np.mean(rank < 5)) if len(rank) else math.nan}


def false_alarms(rank: np.ndarray, gap: np.ndarray, k: int, margin: float) -> float:
    """Share of correctly labelled queries the mismatch rule flags."""
    return float(np.mean((rank >= k) & (gap > margin))) if len(rank) else math.nan


def calibrated_margin(rank: np.ndarray, gap: np.ndarray, k: int, target: float) -> float:
    """The smallest margin of the grid whose false-alarm rate at ``k`` is at most ``target``."""
    return float(next(m for m in MARGINS if false_alarms(rank, gap, k, m) <= target))


def mislabel_detection(skus: list[str], rows: list[dict], top_k: int, margin: float, seed: int) -> dict:
    """Each query claimed as another SKU drawn at random (any kind / same kind): share the rule flags."""
    rng = np.random.default_rng(seed)
    kinds = np.array([sku_kind(s) for s in skus])
    caught = {"any_sku": [], "same_kind": []}
    for row in rows:
        order = np.argsort(-row["similarities"], kind="stable")
        matches = [Match(skus[k], float(row["similarities"][k])) for k in order]
        others = [s for s in skus if s != row["sku"]]
        same = [s for s, kind in zip(skus, kinds) if kind == row["kind"] and s != row["sku"]]
        for name, pool in (("any_sku", others), ("same_kind", same)):
            if pool:
                caught[name].append(check_claim(matches, str(rng.choice(pool)), top_k, margin).mismatch)
    return {name: {"claims": len(v), "flagged": float(np.mean(v)) if v else math.nan} for name, v in caught.items()}


def summarise(skus: list[str], rows: list[dict], top_k: int, target: float, seed: int) -> dict:
    rank, gap, best = ranks(skus, rows)
    kinds = np.array([row["kind"] for row in rows])
    damaged = np.array([row["damaged"] for row in rows], bool)
    k_config = effective_top_k(top_k, len(skus))
    margin = calibrated_margin(rank, gap, 1, target)
    confusions = [{"sku": row["sku"], "closest": skus[b], "kind": row["kind"], "closest_kind": skus_kind(skus[b]),
                   "gap": round(g, 4)} for row, r, g, b in zip(rows, rank, gap, best) if r > 0]
    kind_pairs: dict[str, int] = {}
    for c in confusions:
        key = f"{c['kind']}->{c['closest_kind']}"
        kind_pairs[key] = kind_pairs.get(key, 0) + 1
    return {
        "skus": len(skus), "queries": len(rows),
        **{key: value for key, value in accuracy(rank).items() if key != "queries"},
        "per_kind": {kind: accuracy(rank[kinds == kind]) for kind in sorted(set(kinds))},
        "pristine": accuracy(rank[~damaged]), "damaged": accuracy(rank[damaged]),
        "confusions": {"count": len(confusions), "same_kind": sum(c["kind"] == c["closest_kind"] for c in confusions),
                       "by_kind_pair": dict(sorted(kind_pairs.items(), key=lambda kv: -kv[1])),
                       "examples": confusions[:20]},
        "median_query_ms": 1000 * statistics.median(row["query_s"] for row in rows),
        "median_featurize_ms_per_item": 1000 * statistics.median(row["featurize_s"] for row in rows),
        "median_views_per_item": statistics.median(row["views"] for row in rows),
        "mismatch_rule": {
            "rule": "flag when the claimed SKU is not among the top k (k = min(top_k, enrolled SKUs - 1)) and the "
                    "closest SKU is more than margin more similar",
            "target_false_alarm": target, "calibrated_at_k": 1, "margin": margin, "top_k": top_k,
            "false_alarm": {f"k={k}": false_alarms(rank, gap, k, margin) for k in sorted({1, k_config, 5})},
            "false_alarm_pristine": false_alarms(rank[~damaged], gap[~damaged], k_config, margin),
            "false_alarm_damaged": false_alarms(rank[damaged], gap[damaged], k_config, margin),
            "margin_for_target_at_top_k": calibrated_margin(rank, gap, k_config, target),
            "false_alarm_by_margin_at_k1": {f"{m:g}": false_alarms(rank, gap, 1, m) for m in MARGINS[::10]},
            "mislabels_flagged": {f"k={k}": mislabel_detection(skus, rows, k, margin, seed) for k in (1, top_k)},
        },
    }


def skus_kind(sku: str) -> str:
    return sku_kind(sku)


def spread(skus: list[str], count: int | None) -> list[str]:
    """``count`` SKUs taken evenly from the sorted list (so every kind keeps its share)."""
    if count is None or count >= len(skus):
        return skus
    return [skus[k] for k in np.linspace(0, len(skus) - 1, count).round().astype(int)]


def run(args: argparse.Namespace) -> int:
    try:
        model = DamageModel.load(args.model or SHIPPED_MODEL_FILE)
    except ModelLoadError as error:
        print(f"identify: {error}", file=sys.stderr)
        return 2
    study = Study(args.study)
    wanted = set(spread(study.skus(), args.max_skus))
    entries = [e for e in study.entries if e["sku"] in wanted]
    galleries, rows, skipped = [], [], {"no_gallery": 0, "no_view_found": 0}
    for entry in tqdm([e for e in entries if e["role"] == "gallery"], unit="SKU", desc="galleries",
                      disable=args.no_progress, dynamic_ncols=True):
        try:
            galleries.append(gallery_of(model, study.load(entry)))
        except ValueError as error:
            print(f"identify: no gallery for {entry['sku']}: {error}")
    if len(galleries) < 2:
        print("identify: fewer than two SKUs with a gallery", file=sys.stderr)
        return 2
    index = GalleryIndex(galleries)
    enrolled = set(index.skus)
    for entry in tqdm([e for e in entries if e["role"] == "item"], unit="item", desc="queries",
                      disable=args.no_progress, dynamic_ncols=True):
        if entry["sku"] not in enrolled:
            skipped["no_gallery"] += 1
            continue
        episode = study.load(entry)
        found = np.flatnonzero(episode.found)
        if not len(found):
            skipped["no_view_found"] += 1
            continue
        start = time.perf_counter()
        batch = model.featurize(episode.color[found], episode.mask[found], episode.depth_m[found])
        featurize_s = time.perf_counter() - start
        patches = [batch.patches[k][batch.cells[k]] for k in range(len(found))]
        start = time.perf_counter()
        similarities = index.similarities(index.embed(patches))
        rows.append({"sku": entry["sku"], "kind": entry["kind"], "damaged": entry["damage"] != "pristine",
                     "damage": entry["damage"], "similarities": similarities, "views": len(found),
                     "query_s": time.perf_counter() - start, "featurize_s": featurize_s})
    if not rows:
        print("identify: no item could be queried", file=sys.stderr)
        return 2
    summary = {"study": str(args.study), "model_version": model.version, "skipped_items": skipped,
               **summarise(index.skus, rows, args.top_k, args.target_false_alarm, args.seed)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "identification.json").write_text(json.dumps(summary, indent=1))
    with (args.out / "identification_items.jsonl").open("w") as stream:
        for row in rows:
            order = np.argsort(-row["similarities"], kind="stable")[:5]
            stream.write(json.dumps({**{k: v for k, v in row.items() if k != "similarities"},
                                     "top5": [[index.skus[k], round(float(row["similarities"][k]), 4)]
                                              for k in order]}) + "\n")
    print_summary(summary)
    print(f"identify: wrote {args.out / 'identification.json'} and identification_items.jsonl")
    return 0


def print_summary(summary: dict) -> None:
    print(f"{summary['skus']} SKUs, {summary['queries']} queries (skipped: {summary['skipped_items']}): "
          f"top-1 {100 * summary['top1']:.1f}%, top-5 {100 * summary['top5']:.1f}%; "
          f"median query {summary['median_query_ms']:.2f} ms")
    for name in ("pristine", "damaged"):
        part = summary[name]
        if part["queries"]:
            print(f"  {name}: {part['queries']} queries, top-1 {100 * part['top1']:.1f}%, "
                  f"top-5 {100 * part['top5']:.1f}%")
    for kind, part in summary["per_kind"].items():
        print(f"  {kind}: {part['queries']} queries, top-1 {100 * part['top1']:.1f}%, top-5 {100 * part['top5']:.1f}%")
    confusions = summary["confusions"]
    print(f"  top-1 errors: {confusions['count']} ({confusions['same_kind']} within a kind): "
          f"{confusions['by_kind_pair']}")
    rule = summary["mismatch_rule"]
    print(f"mismatch rule: margin {rule['margin']:g} (false alarms <= {100 * rule['target_false_alarm']:g}% at k=1); "
          f"false alarms {', '.join(f'{k}: {100 * v:.2f}%' for k, v in rule['false_alarm'].items())}")
    for k, parts in rule["mislabels_flagged"].items():
        print(f"  mislabels flagged at {k}: "
              + ", ".join(f"{name} {100 * v['flagged']:.1f}% of {v['claims']}" for name, v in parts.items()))
