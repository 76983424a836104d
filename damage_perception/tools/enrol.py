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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, required=True, help="station SQLite store (the node's store_path)")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--study", type=Path, default=None, help="enrol every gallery episode of this study")
    parser.add_argument("--sim-skus", default="", help="comma-separated SKUs to render and enrol in the sim cell")
    parser.add_argument("--views", type=int, default=8, help="reference views per SKU when rendering")
    parser.add_argument("--packaging-version", type=int, default=0, help="packaging version to render")
    parser.add_argument("--note", default="", help="note stored with the gallery version")
    parser.add_argument("--rollback", nargs=2, metavar=("SKU", "VERSION"), default=None,
                        help="make VERSION the active gallery of SKU instead of enrolling")
    parser.add_argument("--no-progress", action="store_true")


def enrol_episodes(store, model, episodes, note: str = "", total: int | None = None,
                   progress: bool = True) -> dict[str, int | None]:
    """Build each gallery episode's SKU gallery and enrol it; SKU -> new version (None when it failed)."""
    from tqdm import tqdm

    from damage_perception.data.study_scores import gallery_of
    from damage_perception.store.galleries import save_gallery
    from damage_perception.store.item_media import keep_reference_crops

    versions: dict[str, int | None] = {}
    for episode in tqdm(episodes, total=total, unit="SKU", disable=not progress, desc="enrolling"):
        sku = episode.meta["sku"]
        try:
            gallery = gallery_of(model, episode)
        except ValueError as error:
            print(f"enrol: {sku} not enrolled: {error}", file=sys.stderr)
            versions[sku] = None
            continue
        versions[sku] = save_gallery(store, gallery, note or f"model {model.version}")
        found = episode.found   # the views gallery_of built the gallery from, in its order
        keep_reference_crops(store, sku, versions[sku], list(episode.angle[found]), list(episode.color[found]))
        print(f"enrol: {sku} gallery version {versions[sku]} ({len(gallery.views)} views, "
              f"{sum(len(v.patches) for v in gallery.views)} patches, {len(gallery.shape.points)} shape points)")
    return versions


def run(args: argparse.Namespace) -> int:
    from damage_perception.core.damage_model import DamageModel, ModelLoadError
    from damage_perception.data.study import Study, gallery_episode
    from damage_perception.store.sqlite_store import InspectionStore, StoreError
    from damage_perception.core.station import SHIPPED_MODEL_FILE

    store = InspectionStore(args.store)
    if args.rollback:
        sku, version = args.rollback[0], int(args.rollback[1])
        try:
            store.activate(sku, version)
        except StoreError as error:
            print(f"enrol: {error}", file=sys.stderr)
            return 2
        print(f"enrol: {sku} now uses gallery version {version}")
        return 0
    try:
        model = DamageModel.load(args.model or SHIPPED_MODEL_FILE)
    except ModelLoadError as error:
        print(f"enrol: {error}", file=sys.stderr)
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
