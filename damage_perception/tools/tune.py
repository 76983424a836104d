"""`damage-perception tune`: replay recorded episodes through the view policies over a parameter grid.

Writes ``tune.csv`` (one row per setting) and ``pareto.png`` (recall at the target false-positive rate
against mean views and mean cycle seconds, Pareto front drawn, recommended setting starred).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from damage_perception.core.damage_model import DamageModel
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.metrics import recall_at_fpr
from damage_perception.core.policies import StoppingRule, make_policy
from damage_perception.core.policy_simulation import (
    ArmTiming,
    fit_stopping_evidence,
    score_episode,
    simulate_policy,
)
from damage_perception.core.station import SHIPPED_MODEL_FILE, config_file
from damage_perception.core.verdict import Decision, DecisionConfig
from damage_perception.core.view_pipeline import ViewPipeline
from damage_perception.data.loaders.rosbag import RosbagDataset
from damage_perception.data.study_scores import load_scores, scored_episode
from damage_perception.data.synth_format import DATASET_FILE, SynthDataset
from damage_perception.tools.evaluate import config_threshold


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the tune sub-command."""
    parser.add_argument("dataset", type=Path,
                        help="dataset folder (damage-perception synth), rosbag2 folder, or a scores.jsonl of a study "
                             "scored by the damage model (damage-perception evaluate --out DIR writes "
                             "DIR/scores.jsonl)")
    parser.add_argument("--model", type=Path, default=None,
                        help="with scores.jsonl: the model whose fusion turns view signals into evidence "
                             "(default: the shipped model)")
    parser.add_argument("--out", type=Path, default=Path("out/tune"), help="folder for tune.csv and pareto.png")
    parser.add_argument("--target-fpr", type=float, default=0.001, help="false-positive rate for recall")
    parser.add_argument("--max-views", default="2,4,6,8", help="view budgets (fixed: view counts)")
    parser.add_argument("--false-divert-rates", default="0.001,0.01", help="SPRT alpha values")
    parser.add_argument("--miss-rates", default="0.02,0.05,0.1", help="SPRT beta values")
    parser.add_argument("--wrist-speed", type=float, default=3.0, help="rad/s of the rotation-time model")
    parser.add_argument("--per-view-seconds", type=float, default=0.25, help="settle + capture + processing")
    parser.add_argument("--max-review-rate", type=float, default=0.05,
                        help="a recommended setting sends at most this share of items to REVIEW")
    parser.add_argument("--from-csv", action="store_true",
                        help="redo the recommendation and plot from OUT/tune.csv without replaying")
    parser.add_argument("--fit-on", type=Path, default=None,
                        help="dataset (or scores.jsonl) to fit the view evidence on (default: the even-numbered "
                             "episodes, and only the odd-numbered ones are judged)")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count(), help="scoring processes")
    parser.add_argument("--no-progress", action="store_true")


@dataclass(frozen=True)
class Setting:
    """One point of the grid."""

    policy: str
    max_views: int
    false_divert_rate: float = math.nan
    miss_rate: float = math.nan
    fitted: object = None   # the StoppingRule fitted on the fitting half (evidence, view miss rate)

    def make(self):
        """A fresh policy for one episode."""
        if self.policy == "fixed":
            return make_policy("fixed", self.max_views)
        rule = dataclasses.replace(self.fitted or StoppingRule(), false_divert_rate=self.false_divert_rate,
                                   miss_rate=self.miss_rate)
        return make_policy(self.policy, self.max_views, rule)


def grid(args: argparse.Namespace, fitted=None) -> list[Setting]:
    """Fixed policies per budget, and sequential / nbv per (budget, alpha, beta)."""
    budgets = [int(v) for v in args.max_views.split(",")]
    alphas = [float(v) for v in args.false_divert_rates.split(",")]
    betas = [float(v) for v in args.miss_rates.split(",")]
    settings = [Setting("fixed", n) for n in budgets]
    settings += [Setting(policy, n, a, b, fitted) for policy, n, a, b in
                 itertools.product(("sequential", "nbv"), budgets, alphas, betas)]
    return settings


