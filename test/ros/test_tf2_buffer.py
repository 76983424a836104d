"""The tf2 Buffer stand-in without DDS: composition, interpolation, errors, caching and waiting."""
import math
import threading
import time

import numpy as np
import pytest
from rclpy.duration import Duration
from rclpy.time import Time

from damage_perception.core.transforms import invert, make_transform, rotation_about_z, transform_from_xyz_rpy
from damage_perception.ros.conversions import matrix_to_transform_stamped, transform_to_matrix
from damage_perception.ros.tf2_compat import (
    Buffer,
    ConnectivityException,
    ExtrapolationException,
    LookupException,
    TransformException,
    _nanoseconds,
)


def at(seconds: float) -> Time:
    return Time(nanoseconds=int(round(seconds * 1e9)))


def add(buffer, matrix, parent, child, seconds=0.0, static=False):
    msg = matrix_to_transform_stamped(matrix, parent, child, at(seconds).to_msg())
    return (buffer.set_transform_static if static else buffer.set_transform)(msg, "test")


def lookup(buffer, target, source, seconds=0.0, timeout=0.0):
    return transform_to_matrix(buffer.lookup_transform(target, source, at(seconds), Duration(seconds=timeout)))


WORLD_CAMERA = transform_from_xyz_rpy((0.5, 0.0, 1.2), (math.pi, 0.3, -1.0))
WORLD_BASE = transform_from_xyz_rpy((1.0, 0.2, 0.0), (0.0, 0.0, 0.7))
BASE_GRIPPER = transform_from_xyz_rpy((0.1, 0.0, 0.6), (0.2, -0.1, 0.4))


@pytest.fixture
def tree():
    """world -> camera (static), world -> base (static), base -> gripper (dynamic at 1 s and 2 s)."""
    buffer = Buffer()
    add(buffer, WORLD_CAMERA, "world", "camera", static=True)
    add(buffer, WORLD_BASE, "world", "base", static=True)
    add(buffer, BASE_GRIPPER, "base", "gripper", 1.0)
    add(buffer, BASE_GRIPPER @ make_transform((0.0, 0.0, 0.1)), "base", "gripper", 2.0)
    return buffer


def test_chain_through_common_ancestor_and_inverse(tree):
    camera_from_gripper = lookup(tree, "camera", "gripper", 1.0)
    expected = invert(WORLD_CAMERA) @ WORLD_BASE @ BASE_GRIPPER
    np.testing.assert_allclose(camera_from_gripper, expected, atol=1e-9)
    np.testing.assert_allclose(lookup(tree, "gripper", "camera", 1.0), invert(expected), atol=1e-9)
    stamped = tree.lookup_transform("camera", "gripper", at(1.0))
    assert (stamped.header.frame_id, stamped.child_frame_id) == ("camera", "gripper")
    assert _nanoseconds(stamped.header.stamp) == at(1.0).nanoseconds
    np.testing.assert_allclose(lookup(tree, "gripper", "gripper", 1.0), np.eye(4))
    point_in_gripper = np.array([0.01, 0.02, 0.03, 1.0])
    np.testing.assert_allclose(camera_from_gripper @ point_in_gripper,
                               invert(WORLD_CAMERA) @ (WORLD_BASE @ (BASE_GRIPPER @ point_in_gripper)))


def test_interpolation_lerps_translation_and_slerps_rotation():
    buffer = Buffer()
    add(buffer, make_transform((0.0, 0.0, 0.0)), "a", "b", 1.0)
    add(buffer, make_transform((2.0, 0.0, 0.0), rotation_about_z(math.pi / 2)), "a", "b", 2.0)
    halfway = lookup(buffer, "a", "b", 1.5)
    np.testing.assert_allclose(halfway, make_transform((1.0, 0.0, 0.0), rotation_about_z(math.pi / 4)), atol=1e-9)
    quarter = lookup(buffer, "a", "b", 1.25)
    np.testing.assert_allclose(quarter, make_transform((0.5, 0.0, 0.0), rotation_about_z(math.pi / 8)), atol=1e-9)
    exact = lookup(buffer, "a", "b", 2.0)
    np.testing.assert_allclose(exact, make_transform((2.0, 0, 0), rotation_about_z(math.pi / 2)), atol=1e-12)


def test_static_edges_hold_at_any_time_mixed_with_dynamic(tree):
    for seconds in (1.0, 1.5, 2.0):
        lookup(tree, "camera", "gripper", seconds)
    np.testing.assert_allclose(lookup(tree, "camera", "base", 12345.0), invert(WORLD_CAMERA) @ WORLD_BASE,
                               atol=1e-9)
    np.testing.assert_allclose(lookup(tree, "camera", "base", 0.0), invert(WORLD_CAMERA) @ WORLD_BASE, atol=1e-9)


def test_extrapolation_errors_say_which_way_and_by_how_much(tree):
    with pytest.raises(ExtrapolationException, match=r"into the future.*Requested time 2\.5.*latest data is at "
                                                     r"time 2\.0.*0\.5.*\[gripper\] to frame \[camera\]"):
        lookup(tree, "camera", "gripper", 2.5)
    with pytest.raises(ExtrapolationException, match=r"into the past.*Requested time 0\.25.*earliest data is at "
                                                     r"time 1\.0"):
        lookup(tree, "camera", "gripper", 0.25)
    single = Buffer()
    add(single, np.eye(4), "a", "b", 3.0)
    with pytest.raises(ExtrapolationException, match=r"only time 3\.0.* is in the buffer"):
        lookup(single, "a", "b", 3.5)
    assert issubclass(ExtrapolationException, TransformException)


