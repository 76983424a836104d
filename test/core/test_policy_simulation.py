import math

import numpy as np
import pytest

from damage_perception.core.metrics import recall_at_fpr
from damage_perception.core.policies import FixedViewPolicy, SequentialPolicy, StoppingRule
from damage_perception.core.policy_simulation import ArmTiming, ScoredEpisode, simulate_policy
from damage_perception.core.verdict import Decision, DecisionConfig, ViewResult


def episode(label, scores):
    angles = np.linspace(0, 2 * math.pi, len(scores), endpoint=False)
    return ScoredEpisode("e", label, angles, [ViewResult(i, a, True, s) for i, (a, s) in
                                              enumerate(zip(angles, scores))])


def test_replay_gives_the_policy_the_nearest_recorded_view_and_times_the_turns():
    scores = [0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0]  # damage seen only at 90 degrees
    run = simulate_policy(lambda: FixedViewPolicy([0.0, math.radians(88), math.radians(180)]),
                 episode("crush", scores), DecisionConfig(), ArmTiming(wrist_speed=math.pi, per_view_s=0.5))
    assert run.decision == Decision.DIVERT and run.num_views == 3 and run.fused_score == pytest.approx(0.9)
    assert run.seconds == pytest.approx(3 * 0.5 + math.radians(180) / math.pi)


def test_replay_uses_the_policy_decision_and_its_early_stop():
    run = simulate_policy(lambda: SequentialPolicy(8, StoppingRule()), episode("pristine", [0.0] * 8),
                 DecisionConfig())
    assert run.decision == Decision.PASS and run.num_views == 4


def test_recall_at_fpr_counts_ties_against_the_threshold():
    pristine = np.linspace(0, 1, 1000)            # 1000 pristine items
    damaged = np.array([0.9985, 0.9995, 1.0, 1.5])
    recall, threshold = recall_at_fpr(damaged, pristine, target_fpr=0.001)  # one pristine may pass it
    assert 0.998 < threshold <= 0.999 + 1e-12
    assert recall == pytest.approx(0.75)
    recall, threshold = recall_at_fpr(damaged, pristine[-10:], target_fpr=0.001)  # too few: above the maximum
    assert threshold > 1.0 and recall == pytest.approx(0.25)
    assert math.isnan(recall_at_fpr([], pristine, 0.001)[0])


def test_stopping_evidence_is_fitted_on_views_that_show_damage():
    from damage_perception.core.policy_simulation import fit_stopping_evidence
    rng = np.random.default_rng(1)
    clean = [episode("pristine", list(rng.uniform(0.0, 0.2, 8))) for _ in range(5)]
    damaged = []
    for _ in range(5):  # damage shows in two of eight views; the other six look clean
        scores = list(rng.uniform(0.0, 0.2, 8))
        scores[2], scores[3] = rng.uniform(0.6, 1.0, 2)
        scored = episode("crush", scores)
        scored.damage_visible = [i in (2, 3) for i in range(8)]
        damaged.append(scored)
    rule = fit_stopping_evidence(clean + damaged, StoppingRule())
    assert 0.2 < rule.evidence.midpoint < 0.6
    assert rule.view_miss_rate == pytest.approx(0.01)  # every damage view scored high: clipped at 1 %
    with pytest.raises(ValueError, match="need labelled views"):
        fit_stopping_evidence(clean, StoppingRule())
