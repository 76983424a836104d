"""Boxes around the gripper's fingers and the crop box: which points are inside."""
import numpy as np

from damage_perception.core.gripper import points_in_box, within_bounds
from damage_perception.core.transforms import make_transform


def test_within_bounds_is_the_inclusive_test_on_every_axis():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(5000, 3))
    points[:10] = [0.5, -0.5, 0.25]                          # on the bounds: inside
    points[10:20, 1] = np.nan                                 # no reading: outside
    low, high = np.array([-0.5, -0.5, -0.75]), np.array([0.5, 0.5, 0.25])
    expected = np.all((points >= low) & (points <= high), axis=1)
    np.testing.assert_array_equal(within_bounds(points, low, high), expected)
    assert expected[:10].all() and not expected[10:20].any()


def test_points_in_box_with_a_margin_per_axis():
    box_from_frame = make_transform((-0.1, 0.0, 0.0))         # the box is centred at x = 0.1 of the frame
    points = np.array([[0.1, 0.0, 0.0], [0.125, 0.0, 0.0], [0.1, 0.055, 0.0], [0.1, 0.0, 0.2]])
    inside = points_in_box(points, box_from_frame, (0.04, 0.1, 0.1), margin=(0.01, 0.01, 0.0))
    np.testing.assert_array_equal(inside, [True, True, True, False])
