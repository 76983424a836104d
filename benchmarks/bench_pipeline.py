"""Per-view latency of the node's pipeline and segmentation IoU on rendered views; item-level separation.

Each view goes through what the node does per frame: Image messages -> numpy (conversions), back-projection,
segmentation, geometric scoring. Prints medians and p95s; no assertions.

    .venv/bin/python benchmarks/bench_pipeline.py [--items 24] [--views 6]
    .venv/bin/python benchmarks/bench_pipeline.py --model --kinds carton,book,mailer,bottle,bag,blister

With ``--model`` the shipped damage model also runs on every view, against a gallery enrolled for the item's
SKU beforehand (as the node does with ``model_path`` and ``store_path``): per-stage times of the classifier
(backbone + head), the gallery anomaly and the 3D shape check. torch uses 2 threads (the CI machine's cores).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.segmentation import mask_iou
from damage_perception.core.verdict import DecisionConfig, decide
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.ros.conversions import array_to_image, depth_to_meters
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig


def percentile_line(name: str, seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000.0
    return f"{name:<22} median {np.median(ms):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms"


def load_model():
    import torch

    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    torch.set_num_threads(2)
    return DamageModel.load(SHIPPED_MODEL_FILE)


def enrolled_gallery(model, sku: str):
    """The SKU's gallery as `damage-perception enrol --sim-skus` builds it (8 pristine views, fixed cell)."""
    from damage_perception.data.study import gallery_episode
    from damage_perception.data.study_scores import gallery_of
    return gallery_of(model, gallery_episode(sku, views=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--kinds", default="carton", help="comma-separated item kinds (default: carton)")
    parser.add_argument("--model", action="store_true", help="run the shipped damage model too")
    args = parser.parse_args()

    gripper = GripperGeometry()
    renderer = CellRenderer(SceneConfig(), gripper)
    model = load_model() if args.model else None
    pipeline = ViewPipeline(gripper, model=model)
    decision = DecisionConfig(fusion="learned") if model else DecisionConfig()
    rng = np.random.default_rng(args.seed)
    stage_names = ("backproject", "segment", "score") + (("classifier", "anomaly", "shape") if model else ())
    stages: dict[str, list[float]] = {name: [] for name in ("convert",) + stage_names + ("total",)}
    ious, item_scores = [], []
    for spec in make_catalogue(args.items, damage_rate=0.5, seed=args.seed, kinds=tuple(args.kinds.split(","))):
        gallery = enrolled_gallery(model, spec.sku) if model else None
        renderer.set_item(build_item(spec, gripper))
        views = []
        for index, angle in enumerate(np.linspace(0, 2 * np.pi, args.views, endpoint=False)):
            view = renderer.render(float(angle), rng)
            depth_msg = array_to_image(np.round(view.depth_m * 1000).astype(np.uint16), "16UC1")
            start = time.perf_counter()
            depth = depth_to_meters(depth_msg)
            converted = time.perf_counter()
            result, segment = pipeline.process(
                ViewInput(depth, view.intrinsics, view.T_optical_gripper, list(view.finger_transforms), view.color),
                index, float(angle), gallery)
            done = time.perf_counter()
            stages["convert"].append(converted - start)
            stages["total"].append(done - start)
            for stage in stage_names:
                stages[stage].append(result.timings.get(stage, 0.0))
            ious.append(mask_iou(segment.mask, view.item_mask))
            views.append(result)
        item_scores.append((spec.damage, decide(views, decision, fusion=model.fusion if model else None).fused_score))

    print(f"{args.items} items ({args.kinds}) x {args.views} views = {len(ious)} rendered 640x480 views")
    for name, seconds in stages.items():
        print(percentile_line(f"per-view {name}", seconds))
    print(f"segmentation IoU       median {np.median(ious):.3f}   min {np.min(ious):.3f}   "
          f"share >= 0.9: {np.mean(np.asarray(ious) >= 0.9):.1%}")
    damaged = np.array([s for d, s in item_scores if d != "pristine"])
    pristine = np.array([s for d, s in item_scores if d == "pristine"])
    auroc = np.mean([[float(a > b) + 0.5 * float(a == b) for b in pristine] for a in damaged])
    threshold = decision.divert_threshold
    print(f"item scores (fused over views): {len(damaged)} damaged, {len(pristine)} pristine; AUROC {auroc:.3f}; "
          f"at threshold {threshold}: recall {np.mean(damaged >= threshold):.1%}, "
          f"false diverts {np.mean(pristine >= threshold):.1%}")


if __name__ == "__main__":
    main()
