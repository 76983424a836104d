"""Time per rendered 640x480 RGB-D frame of the simulated cell (ray casting, shading, sensor model).

Renders ``--views`` wrist angles of each of ``--items`` catalogue items (and an empty gripper), timing
``CellRenderer.render`` only; item builds (``build_item`` + ``set_item``) are timed separately. No assertions.

    .venv/bin/python benchmarks/bench_render.py [--items 10] [--views 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig


def summary(name: str, seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000.0
    return (f"{name:<14} n={len(ms):<4d} median {np.median(ms):6.1f} ms   p95 {np.percentile(ms, 95):6.1f} ms"
            f"   max {ms.max():6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    gripper = GripperGeometry()
    start = time.perf_counter()
    renderer = CellRenderer(SceneConfig(), gripper)
    print(f"renderer setup (static scene) {1000 * (time.perf_counter() - start):.0f} ms")
    rng = np.random.default_rng(args.seed)
    renderer.render(0.0, rng)  # warm-up: noise bank, open3d threads
    frames, builds = [], []
    specs = [None] + make_catalogue(args.items, damage_rate=0.6, seed=args.seed)
    for spec in specs:
        start = time.perf_counter()
        renderer.set_item(None if spec is None else build_item(spec, gripper))
        builds.append(time.perf_counter() - start)
        for angle in np.linspace(0, 2 * np.pi, args.views, endpoint=False):
            start = time.perf_counter()
            renderer.render(float(angle), rng)
            frames.append(time.perf_counter() - start)
    print(summary("item build", builds))
    print(summary("render frame", frames))
    print(f"throughput     {len(frames) / sum(frames):.1f} frames/s (single thread of Python; open3d may use more)")


if __name__ == "__main__":
    main()
