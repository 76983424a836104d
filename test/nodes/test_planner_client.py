from damage_perception_interfaces.msg import DamageVerdict

from damage_perception.nodes.planner_client import Outcome, summarise


def outcome(truth, decision, views=6):
    return Outcome("i", truth, 0.5 if truth != "pristine" else 0.0,
                   DamageVerdict(decision=decision, num_views=views, fused_score=0.3), 2.0)


def test_summary_counts_false_diverts_and_missed_damage():
    text = summarise([outcome("pristine", DamageVerdict.PASS), outcome("pristine", DamageVerdict.DIVERT),
                      outcome("crush", DamageVerdict.DIVERT), outcome("hole", DamageVerdict.PASS),
                      outcome("tear", DamageVerdict.REVIEW, views=4)])
    assert "items: 5 (3 damaged, 2 pristine)" in text
    assert "damaged diverted: 1/3; missed damage (PASS): 1; false diverts: 1/2" in text
    assert "PASS 2, DIVERT 2, REVIEW 1, ERROR 0" in text
    assert "views per item: mean 5.6" in text
