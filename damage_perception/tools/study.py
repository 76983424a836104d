"""`damage-perception study`: render a model study (per-SKU galleries + inspected items, as item crops)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from damage_perception.data.study import StudySettings, plan_study, render_study


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="study folder to write (resumes an interrupted run)")
    parser.add_argument("--split", choices=("train", "validation", "heldout", "demo", "catalogue"), default="train",
                        help="names the SKUs: held-out SKUs never appear in a training study")
    parser.add_argument("--skus-per-kind", type=int, default=10)
    parser.add_argument("--items-per-sku", type=int, default=10)
    parser.add_argument("--damage-rate", type=float, default=0.3)
    parser.add_argument("--views", type=int, default=6, help="views per inspected item")
    parser.add_argument("--gallery-views", type=int, default=8, help="pristine reference views per SKU")
    parser.add_argument("--first-sku", type=int, default=1,
                        help="number of the first SKU of each kind (a fresh held-out study takes SKUs no study used)")
    parser.add_argument("--kinds", default="carton,book,mailer,bottle,bag,blister")
    parser.add_argument("--seed", type=int, default=0, help="use different seeds for training and held-out studies")
    parser.add_argument("--station-per-episode", action="store_true",
                        help="draw camera and light per episode (default: per SKU, shared by its gallery and items)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        settings = StudySettings(args.split, args.skus_per_kind, args.items_per_sku, args.damage_rate, args.views,
                                 args.gallery_views, args.seed, tuple(args.kinds.split(",")),
                                 shared_station=not args.station_per_episode, first_sku=args.first_sku)
    except ValueError as error:
        print(f"study: {error}", file=sys.stderr)
        return 2
    plan = plan_study(settings)
    render_study(settings, args.out, workers=args.workers, progress=not args.no_progress)
    items = [p for p in plan if p.role == "item"]
    print(f"study: wrote {len(plan)} episodes to {args.out}: {len(plan) - len(items)} galleries, {len(items)} items "
          f"({sum(p.damage == 'pristine' for p in items)} good)")
    return 0
