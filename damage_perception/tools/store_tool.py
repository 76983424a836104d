"""`damage-perception store`: a store's schema, joining a station to a fleet, and the labels people gave.

- ``store migrate STORE``: create or bring a store (SQLite file or ``postgresql://`` URL) to the current
  schema (the node and every tool also do this on open; this is for setting up a fleet's server first);
- ``store copy SRC DST``: copy a station's store (verdicts, labels, galleries) into another, typically its
  SQLite file into the fleet's server; re-running it copies only what is new (``store.transfer``);
- ``store labels STORE [--station S]``: every label with the verdict it judges, as CSV (stdout or ``--out``),
  for reviewing what people said per station or across the fleet.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from pathlib import Path

from damage_perception.store.database import (
    InspectionStore,
    StoreError,
    is_server_url,
    redacted,
)

HELP = "store schema migration, copying a station's store into a fleet's server, and the labels people gave"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    migrate = actions.add_parser("migrate", help="create or migrate a store (SQLite path or postgresql:// URL)")
    migrate.add_argument("store")
    copy = actions.add_parser("copy", help="copy SRC's verdicts, labels and galleries into DST (re-runnable)")
    copy.add_argument("source")
    copy.add_argument("destination")
    copy.add_argument("--station", default="", help="station of SRC's verdicts that name none (older files)")
    labels = actions.add_parser("labels", help="labels with their verdicts as CSV")
    labels.add_argument("store")
    labels.add_argument("--station", default=None, help="only this station's verdicts (default: the fleet)")
    labels.add_argument("--out", type=Path, default=None, help="CSV file (default: stdout)")


def open_store(location: str, tool: str, must_exist: bool = True) -> InspectionStore | None:
    """The store at ``location`` (created when not ``must_exist``), or None after saying why on stderr: a
    missing file, an unreachable server, an unusable store."""
    if must_exist and not is_server_url(location) and not Path(location).is_file():
        print(f"{tool}: store {location} does not exist", file=sys.stderr)
        return None
    try:
        return InspectionStore(location)
    except StoreError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    return {"migrate": _migrate, "copy": _copy, "labels": _labels}[args.action](args)


def _migrate(args: argparse.Namespace) -> int:
    store = open_store(args.store, "store migrate", must_exist=False)
    if store is None:
        return 2
    print(f"store migrate: {redacted(args.store)} at schema version {store.schema_version}")
    store.close()
    return 0


def _copy(args: argparse.Namespace) -> int:
    from damage_perception.store.transfer import copy_store

    source = open_store(args.source, "store copy")
    destination = open_store(args.destination, "store copy", must_exist=False) if source is not None else None
    if destination is None:
        if source is not None:
            source.close()
        return 2
    try:
        report = copy_store(source, destination, args.station)
    except StoreError as error:
        print(f"store copy: stopped, nothing half-copied (re-run to finish): {error}", file=sys.stderr)
        return 1
    finally:
        source.close()
        destination.close()
    print(f"store copy: {report.verdicts} new verdicts, {report.labels} new labels, galleries of "
          f"{len(report.skus_copied)} SKUs copied")
    if report.skus_skipped:
        print(f"store copy: {len(report.skus_skipped)} SKUs already enrolled in {redacted(args.destination)} kept "
              f"their versions there: {', '.join(report.skus_skipped)}")
    return 0


def _labels(args: argparse.Namespace) -> int:
    store = open_store(args.store, "store labels")
    if store is None:
        return 2
    try:
        verdicts = {r.id: r for r in store.inspections(limit=10_000_000, station=args.station)}
        rows = [(label, verdicts.get(link)) for label, link in ((row, row[1]) for row in store.labels())
                if args.station is None or link in verdicts]
    except StoreError as error:
        print(f"store labels: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    with (open(args.out, "w", newline="") if args.out else contextlib.nullcontext(sys.stdout)) as output:
        writer = csv.writer(output)
        writer.writerow(["label_id", "item_id", "damaged", "damage_type", "labeller", "station_id", "sku",
                         "decision", "fused_score", "model_version", "gallery_version"])
        for (label_id, _, item, damaged, damage_type, labeller, _), verdict in rows:
            writer.writerow([label_id, item, int(damaged), damage_type, labeller,
                             *((verdict.station_id, verdict.sku, verdict.decision, verdict.fused_score,
                                verdict.model_version, verdict.gallery_version) if verdict else ("",) * 6)])
    if args.out:
        print(f"store labels: {len(rows)} labels to {args.out}", file=sys.stderr)
    return 0