def open_dataset(path: Path):
    """Our dataset format, or a rosbag2 recording."""
    if (path / DATASET_FILE).exists():
        return SynthDataset(path)
    return RosbagDataset(path)


def _score_one(job: tuple[Path, int]):
    path, index = job
    return score_episode(open_dataset(path)[index], ViewPipeline(GripperGeometry()))


def score_all(path: Path, workers: int, progress: bool):
    """Score every episode's views once, in parallel; the order follows the dataset."""
    jobs = [(path, index) for index in range(len(open_dataset(path)))]
    with multiprocessing.get_context("spawn").Pool(max(1, workers)) as pool:
        results = pool.imap(_score_one, jobs, chunksize=1)
        return list(tqdm(results, total=len(jobs), desc="scoring views", disable=not progress))


def load_scored(path: Path, model_path: Path | None, workers: int, progress: bool):
    """Scored episodes and the fusion to judge them with: a dataset is scored here by the geometric pipeline
    (fusion None); a scores.jsonl was scored by the damage model, whose fusion then judges the items."""
    if path.suffix != ".jsonl":
        return score_all(path, workers, progress), None
    fusion = DamageModel.load(model_path or SHIPPED_MODEL_FILE).fusion
    return [scored_episode(item, fusion) for item in load_scores(path) if item.signals], fusion


def evaluate(setting: Setting, episodes, target_fpr: float, timing, fusion=None) -> dict:
    """Replay one setting over all episodes and summarise it (``fusion``: judge with the model's item fusion)."""
    decision = DecisionConfig()
    if fusion is not None:  # the node's calibrated threshold on the model's item probability
        configured = config_threshold(config_file("damage_perception.yaml"))
        decision = DecisionConfig(fusion="learned", divert_threshold=configured)
    runs = [(episode.damaged, simulate_policy(setting.make, episode, decision, timing, fusion)) for episode in episodes]
    damaged = [run for is_damaged, run in runs if is_damaged]
    pristine = [run for is_damaged, run in runs if not is_damaged]
    recall, threshold = recall_at_fpr([r.fused_score for r in damaged], [r.fused_score for r in pristine],
                                      target_fpr)
    def share(runs_, decision):
        return float(np.mean([r.decision == decision for r in runs_])) if runs_ else math.nan
    return {"policy": setting.policy, "max_views": setting.max_views,
            "false_divert_rate_target": setting.false_divert_rate, "miss_rate_target": setting.miss_rate,
            "episodes": len(runs), "damaged": len(damaged), "pristine": len(pristine),
            f"recall_at_fpr_{target_fpr:g}": recall, "score_threshold": threshold,
            "decision_recall": share(damaged, Decision.DIVERT), "false_divert_rate": share(pristine, Decision.DIVERT),
            "review_rate": share([r for _, r in runs], Decision.REVIEW),
            "mean_views": float(np.mean([r.num_views for _, r in runs])),
            "mean_seconds": float(np.mean([r.seconds for _, r in runs]))}


def recommend(rows: list[dict], recall_key: str, target_fpr: float, max_review_rate: float) -> int:
    """Among the settings whose own decisions send at most ``max_review_rate`` of all items to a person and
    divert at most ``target_fpr`` of the pristine items (relaxing those constraints in that order where none
    meets them), the fastest (then fewest views) whose recall at the target FPR is within one point of the
    best of them: the constraints come first, a cell cannot absorb a flood of REVIEWs for a point of recall."""
    everything = list(range(len(rows)))
    usable = [i for i in everything if rows[i]["review_rate"] <= max_review_rate]
    pool = [i for i in usable if rows[i]["false_divert_rate"] <= target_fpr] or usable or everything
    best = max(rows[i][recall_key] for i in pool)
    close = [i for i in pool if rows[i][recall_key] >= best - 0.01]
    return min(close, key=lambda i: (rows[i]["mean_seconds"], rows[i]["mean_views"]))


