"""`damage-perception synth`: render a synthetic multi-view RGB-D dataset (docs/dataset_format.md)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from damage_perception.data.synth_format import DATASET_FILE
from damage_perception.data.synthesize import (
    SynthSettings,
    synthesize,
    write_contact_sheet,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the synth sub-command."""
    parser.add_argument("--items", type=int, default=100, help="number of episodes (items) to render")
    parser.add_argument("--damage-rate", type=float, default=0.4, help="fraction of damaged items")
    parser.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same files")
    parser.add_argument("--out", type=Path, default=None, help="dataset folder to write")
    parser.add_argument("--views", type=int, default=8, help="views per episode, evenly spaced wrist angles")
    parser.add_argument("--variation", type=float, default=1.0,
                        help="scale of per-episode camera / grasp / lighting variation and flying pixels (0 = off)")
    parser.add_argument("--kinds", default="carton,book,mailer,bottle,bag,blister",
                        help="comma-separated item kinds (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: CPU count); does not change the output")
    parser.add_argument("--force", action="store_true", help="write into a folder that already has a dataset")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--contact-sheet", type=Path, default=None, metavar="PNG",
                        help="instead write a contact sheet (one row per damage type) to this PNG")


def run(args: argparse.Namespace) -> int:
    """Render the dataset (or the contact sheet) and print the throughput."""
    if args.contact_sheet is not None:
        path = write_contact_sheet(args.contact_sheet, seed=args.seed, views=min(args.views, 5))
        print(f"synth: wrote contact sheet {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    if args.out is None:
        print("synth: --out DIR is required (or --contact-sheet PNG)", file=sys.stderr)
        return 2
    if (args.out / DATASET_FILE).exists() and not args.force:
        print(f"synth: {args.out} already holds a dataset; pass --force to overwrite", file=sys.stderr)
        return 2
    try:
        settings = SynthSettings(items=args.items, damage_rate=args.damage_rate, seed=args.seed, views=args.views,
                                 kinds=tuple(args.kinds.split(",")), variation=args.variation)
    except ValueError as error:
        print(f"synth: {error}", file=sys.stderr)
        return 2
    report = synthesize(settings, args.out, workers=args.workers, progress=not args.no_progress)
    print(f"synth: wrote {len(report.results)} episodes, {report.views} views to {args.out} in "
          f"{report.wall_s:.1f} s with {report.workers} workers: {report.views_per_s:.1f} views/s")
    return 0