def test_unknown_and_disconnected_frames(tree):
    with pytest.raises(LookupException, match='"nowhere" passed to lookupTransform argument source_frame'):
        lookup(tree, "camera", "nowhere", 1.0)
    with pytest.raises(LookupException, match="target_frame does not exist"):
        lookup(tree, "nowhere", "camera", 1.0)
    add(tree, np.eye(4), "other_world", "other_thing", static=True)
    with pytest.raises(ConnectivityException, match="not part of the same tree"):
        lookup(tree, "camera", "other_thing", 1.0)
    assert not tree.can_transform("camera", "other_thing", at(1.0))
    assert tree.can_transform("camera", "gripper", at(1.5))
    assert issubclass(LookupException, TransformException) and issubclass(ConnectivityException, TransformException)


def test_time_zero_is_the_latest_time_common_to_the_chain():
    buffer = Buffer()
    for seconds in (1.0, 2.0, 3.0):
        add(buffer, make_transform((seconds, 0, 0)), "a", "b", seconds)
    for seconds in (1.5, 2.5):
        add(buffer, make_transform((0, seconds, 0)), "b", "c", seconds)
    add(buffer, np.eye(4), "a", "s", static=True)
    stamped = buffer.lookup_transform("s", "c", Time())
    assert _nanoseconds(stamped.header.stamp) == at(2.5).nanoseconds
    np.testing.assert_allclose(transform_to_matrix(stamped)[:3, 3], [2.5, 2.5, 0.0], atol=1e-9)
    assert _nanoseconds(buffer.lookup_transform("a", "b", Time()).header.stamp) == at(3.0).nanoseconds
    assert _nanoseconds(buffer.lookup_transform("a", "s", Time()).header.stamp) == 0  # all static


def test_cache_is_pruned_to_cache_time():
    buffer = Buffer(cache_time=Duration(seconds=10.0))
    for seconds in range(21):
        assert add(buffer, make_transform((seconds, 0, 0)), "a", "b", float(seconds))
    lookup(buffer, "a", "b", 10.0)
    with pytest.raises(ExtrapolationException, match="into the past"):
        lookup(buffer, "a", "b", 9.5)
    assert not add(buffer, np.eye(4), "a", "b", 5.0)  # older than the cache keeps: ignored
    np.testing.assert_allclose(lookup(buffer, "a", "b", 15.5)[:3, 3], [15.5, 0, 0])


def test_latest_parent_wins_and_malformed_transforms_are_refused():
    buffer = Buffer()
    add(buffer, make_transform((1, 0, 0)), "a", "b", static=True)
    add(buffer, make_transform((0, 2, 0)), "c", "b", static=True)
    np.testing.assert_allclose(lookup(buffer, "c", "b")[:3, 3], [0, 2, 0])
    with pytest.raises(ConnectivityException):
        lookup(buffer, "a", "b")
    assert not add(buffer, np.eye(4), "a", "a")
    assert not add(buffer, np.eye(4), "", "x")
    bad = matrix_to_transform_stamped(np.eye(4), "a", "nan_frame")
    bad.transform.translation.x = math.nan
    assert not buffer.set_transform(bad, "test")
    assert not buffer.can_transform("a", "nan_frame", Time())


def set_later(buffer, delay, matrix, parent, child, seconds) -> threading.Event:
    """Add the transform from another thread after ``delay`` s; the event is set once it is in the buffer."""
    added = threading.Event()

    def add_then_tell() -> None:
        add(buffer, matrix, parent, child, seconds)
        added.set()
    threading.Timer(delay, add_then_tell).start()
    return added


def test_waiting_succeeds_when_another_thread_adds_the_data(tree):
    # Event-based: the lookup answers (it would raise after its generous timeout) and only once the other
    # thread's data is in; no wall-clock window that a loaded machine could miss.
    added = set_later(tree, 0.2, BASE_GRIPPER, "base", "gripper", 3.0)
    camera_from_gripper = lookup(tree, "camera", "gripper", 2.5, timeout=30.0)
    assert added.is_set()
    assert camera_from_gripper.shape == (4, 4)
    added = set_later(tree, 0.2, BASE_GRIPPER, "base", "late_frame", 3.0)
    assert tree.can_transform("camera", "late_frame", at(3.0), Duration(seconds=30.0))
    assert added.is_set()


def test_waiting_times_out_with_the_underlying_exception(tree):
    # Only the lower bound is timed: a wait never gives up before its timeout (a loaded machine only adds).
    started = time.monotonic()
    with pytest.raises(ExtrapolationException, match="into the future"):
        lookup(tree, "camera", "gripper", 5.0, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    with pytest.raises(LookupException):
        lookup(tree, "camera", "never", 1.0, timeout=0.2)
    assert not tree.can_transform("camera", "never", at(1.0), Duration(seconds=0.1))
    assert time.monotonic() - started >= 0.3


def test_concurrent_writers_and_readers():
    buffer = Buffer()
    add(buffer, np.eye(4), "a", "b", 0.0)
    errors = []

    def writer():
        for i in range(1, 300):
            add(buffer, make_transform((i, 0, 0)), "a", "b", i * 0.01)

    def reader():
        for _ in range(300):
            try:
                buffer.lookup_transform("a", "b", Time())
            except TransformException as error:  # pragma: no cover - would be a bug
                errors.append(error)

    threads = [threading.Thread(target=f) for f in (writer, reader, reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    np.testing.assert_allclose(lookup(buffer, "a", "b", 2.99)[:3, 3], [299, 0, 0])
