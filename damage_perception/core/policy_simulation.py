"""Policy simulation: view policies run offline over scored episodes, the same policy code the node runs live.

Each episode's recorded views are scored once; a policy then asks for wrist angles and is given the
recorded view nearest to each (episodes are recorded densely enough that this is the view the arm would
have taken). A rotation-time model of the arm turns the angles into cycle seconds.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from damage_perception.core.policies import StoppingRule, ViewPolicy, evidence_input, fit_view_evidence
from damage_perception.core.verdict import Decision, DecisionConfig, ViewResult, decide
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline


@dataclass
class ScoredEpisode:
    """An episode's recorded views, scored by the per-view pipeline."""

    episode_id: str
    label: str
    angles: np.ndarray          # wrist angle (rad) of each recorded view
    views: list[ViewResult]
    damage_visible: list[bool] | None = None  # per view, from ground truth where the dataset has it

    @property
    def damaged(self) -> bool:
        return self.label != "pristine"


@dataclass(frozen=True)
class ArmTiming:
    """How long views cost: the wrist turns at ``wrist_speed``, then settles, captures and processes."""

    wrist_speed: float = 3.0    # rad/s
    per_view_s: float = 0.25    # settle + capture + processing


@dataclass
class PolicyRun:
    """What a policy did with one episode."""

    decision: Decision
    fused_score: float
    num_views: int
    seconds: float


def score_episode(episode, pipeline: ViewPipeline, min_damage_px: int = 50) -> ScoredEpisode:
    """Score every recorded view of an :class:`~damage_perception.data.episode.Episode` that has poses;
    a view shows damage when its ground-truth damage mask has ``min_damage_px`` pixels."""
    results, angles, visible = [], [], []
    for index, view in enumerate(episode.views):
        if view.camera_from_gripper is None or view.wrist_angle is None:
            raise ValueError(f"episode {episode.episode_id} view {index} has no gripper pose or wrist angle")
        depth = np.where(view.depth_m > 0, view.depth_m, np.nan).astype(np.float32)
        view_input = ViewInput(depth, view.intrinsics, view.camera_from_gripper, list(view.finger_poses or []),
                               view.color)
        result, _ = pipeline.process(view_input, index, view.wrist_angle)
        results.append(result)
        angles.append(view.wrist_angle)
        visible.append(view.damage_mask is not None and int(np.count_nonzero(view.damage_mask)) >= min_damage_px)
    has_truth = all(view.damage_mask is not None for view in episode.views)
    return ScoredEpisode(episode.episode_id, episode.label, np.asarray(angles, dtype=float), results,
                         visible if has_truth else None)


def simulate_policy(make_policy: Callable[[], ViewPolicy], episode: ScoredEpisode, decision: DecisionConfig,
           timing: ArmTiming = ArmTiming(), fusion=None) -> PolicyRun:
    """Run a fresh policy over one scored episode and judge it as the node would (``fusion``: the damage
    model's, for ``decision.fusion == "learned"``)."""
    policy = make_policy()
    taken: list[ViewResult] = []
    wrist, seconds = 0.0, 0.0
    while (angle := policy.next_view(taken)) is not None:
        nearest = int(np.argmin(np.abs(np.angle(np.exp(1j * (episode.angles - angle))))))
        taken.append(dataclasses.replace(episode.views[nearest], index=len(taken), wrist_angle=angle))
        seconds += abs(math.remainder(angle - wrist, 2 * math.pi)) / timing.wrist_speed + timing.per_view_s
        wrist = angle
    verdict = decide(taken, decision, policy.early_decision(taken), fusion)
    return PolicyRun(verdict.decision, verdict.fused_score, len(taken), seconds)


def fit_stopping_evidence(episodes: Sequence[ScoredEpisode], rule: StoppingRule) -> StoppingRule:
    """The stopping rule with its view evidence and view miss rate fitted on labelled views: views of
    pristine items against views that show damage (ground truth)."""
    clean = [evidence_input(v) for e in episodes if not e.damaged for v in e.views if v.found]
    damaged = [evidence_input(v) for e in episodes if e.damaged and e.damage_visible
               for v, shows in zip(e.views, e.damage_visible) if shows and v.found]
    if len(clean) < 10 or len(damaged) < 10:
        raise ValueError(f"need labelled views to fit on: {len(clean)} clean, {len(damaged)} showing damage")
    evidence = dataclasses.replace(fit_view_evidence(clean, damaged), clip=rule.evidence.clip)
    view_miss_rate = float(np.clip(np.mean([evidence.llr(x) < 0 for x in damaged]), 0.01, 0.5))
    return dataclasses.replace(rule, evidence=evidence, view_miss_rate=view_miss_rate)
