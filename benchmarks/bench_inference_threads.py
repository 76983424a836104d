"""Per-view pipeline time with torch on 1 thread (what the node and the tools use) against 2, side by side.

The backbone runs in ONNX Runtime on its own 2 threads; torch runs only small ops (head, pooling, softmax).
Every rendered view is processed with each thread count in turn, in the same process, so load from other
jobs hits both alike; prints the medians and their ratio. No assertions.

    .venv/bin/python benchmarks/bench_inference_threads.py [--items 6] [--views 6] [--repeats 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

KINDS = ("carton", "book", "mailer", "bottle", "bag", "blister")


def rendered_views(model: DamageModel, gripper: GripperGeometry, items: int, views: int, seed: int) -> list:
    """(view input, index, angle, gallery) for ``items`` rendered items of every kind."""
    from damage_perception.data.study import gallery_episode
    from damage_perception.data.study_scores import gallery_of
    renderer, rng, work = CellRenderer(SceneConfig(), gripper), np.random.default_rng(seed), []
    for spec in make_catalogue(items, damage_rate=0.5, seed=seed, kinds=KINDS):
        gallery = gallery_of(model, gallery_episode(spec.sku, views=12))
        renderer.set_item(build_item(spec, gripper))
        for index, angle in enumerate(np.linspace(0, 2 * np.pi, views, endpoint=False)):
            view = renderer.render(float(angle), rng)
            work.append((ViewInput(view.depth_m, view.intrinsics, view.T_optical_gripper,
                                   list(view.finger_transforms), view.color), index, float(angle), gallery))
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    gripper = GripperGeometry()
    model = DamageModel.load(SHIPPED_MODEL_FILE)
    pipeline = ViewPipeline(gripper, model=model)
    work = rendered_views(model, gripper, args.items, args.views, args.seed)
    for view in work[:3]:   # warm-up: ONNX Runtime's first runs
        pipeline.process(*view)
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for view in work:
            for threads in seconds:
                torch.set_num_threads(threads)
                start = time.perf_counter()
                pipeline.process(*view)
                seconds[threads].append(time.perf_counter() - start)
    print(f"{len(work)} views x {args.repeats} repeats, model {model.version}")
    for threads, times in seconds.items():
        print(f"torch threads {threads}: per-view median {1000 * np.median(times):6.1f} ms   "
              f"p95 {1000 * np.percentile(times, 95):6.1f} ms")
    print(f"ratio 2 threads / 1 thread (medians): {np.median(seconds[2]) / np.median(seconds[1]):.2f}")


if __name__ == "__main__":
    main()
