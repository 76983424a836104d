"""`damage-perception evaluate-mvtec DIR/CATEGORY`: the gallery path on an MVTec AD category.

Enrols ``train/good`` as one SKU's gallery (each image a reference view, as the node enrols views) and scores
every ``test/<defect>`` image against it with the model's gallery scoring; prints and writes
``evaluation.json`` (image AUROC overall and per defect type, recall at FPR 1 % and 5 %) and ``scores.jsonl``.
The overall figures are the last line. MVTec AD's licence (CC BY-NC-SA 4.0) allows evaluation, not
redistribution: read it from where it lies.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from damage_perception.core.gallery import CORESET_RATIO, build_gallery, score_view
from damage_perception.core.metrics import detection_figures, figures_line
from damage_perception.tools.image_inputs import check_size, featurize_images, image_files
from damage_perception.tools.model_file import open_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("category_dir", type=Path, help="DIR/CATEGORY with train/good and test/<defect>")
    parser.add_argument("--out", type=Path, default=Path("out/evaluation/mvtec"), help="folder for the figures")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--size", type=int, default=224, help="px of the square crop the backbone sees")
    parser.add_argument("--scoring", choices=("patchcore", "top_mean"), default="patchcore",
                        help="gallery scoring (default: PatchCore's re-weighted largest patch distance)")
    parser.add_argument("--coreset", type=float, default=None, help="coreset share per reference image")
    parser.add_argument("--max-train", type=int, default=None, help="enrol at most this many train/good images")


def _problem(root: Path, size: int) -> str | None:
    if not (root / "train" / "good").is_dir() or not (root / "test").is_dir():
        return f"{root} is not an MVTec AD category (needs train/good/ and test/<defect>/)"
    if not image_files(root / "train" / "good"):
        return f"{root}/train/good has no images"
    return check_size(size)


def run(args: argparse.Namespace) -> int:
    root = args.category_dir
    problem = _problem(root, args.size)
    if problem:
        print(f"evaluate-mvtec: {problem}", file=sys.stderr)
        return 2
    model = open_model(args.model, "evaluate-mvtec")
    if model is None:
        return 2
    start = time.perf_counter()
    train = image_files(root / "train" / "good")[:args.max_train]
    patches, cells = [], []
    for _, batch in featurize_images(model, train, args.size):
        patches.append(batch.patches)
        cells.append(batch.cells)
    gallery = build_gallery(root.name, np.concatenate(patches), np.concatenate(cells), np.zeros(len(train)), [],
                            coreset_ratio=args.coreset or CORESET_RATIO)
    enrol_s = time.perf_counter() - start
    defects = sorted(p.name for p in (root / "test").iterdir() if p.is_dir())
    tests = [(d, p) for d in defects for p in image_files(root / "test" / d)]
    scores = []
    start = time.perf_counter()
    for chunk, batch in featurize_images(model, [p for _, p in tests], args.size):
        for k in range(len(chunk)):
            scores.append(score_view(gallery, batch.patches[k], batch.cells[k], 0.0, args.scoring).score)
    score_s = (time.perf_counter() - start) / max(len(tests), 1)
    scores = np.asarray(scores)
    defect_of = np.array([d for d, _ in tests])
    good = scores[defect_of == "good"]
    summary = {"category": root.name, "model": model.version, "size": args.size, "scoring": args.scoring,
               "reference_images": len(train), "bank_patches": int(sum(len(v.patches) for v in gallery.views)),
               "enrol_s": enrol_s, "ms_per_test_image": 1000 * score_s,
               "overall": detection_figures(scores[defect_of != "good"], good),
               "per_defect": {d: detection_figures(scores[defect_of == d], good) for d in defects if d != "good"}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(summary, indent=1))
    with (args.out / "scores.jsonl").open("w") as file:
        for (defect, path), score in zip(tests, scores):
            file.write(json.dumps({"image": str(path), "defect": defect, "score": float(score)}) + "\n")
    print(f"evaluate-mvtec: {len(train)} reference images, {len(tests)} test images, {args.size} px, "
          f"{args.scoring} scoring, model {model.version}; {1000 * score_s:.0f} ms per test image")
    for defect, figures in summary["per_defect"].items():
        print(figures_line(f"  {defect}", figures))
    print(f"wrote {args.out / 'evaluation.json'}")
    print(figures_line(f"{root.name} image-level", summary["overall"]))
    return 0
