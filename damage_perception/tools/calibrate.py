"""`damage-perception calibrate`: pick the divert threshold from good items at a target false-positive rate
and write it into the node's parameter file.

The threshold is the lowest whose false-positive rate on the good items has a one-sided Clopper-Pearson
upper confidence bound at or below the target. Showing 0.1 % at 95 % confidence takes at least 2,995 good
items with none above the threshold; with fewer, the threshold goes just above the highest good score and
the bound it does reach is printed (and the command exits 1, so a pipeline notices).

With ``--store`` the good items are the station's own: inspections a person labelled not damaged
(``~/report_label``), scored by the model version given (default: the shipped model), from the log.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from damage_perception.core.metrics import threshold_for_fpr
from damage_perception.data.study import Study
from damage_perception.data.study_scores import load_scores, score_study
from damage_perception.store.database import StoreError
from damage_perception.tools.model_file import open_model
from damage_perception.tools.store_tool import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, nargs="?", default=None,
                        help="study with good items of SKUs the model was not trained on")
    parser.add_argument("--scores", type=Path, default=None, help="scores.jsonl from evaluate (instead of a study)")
    parser.add_argument("--store", default=None,
                        help="store (SQLite file or a fleet's postgresql:// URL): recalibrate from inspections people "
                             "labelled good (instead of a study)")
    parser.add_argument("--station", default=None, help="with --store: only this station's inspections "
                                                          "(default: every station's)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--target-fpr", type=float, default=0.001, help="false-positive rate to guarantee")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the upper bound")
    parser.add_argument("--config", type=Path, default=Path("config/damage_perception.yaml"),
                        help="node parameter file whose decision.divert_threshold is rewritten")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the config")
    parser.add_argument("--no-progress", action="store_true")


def write_threshold(config: Path, threshold: float, note: str) -> None:
    """Replace ``divert_threshold:`` under ``decision:`` in a node YAML, keeping its comments and layout."""
    text = config.read_text()
    pattern = re.compile(r"^(\s*decision:\s*\n(?:\s+#.*\n)*\s+divert_threshold:\s*)([^\s#]+)(.*)$", re.MULTILINE)
    if not pattern.search(text):
        raise ValueError(f"{config} has no decision.divert_threshold to rewrite")
    config.write_text(pattern.sub(lambda m: f"{m.group(1)}{threshold!r}  # {note}", text, count=1))


def good_scores_in_store(store, model_version: str, station: str | None = None) -> list[float]:
    """Fused scores of the store's inspections by ``model_version`` (at ``station``, if given) that a person
    labelled not damaged."""
    try:
        return [score for score, damaged in store.labelled_scores(model_version, station) if not damaged]
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    model = open_model(args.model, "calibrate")
    if model is None:
        return 2
    if args.store is not None:

        store = open_store(args.store, "calibrate")
        if store is None:
            return 2
        try:
            good = good_scores_in_store(store, model.version, args.station)
        except StoreError as error:
            print(f"calibrate: {error}", file=sys.stderr)
            return 2
        if not good:
            print(f"calibrate: {args.store} has no inspection by model {model.version} labelled good",
                  file=sys.stderr)
            return 2
    elif args.scores is None and args.study is None:
        print("calibrate: give a study folder, --scores or --store", file=sys.stderr)
        return 2
    else:
        items = load_scores(args.scores) if args.scores else score_study(Study(args.study), model,
                                                                         progress=not args.no_progress)
        good = [i.item_probability(model.fusion) for i in items if not i.damaged]
    chosen = threshold_for_fpr(good, args.target_fpr, args.confidence)
    print(f"calibrate: {chosen.good_items} good items, {chosen.exceedances} at or above threshold "
          f"{chosen.threshold:.6g}; FPR <= {100 * chosen.fpr_upper_bound:.3f}% at {100 * args.confidence:g}% "
          f"confidence (target {100 * args.target_fpr:g}%)")
    if not chosen.meets_target:
        print(f"calibrate: too few good items to show {100 * args.target_fpr:g}%: the threshold sits above every "
              f"good item and the bound is {100 * chosen.fpr_upper_bound:.3f}%", file=sys.stderr)
    if not args.dry_run:
        note = (f"calibrate: FPR <= {100 * chosen.fpr_upper_bound:.3f}% ({100 * args.confidence:g}% UCB, "
                f"{chosen.good_items} good items, model {model.version})")
        write_threshold(args.config, float(chosen.threshold), note)
        print(f"calibrate: wrote decision.divert_threshold {chosen.threshold:.6g} to {args.config}")
    return 0 if chosen.meets_target else 1
