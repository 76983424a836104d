"""`damage-perception drift`: how each SKU's scores move week by week, from a station store's inspection log.

Per SKU and ISO week (UTC): verdicts, the median and 95th percentile of the fused scores and the share
diverted, to ``drift.csv``, and ``drift.png`` (median and p95 per SKU over the weeks, and the divert share).
A SKU whose scores creep up while its divert share follows is a look the gallery does not know yet (new
packaging: enrol it) or a change at the station (lighting, camera): worth a look before false diverts pile up.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from damage_perception.store.sqlite_store import InspectionStore

DIVERT = 1  # DamageVerdict.DIVERT (no ROS import in the tools' pure parts)
MAX_PLOTTED_SKUS = 12


@dataclass
class WeekSummary:
    """One SKU's verdicts of one ISO week."""

    sku: str
    week: str            # "2026-W07"
    count: int           # verdicts, scored or not
    scored: int          # verdicts with a fused score (ERROR verdicts have none)
    median: float        # of the fused scores; NaN when none
    p95: float
    divert_share: float  # DIVERT verdicts / all verdicts


def iso_week(timestamp: float) -> str:
    """The ISO week (UTC) of a Unix time, as "YYYY-Www"."""
    year, week, _ = datetime.fromtimestamp(timestamp, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_summary(log) -> list[WeekSummary]:
    """Summaries of ``(sku, unix time, decision, fused score or None)`` rows, by SKU then week."""
    groups: dict[tuple[str, str], list[tuple[int, float | None]]] = defaultdict(list)
    for sku, created, decision, score in log:
        groups[(sku, iso_week(created))].append((int(decision), score))
    summaries = []
    for (sku, week), rows in sorted(groups.items()):
        scores = np.array([s for _, s in rows if s is not None and np.isfinite(s)], float)
        median, p95 = (float(np.median(scores)), float(np.percentile(scores, 95))) if scores.size else (np.nan, np.nan)
        diverts = sum(decision == DIVERT for decision, _ in rows)
        summaries.append(WeekSummary(sku, week, len(rows), int(scores.size), median, p95, diverts / len(rows)))
    return summaries


def write_csv(summaries: list[WeekSummary], path: Path) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["sku", "iso_week", "count", "scored", "median_score", "p95_score", "divert_share"])
        for s in summaries:
            writer.writerow([s.sku, s.week, s.count, s.scored, f"{s.median:.6g}", f"{s.p95:.6g}",
                             f"{s.divert_share:.6g}"])
    return path


def plot(summaries: list[WeekSummary], path: Path) -> Path:
    """Median (solid) and p95 (dashed) score per SKU over the weeks, and the divert share below."""
    matplotlib.use("Agg")

    weeks = sorted({s.week for s in summaries})
    by_sku: dict[str, list[WeekSummary]] = defaultdict(list)
    for s in summaries:
        by_sku[s.sku].append(s)
    busiest = sorted(by_sku, key=lambda sku: -sum(s.count for s in by_sku[sku]))[:MAX_PLOTTED_SKUS]
    figure, (scores_axis, divert_axis) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for sku in busiest:
        x = [weeks.index(s.week) for s in by_sku[sku]]
        line, = scores_axis.plot(x, [s.median for s in by_sku[sku]], marker="o", label=sku)
        scores_axis.plot(x, [s.p95 for s in by_sku[sku]], linestyle="--", color=line.get_color())
        divert_axis.plot(x, [s.divert_share for s in by_sku[sku]], marker="o", color=line.get_color())
    scores_axis.set_ylabel("fused score: median (—), p95 (--)")
    scores_axis.legend(fontsize=7, ncol=2)
    title = f"{len(by_sku)} SKUs" + (f", the {len(busiest)} busiest shown" if len(busiest) < len(by_sku) else "")
    scores_axis.set_title(f"Score drift per SKU and ISO week ({title})")
    divert_axis.set_ylabel("divert share")
    divert_axis.set_ylim(-0.02, 1.02)
    divert_axis.set_xticks(range(len(weeks)), weeks, rotation=45, ha="right")
    for axis in (scores_axis, divert_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, required=True, help="station SQLite store (the node's store_path)")
    parser.add_argument("--out", type=Path, required=True, help="folder for drift.csv and drift.png")


def run(args: argparse.Namespace) -> int:
    if not args.store.is_file():
        print(f"drift: store {args.store} does not exist", file=sys.stderr)
        return 2
    store = InspectionStore(args.store)
    try:
        summaries = weekly_summary(store.score_log())
    finally:
        store.close()
    if not summaries:
        print(f"drift: {args.store} has no logged inspections", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    table, figure = write_csv(summaries, args.out / "drift.csv"), plot(summaries, args.out / "drift.png")
    print(f"drift: {len(summaries)} SKU-weeks of {len({s.sku for s in summaries})} SKUs: {table}, {figure}")
    return 0
