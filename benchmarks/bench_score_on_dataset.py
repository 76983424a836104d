"""Item-level separation of the per-view pipeline's damage score on a recorded dataset (no assertions).

    .venv/bin/python benchmarks/bench_score_on_dataset.py out/flat1200 --stride 15

Scores every view of every ``stride``-th episode as the node would, fuses per item (max) and prints AUROC,
recall and false-divert rate at the configured threshold, and the pristine median score.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.policy_simulation import score_episode
from damage_perception.core.verdict import DecisionConfig, decide
from damage_perception.core.view_pipeline import ViewPipeline
from damage_perception.tools.tune import open_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--stride", type=int, default=15)
    args = parser.parse_args()
    dataset, pipeline, config = open_dataset(Path(args.dataset)), ViewPipeline(GripperGeometry()), DecisionConfig()
    results = []
    for index in range(0, len(dataset), args.stride):
        scored = score_episode(dataset[index], pipeline)
        results.append((scored.damaged, decide(scored.views, config).fused_score))
    damaged = np.array([s for d, s in results if d])
    pristine = np.array([s for d, s in results if not d])
    auroc = np.mean([[float(a > b) + 0.5 * float(a == b) for b in pristine] for a in damaged])
    print(f"{len(damaged)} damaged, {len(pristine)} pristine items: AUROC {auroc:.3f}; at threshold "
          f"{config.divert_threshold}: recall {np.mean(damaged >= config.divert_threshold):.2f}, false diverts "
          f"{np.mean(pristine >= config.divert_threshold):.2f}; pristine median score {np.median(pristine):.2f}")


if __name__ == "__main__":
    main()
