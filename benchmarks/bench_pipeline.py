"""Per-view latency of the node's pipeline and segmentation IoU on rendered views; item-level separation.

Each view goes through what the node does per frame: Image messages -> numpy (conversions), back-projection,
segmentation, geometric scoring. Prints medians and p95s, and per item the time from its last view's frame to
the decision (that view's processing and the fusion over all views); no assertions.

    .venv/bin/python benchmarks/bench_pipeline.py [--items 24] [--views 6]
    .venv/bin/python benchmarks/bench_pipeline.py --model --kinds carton,book,mailer,bottle,bag,blister
    .venv/bin/python benchmarks/bench_pipeline.py --model --compare-model PREVIOUS.pt --kinds ...

With ``--model [FILE]`` a damage model (default: the shipped one) also runs on every view, against a gallery
enrolled for the item's SKU beforehand (12 pristine views, as the node's ``~/enrol_sku`` does): per-stage
times of the classifier (backbone + head), the gallery anomaly, the 3D shape check and the registered
comparison. The classifier's reading of the gallery's own views (``DamageModel.reference_reading``) is made
once per gallery version in the node (``StationStore`` keeps the decoded gallery from item to item): it is
timed apart, right after enrolment, not inside an item's first view. ``--compare-model`` runs a second
model on the very same rendered views, in the same process, and prints both side by side with the ratio of
their per-view totals. Threads as in the node: ONNX Runtime
2 (the CI machine's cores), torch 1 (``use_inference_threads``).
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


def load_model(path: str | None):
    from damage_perception.core.damage_model import DamageModel, use_inference_threads
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    model = DamageModel.load(path or SHIPPED_MODEL_FILE)
    use_inference_threads()   # as the node: ONNX Runtime's 2 threads for the backbone, torch on one
    return model


def enrolled_gallery(model, sku: str, views: int = 12):
    """The SKU's gallery as `damage-perception enrol --sim-skus` builds it (pristine views, fixed cell)."""
    from damage_perception.data.study import gallery_episode
    from damage_perception.data.study_scores import gallery_of
    return gallery_of(model, gallery_episode(sku, views=views))


MODEL_STAGES = ("classifier", "anomaly", "shape", "registered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--kinds", default="carton", help="comma-separated item kinds (default: carton)")
    parser.add_argument("--model", nargs="?", const="", default=None, metavar="FILE",
                        help="run a damage model too (default FILE: the shipped one)")
    parser.add_argument("--compare-model", default=None, metavar="FILE",
                        help="run this model too on the same views, side by side")
    args = parser.parse_args()

    gripper = GripperGeometry()
    renderer = CellRenderer(SceneConfig(), gripper)
    models = []
    if args.model is not None:
        models.append(load_model(args.model or None))
    if args.compare_model:
        models.append(load_model(args.compare_model))
    pipelines = [ViewPipeline(gripper, model=m) for m in models] or [ViewPipeline(gripper)]
    decision = DecisionConfig(fusion="learned") if models else DecisionConfig()
    rng = np.random.default_rng(args.seed)
    stage_names = ("backproject", "segment", "score") + (MODEL_STAGES if models else ())
    stages = [{name: [] for name in ("convert",) + stage_names + ("total",)} for _ in pipelines]
    ious, item_scores, after_last_frame = [], [[] for _ in pipelines], [[] for _ in pipelines]
    readings = [[] for _ in pipelines]   # seconds per gallery for the reference reading
    for spec in make_catalogue(args.items, damage_rate=0.5, seed=args.seed, kinds=tuple(args.kinds.split(","))):
        galleries = [enrolled_gallery(m, spec.sku) for m in models] or [None]
        for k, (model, gallery) in enumerate(zip(models, galleries)):
            start = time.perf_counter()
            model.reference_reading(gallery)
            readings[k].append(time.perf_counter() - start)
        renderer.set_item(build_item(spec, gripper))
        views = [[] for _ in pipelines]
        for index, angle in enumerate(np.linspace(0, 2 * np.pi, args.views, endpoint=False)):
            view = renderer.render(float(angle), rng)
            depth_msg = array_to_image(np.round(view.depth_m * 1000).astype(np.uint16), "16UC1")
            for k, (pipeline, gallery) in enumerate(zip(pipelines, galleries)):
                start = time.perf_counter()
                depth = depth_to_meters(depth_msg)
                converted = time.perf_counter()
                result, segment = pipeline.process(
                    ViewInput(depth, view.intrinsics, view.T_optical_gripper, list(view.finger_transforms),
                              view.color), index, float(angle), gallery)
                done = time.perf_counter()
                stages[k]["convert"].append(converted - start)
                stages[k]["total"].append(done - start)
                for stage in stage_names:
                    stages[k][stage].append(result.timings.get(stage, 0.0))
                views[k].append(result)
            ious.append(mask_iou(segment.mask, view.item_mask))
        for k, model in enumerate(models or [None]):
            fusion = model.fusion if model else None
            start = time.perf_counter()
            fused = decide(views[k], decision, fusion=fusion).fused_score
            # what the verdict waits for once the last view's frame is in: that view's processing, the decision
            after_last_frame[k].append(stages[k]["total"][-1] + time.perf_counter() - start)
            item_scores[k].append((spec.damage, fused))

    print(f"{args.items} items ({args.kinds}) x {args.views} views = {len(ious)} rendered 640x480 views")
    names = [m.version for m in models] or ["geometric only"]
    for k, name in enumerate(names):
        print(f"--- {name}")
        for stage, seconds in stages[k].items():
            print(percentile_line(f"per-view {stage}", seconds))
        print(percentile_line("verdict after last view", after_last_frame[k]))
        if readings[k]:
            print(percentile_line("reference reading", readings[k]) + "   (once per gallery version)")
        print(item_line(item_scores[k], decision.divert_threshold))
    if len(names) == 2:
        ratio = np.median(stages[0]["total"]) / np.median(stages[1]["total"])
        print(f"per-view total, median: {names[0]} / {names[1]} = {ratio:.2f}")
    print(f"segmentation IoU       median {np.median(ious):.3f}   min {np.min(ious):.3f}   "
          f"share >= 0.9: {np.mean(np.asarray(ious) >= 0.9):.1%}")


def item_line(item_scores: list[tuple[str, float]], threshold: float) -> str:
    damaged = np.array([s for d, s in item_scores if d != "pristine"])
    pristine = np.array([s for d, s in item_scores if d == "pristine"])
    auroc = np.mean([[float(a > b) + 0.5 * float(a == b) for b in pristine] for a in damaged])
    return (f"item scores (fused over views): {len(damaged)} damaged, {len(pristine)} pristine; AUROC {auroc:.3f}; "
            f"at threshold {threshold}: recall {np.mean(damaged >= threshold):.1%}, "
            f"false diverts {np.mean(pristine >= threshold):.1%}")


if __name__ == "__main__":
    main()
