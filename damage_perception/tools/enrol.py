"""`damage-perception enrol`: build SKU galleries with the damage model and enrol them in a station store.

Reference views come from a study's gallery episodes (``--study``) or are rendered in the simulated cell
(``--sim-skus``: a pristine instance of each SKU turned through ``--views`` wrist angles, as an operator
would enrol it at the station). Each enrolment is a new gallery version, active at once; ``--rollback``
makes an earlier version active again (nothing is deleted).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damage_perception.core.enrolment import ENROL_VIEWS
from damage_perception.data.study import Study, gallery_episode
from damage_perception.data.study_scores import enrol_episodes
from damage_perception.store.database import StoreError
from damage_perception.tools.model_file import open_model
from damage_perception.tools.store_tool import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True,
                        help="the node's store_path: a station's SQLite file or a fleet's postgresql:// URL")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--study", type=Path, default=None, help="enrol every gallery episode of this study")
    parser.add_argument("--sim-skus", default="", help="comma-separated SKUs to render and enrol in the sim cell")
    parser.add_argument("--views", type=int, default=ENROL_VIEWS,
                        help=f"reference views per SKU when rendering (default {ENROL_VIEWS}, as the node enrols)")
    parser.add_argument("--packaging-version", type=int, default=0, help="packaging version to render")
    parser.add_argument("--note", default="", help="note stored with the gallery version")
    parser.add_argument("--rollback", nargs=2, metavar=("SKU", "VERSION"), default=None,
                        help="make VERSION the active gallery of SKU instead of enrolling")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    store = open_store(args.store, "enrol", must_exist=False)
    if store is None:
        return 2
    if args.rollback:
        sku, version = args.rollback[0], int(args.rollback[1])
        try:
            store.activate(sku, version)
        except StoreError as error:
            print(f"enrol: {error}", file=sys.stderr)
            return 2
        print(f"enrol: {sku} now uses gallery version {version}")
        return 0
    model = open_model(args.model, "enrol")
    if model is None:
        return 2
    if args.study:
        study = Study(args.study)
        episodes = (study.load(e) for e in study.entries if e["role"] == "gallery")
        total = sum(e["role"] == "gallery" for e in study.entries)
    elif args.sim_skus:
        skus = [s for s in args.sim_skus.split(",") if s]
        episodes = (gallery_episode(sku, args.views, packaging_version=args.packaging_version) for sku in skus)
        total = len(skus)
    else:
        print("enrol: give --study, --sim-skus or --rollback", file=sys.stderr)
        return 2
    versions = enrol_episodes(store, model, episodes, args.note, total, progress=not args.no_progress)
    store.close()
    return 0 if all(v is not None for v in versions.values()) else 1
