"""core.tf_tree: the frame tree over time that the live tf2 stand-in and the bag reader both wrap."""
from __future__ import annotations

import numpy as np
import pytest

from damage_perception.core.tf_tree import (
    DisconnectedFramesError,
    ExtrapolationError,
    FrameNotFoundError,
    TransformTree,
)
from damage_perception.core.transforms import make_transform


def tree(**kwargs) -> TransformTree:
    tf = TransformTree(**kwargs)
    tf.add("world", "base", 0, make_transform((1, 0, 0)), static=True)
    tf.add("base", "wrist", 100, make_transform((0, 1, 0)))
    tf.add("base", "wrist", 200, make_transform((0, 3, 0)))
    tf.add("world", "camera", 150, make_transform((0, 0, 1)))
    tf.add("world", "camera", 300, make_transform((0, 0, 1)))
    return tf


def test_chain_interpolates_each_edge_at_the_stamp_and_inverts_across_the_ancestor():
    matrix, stamp = tree().lookup("camera", "wrist", 150)
    np.testing.assert_allclose(matrix[:3, 3], (1, 2, -1))
    assert stamp == 150


def test_stamp_zero_is_the_latest_time_common_to_the_chain():
    _, stamp = tree().lookup("camera", "/wrist", 0)
    assert stamp == 200


def test_tolerance_allows_the_nearest_sample_only_that_close():
    np.testing.assert_allclose(tree(tolerance_ns=10).lookup("base", "wrist", 205)[0][:3, 3], (0, 3, 0))
    with pytest.raises(ExtrapolationError, match="into the future"):
        tree(tolerance_ns=10).lookup("base", "wrist", 211)
    with pytest.raises(ExtrapolationError, match="into the past"):
        tree().lookup("base", "wrist", 99)


def test_cache_keeps_only_its_window_behind_the_latest_sample():
    tf = tree(cache_ns=50)
    assert not tf.add("base", "wrist", 120, np.eye(4))       # older than the window: refused
    assert tf.edges["wrist"]["base"].stamps == [200]
    assert tree().edges["wrist"]["base"].stamps == [100, 200]        # no cache: everything is kept


def test_unknown_disconnected_and_reparented_frames():
    tf = tree()
    with pytest.raises(FrameNotFoundError, match="target_frame"):
        tf.lookup("nowhere", "wrist", 150)
    tf.add("elsewhere", "tool", 0, np.eye(4), static=True)
    with pytest.raises(DisconnectedFramesError):
        tf.lookup("tool", "wrist", 150)
    tf.add("world", "wrist", 250, make_transform((5, 0, 0)))   # a new parent: the old history is dropped
    assert list(tf.edges["wrist"]) == ["world"] and tf.edges["wrist"]["world"].stamps == [250]


def test_a_recording_keeps_each_parents_history_and_follows_the_one_of_the_time():
    tf = tree(keep_reparented=True)
    tf.add("camera", "wrist", 400, make_transform((0, 0, 7)))   # re-parented later in the recording
    tf.add("camera", "wrist", 500, make_transform((0, 0, 7)))
    np.testing.assert_allclose(tf.lookup("base", "wrist", 150)[0][:3, 3], (0, 2, 0))      # under base then
    np.testing.assert_allclose(tf.lookup("camera", "wrist", 450)[0][:3, 3], (0, 0, 7))    # under camera now
