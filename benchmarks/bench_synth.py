"""Throughput of `damage-perception synth`: rendered and written views per second with parallel workers.

Renders ``--items`` catalogue episodes of ``--views`` views with ``--workers`` processes into a temporary
folder (or ``--out``) and prints per-episode times (render, write), the median per-episode rate (views
over render + write time of one episode in one worker) and the overall rate (all views over the wall time,
worker start-up included). Target: >= 10 views/s overall on a 2-core machine. No assertions.

    .venv/bin/python benchmarks/bench_synth.py [--items 24] [--views 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from damage_perception.data.synthesize import SynthSettings, synthesize

TARGET_VIEWS_PER_S = 10.0


def summary(name: str, values: list[float], unit: str, scale: float = 1.0) -> str:
    v = np.asarray(values) * scale
    return (f"{name:<22} median {np.median(v):7.1f} {unit}   p95 {np.percentile(v, 95):7.1f} {unit}"
            f"   max {v.max():7.1f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--damage-rate", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=None, help="keep the dataset here (default: a temp dir)")
    args = parser.parse_args()

    settings = SynthSettings(items=args.items, damage_rate=args.damage_rate, seed=args.seed, views=args.views)
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        out = args.out or Path(tmp)
        report = synthesize(settings, out, workers=args.workers, progress=False)
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    res = report.results
    per_view = [(r.render_s + r.write_s) / r.views for r in res]
    print(f"{len(res)} episodes x {args.views} views, {report.workers} workers, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {size_mb / max(report.views, 1):.2f} MB per view")
    print(summary("render per view", [r.render_s / r.views for r in res], "ms", 1000))
    print(summary("write per view", [r.write_s / r.views for r in res], "ms", 1000))
    print(f"per-episode rate       median {np.median([1 / t for t in per_view]):7.1f} views/s (one worker)")
    cpu = sum(r.cpu_s for r in res) / report.views
    print(f"CPU per view           {1000 * cpu:7.1f} ms: {report.workers / cpu:.1f} views/s with {report.workers} idle "
          f"cores (what this machine gives when nobody else uses it)")
    verdict = "meets" if report.views_per_s >= TARGET_VIEWS_PER_S else "BELOW"
    print(f"overall                {report.views_per_s:7.1f} views/s ({report.views} views in {report.wall_s:.1f} s, "
          f"start-up included; {verdict} the {TARGET_VIEWS_PER_S:.0f} views/s target)")


if __name__ == "__main__":
    main()
