import math

import pytest

from damage_perception.core.policies import FixedViewPolicy, make_policy
from damage_perception.core.verdict import ViewResult


def test_fixed_policy_visits_angles_in_order_then_stops():
    policy = FixedViewPolicy([0.0, 1.0, 2.0])
    views = []
    angles = []
    while (angle := policy.next_view(views)) is not None:
        angles.append(angle)
        views.append(ViewResult(len(views), angle, True))
    assert angles == [0.0, 1.0, 2.0]


def test_evenly_spaced_covers_a_turn():
    policy = make_policy("fixed", 4)
    assert policy.angles == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])


def test_unknown_policy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="available: fixed"):
        make_policy("random", 3)
    with pytest.raises(ValueError):
        FixedViewPolicy([])