def pareto_plot(rows: list[dict], recall_key: str, chosen: int, path: Path, target_fpr: float) -> None:
    """Recall at the target FPR against mean views and mean seconds, with the Pareto front."""
    matplotlib.use("Agg")
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colours = {"fixed": "tab:blue", "sequential": "tab:orange", "nbv": "tab:green"}
    for axis, cost, label in ((axes[0], "mean_views", "mean views per item"),
                              (axes[1], "mean_seconds", "mean cycle seconds per item")):
        for policy, colour in colours.items():
            points = [(row[cost], row[recall_key]) for row in rows if row["policy"] == policy]
            axis.scatter(*zip(*points), c=colour, label=policy, alpha=0.75, s=28)
        front = sorted((row[cost], row[recall_key]) for row in rows)
        frontier, best = [], -1.0
        for x, y in front:
            if y > best:
                frontier.append((x, y))
                best = y
        axis.step(*zip(*frontier), where="post", color="grey", linewidth=1, label="Pareto front")
        axis.scatter(rows[chosen][cost], rows[chosen][recall_key], marker="*", s=260, c="red",
                     label="recommended", zorder=5)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"item recall at FPR {target_fpr:g}")
    axes[0].legend(loc="lower right")
    row = rows[chosen]
    figure.suptitle(f"View policies over {row['episodes']} episodes ({row['damaged']} damaged): recommended "
                    f"{row['policy']} budget {row['max_views']}, {row['mean_views']:.1f} views, "
                    f"{row['mean_seconds']:.1f} s")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def read_rows(path: Path) -> list[dict]:
    """Rows of a tune.csv with numbers as numbers."""
    def value(text: str):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    with open(path, newline="") as handle:
        return [{key: value(text) for key, text in row.items() if key != "recommended"}
                for row in csv.DictReader(handle)]


def run(args: argparse.Namespace) -> int:
    """Score, replay the grid, write the CSV and the plot, print the recommendation."""
    if args.from_csv:
        return report(read_rows(args.out / "tune.csv"), args)
    scored, fusion = load_scored(args.dataset, args.model, args.workers, not args.no_progress)
    if args.fit_on is not None:  # fit on another dataset, judge on all of this one
        fitting, episodes = load_scored(args.fit_on, args.model, args.workers, not args.no_progress)[0], scored
    else:  # fit on the even-numbered episodes, judge every setting on the odd-numbered ones
        fitting, episodes = scored[0::2], scored[1::2]
    try:
        fitted = fit_stopping_evidence(fitting, StoppingRule())
        print(f"tune: view evidence fitted on {len(fitting)} episodes: llr = {fitted.evidence.slope:.1f} * "
              f"(score - {fitted.evidence.midpoint:.3f}), view miss rate {fitted.view_miss_rate:.3f}")
    except ValueError as error:
        fitted, episodes = None, scored
        print(f"tune: default view evidence ({error})")
    timing = ArmTiming(args.wrist_speed, args.per_view_seconds)
    return report([evaluate(setting, episodes, args.target_fpr, timing, fusion) for setting in grid(args, fitted)],
                  args)


def report(rows: list[dict], args: argparse.Namespace) -> int:
    """Mark the recommended setting, write tune.csv and pareto.png, print a summary."""
    recall_key = f"recall_at_fpr_{args.target_fpr:g}"
    chosen = recommend(rows, recall_key, args.target_fpr, args.max_review_rate)
    for index, row in enumerate(rows):
        row["recommended"] = index == chosen
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "tune.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pareto_plot(rows, recall_key, chosen, args.out / "pareto.png", args.target_fpr)
    row = rows[chosen]
    pristine = row["pristine"]
    note = "" if pristine * args.target_fpr >= 1 else (
        f" (only {pristine} pristine episodes: FPR {args.target_fpr:g} cannot be resolved; the threshold is "
        "above every pristine score)")
    print(f"tune: {len(rows)} settings over {row['episodes']} episodes -> {args.out}/tune.csv, pareto.png{note}")
    print(f"tune: recommended {row['policy']} max_views={row['max_views']} alpha={row['false_divert_rate_target']}"
          f" beta={row['miss_rate_target']}: recall@FPR {row[recall_key]:.3f}, decision recall "
          f"{row['decision_recall']:.3f}, false diverts {row['false_divert_rate']:.4f}, reviews "
          f"{row['review_rate']:.3f}, {row['mean_views']:.2f} views, {row['mean_seconds']:.2f} s")
    return 0
