import math

import numpy as np
import pytest

from damage_perception.core import transforms as tf


def test_quaternion_order_is_ros_xyzw():
    quarter_turn_z = np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    np.testing.assert_allclose(tf.quaternion_to_matrix(quarter_turn_z), tf.rotation_about_z(math.pi / 2),
                               atol=1e-12)
    np.testing.assert_allclose(tf.matrix_to_quaternion(tf.rotation_about_z(math.pi / 2)), quarter_turn_z,
                               atol=1e-12)


def test_zero_quaternion_is_rejected():
    with pytest.raises(ValueError):
        tf.quaternion_to_matrix([0, 0, 0, 0])


def test_invert_and_apply_round_trip():
    t = tf.transform_from_xyz_rpy((0.1, -0.2, 0.3), (0.3, -0.5, 1.2))
    points = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(tf.apply(tf.invert(t), tf.apply(t, points)), points, atol=1e-12)


def test_interpolation_halfway():
    t0 = tf.make_transform((0, 0, 0))
    t1 = tf.make_transform((1.0, 2.0, 0.0), tf.rotation_about_z(math.pi / 2))
    mid = tf.interpolate_transform(t0, t1, 0.5)
    np.testing.assert_allclose(mid[:3, 3], [0.5, 1.0, 0.0])
    assert tf.rotation_angle_between(t0, mid) == pytest.approx(math.pi / 4)


def test_slerp_takes_the_short_way():
    q0 = np.array([0, 0, 0, 1.0])
    q1 = -tf.matrix_to_quaternion(tf.rotation_about_z(0.2))  # same rotation, opposite sign
    mid = tf.slerp(q0, q1, 0.5)
    assert tf.rotation_angle_between(np.eye(4), tf.make_transform(rotation=tf.quaternion_to_matrix(mid))) \
        == pytest.approx(0.1)


def test_rotation_about_axis_is_rotation_about_z_for_the_z_axis_of_any_length():
    np.testing.assert_allclose(tf.rotation_about_axis(np.array([0.0, 0.0, 3.0]), 0.4), tf.rotation_about_z(0.4),
                               atol=1e-12)
