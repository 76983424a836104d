"""Missing parts of a set caught at held-out thresholds: a blister study whose damaged items are all missing
parts, scored by each model, judged at the threshold its held-out ``evaluation.json`` found for FPR 0.1 % / 1 %.

    .venv/bin/python benchmarks/bench_missing_parts.py --out out/studies/missing \\
        --model out/models/v3.pt out/evaluation/heldout3_v3/evaluation.json \\
        --model damage_perception/models/damage_model.pt out/evaluation/heldout3_v2/evaluation.json

Rendering (8 SKUs x 8 items + galleries, one process) takes about 2 minutes on 2 idle cores; it resumes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import damage_perception.data.study as study_module
from damage_perception.core.damage_model import DamageModel
from damage_perception.data.study import Study, StudySettings, render_study
from damage_perception.data.study_scores import score_study


def render_missing_part_study(out: Path, skus: int, items: int, seed: int) -> Study:
    """The study, every damaged blister a missing part (the damage draw narrowed in this process only)."""
    study_module.KIND_DAMAGES = {**study_module.KIND_DAMAGES, "blister": ("missing_part",)}
    settings = StudySettings(split="validation", kinds=("blister",), skus_per_kind=skus, items_per_sku=items,
                             damage_rate=0.5, seed=seed, first_sku=720, gallery_views=12)
    render_study(settings, out, workers=1, progress=True)
    return Study(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/studies/missing"))
    parser.add_argument("--skus", type=int, default=8)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--seed", type=int, default=616)
    parser.add_argument("--model", nargs=2, action="append", required=True, metavar=("MODEL", "EVALUATION_JSON"))
    args = parser.parse_args()
    study = render_missing_part_study(args.out, args.skus, args.items, args.seed)
    for model_file, evaluation in args.model:
        model = DamageModel.load(model_file)
        items = score_study(study, model)
        bad = [i for i in items if i.damaged]
        good = [i for i in items if not i.damaged]
        for point in json.loads(Path(evaluation).read_text())["operating_points"]:
            threshold = point["threshold"]
            caught = sum(i.item_probability(model.fusion) >= threshold for i in bad)
            above = sum(i.item_probability(model.fusion) >= threshold for i in good)
            print(f"{model.version}: at FPR {point['target_fpr']:.1%} (threshold {threshold:.4f}): missing parts "
                  f"caught {caught}/{len(bad)}, good blisters above {above}/{len(good)}")


if __name__ == "__main__":
    main()
