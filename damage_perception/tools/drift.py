"""`damage-perception drift`: how each SKU's scores move week by week, from a store's inspection log (one
station's file, or a fleet's server: all stations, or one with ``--station``).

Per SKU and ISO week (UTC): verdicts, the median and 95th percentile of the fused scores and the share
diverted, to ``drift.csv``, and ``drift.png`` (median and p95 per SKU over the weeks, and the divert share).
A SKU whose scores creep up while its divert share follows is a look the gallery does not know yet (new
packaging: enrol it) or a change at the station (lighting, camera): worth a look before false diverts pile up.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damage_perception.store.database import StoreError
from damage_perception.tools.store_tool import open_store
from damage_perception.visualization.drift_plots import plot, weekly_summary, write_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True,
                        help="the node's store_path: a station's SQLite file or a fleet's postgresql:// URL")
    parser.add_argument("--station", default=None, help="only this station's verdicts (default: all of them)")
    parser.add_argument("--out", type=Path, required=True, help="folder for drift.csv and drift.png")


def run(args: argparse.Namespace) -> int:
    store = open_store(args.store, "drift")
    if store is None:
        return 2
    try:
        summaries = weekly_summary(store.score_log(station=args.station))
    except StoreError as error:
        print(f"drift: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if not summaries:
        where = f" from station {args.station}" if args.station else ""
        print(f"drift: {args.store} has no logged inspections{where}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    table, figure = write_csv(summaries, args.out / "drift.csv"), plot(summaries, args.out / "drift.png")
    print(f"drift: {len(summaries)} SKU-weeks of {len({s.sku for s in summaries})} SKUs: {table}, {figure}")
    return 0
