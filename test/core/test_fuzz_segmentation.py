"""Property-based: odd depth maps and degenerate transforms never crash segmentation or the view pipeline.

Depth maps mix NaN, 0, +-inf, negative, huge and plausible values; transforms include NaN, inf, zero,
scaled and huge ones. ``segment_item`` and ``ViewPipeline.process`` must return (an item or a reason),
raising at most a ValueError; garbage in pixels without a reading changes nothing (the codec's one rule).
4,500 generated cases in all, deterministic (``derandomize=True``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.image_codec import valid_depth
from damage_perception.core.segmentation import SegmentationConfig, segment_item
from damage_perception.core.transforms import make_transform, rotation_about_z
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline, ViewPipelineConfig

# Garbage in on purpose: numpy's overflow / invalid-value warnings are expected, crashes are not.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FUZZ = settings(max_examples=2000, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GRIPPER = GripperGeometry()
# The gripper 0.4 m in front of the camera, its z axis across the view: plausible depths land in the crop box.
CAMERA_FROM_GRIPPER = make_transform((0.0, 0.0, 0.45), rotation_about_z(0.3) @ np.array(
    [[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]))

depth_values = st.one_of(st.floats(0.25, 0.75, width=32), st.sampled_from(
    [math.nan, 0.0, math.inf, -math.inf, -0.5, 1e30, 3e38, 1e-30, 0.45]))


@st.composite
def depth_maps(draw) -> np.ndarray:
    shape = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    fill = draw(st.sampled_from(["mixed", "nan", "zero", "inf", "huge", "plane"]))
    if fill == "mixed":
        return draw(arrays(np.float32, shape, elements=depth_values))
    value = {"nan": math.nan, "zero": 0.0, "inf": math.inf, "huge": 3e38, "plane": 0.45}[fill]
    return np.full(shape, value, np.float32)


finite = st.floats(-2.0, 2.0)
odd = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 0.0])


@st.composite
def transforms(draw) -> np.ndarray:
    kind = draw(st.sampled_from(["plausible", "random_rigid", "zero", "nan", "scaled", "odd_entry"]))
    if kind == "plausible":
        return CAMERA_FROM_GRIPPER.copy()
    if kind == "zero":
        return np.zeros((4, 4))
    if kind == "nan":
        return np.full((4, 4), math.nan)
    if kind == "random_rigid":
        q = np.array(draw(st.lists(finite, min_size=4, max_size=4)))
        q = q / np.linalg.norm(q) if np.linalg.norm(q) > 1e-6 else np.array([0, 0, 0, 1.0])
        x, y, z, w = q
        rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                             [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                             [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        return make_transform(draw(st.lists(finite, min_size=3, max_size=3)), rotation)
    matrix = CAMERA_FROM_GRIPPER.copy()
    if kind == "scaled":
        matrix[:3, :3] *= draw(st.sampled_from([0.0, 1e-12, 1e12, -1.0]))
    else:
        matrix[draw(st.integers(0, 2)), draw(st.integers(0, 3))] = draw(odd)
    return matrix


def intrinsics_for(depth: np.ndarray, focal: float) -> CameraIntrinsics:
    height, width = depth.shape
    return CameraIntrinsics(width, height, focal, focal, (width - 1) / 2, (height - 1) / 2)


small_item = st.builds(SegmentationConfig, min_item_points=st.integers(1, 50),
                       outlier_neighbors=st.integers(1, 20), cluster_min_points=st.integers(1, 8))


@FUZZ
@given(depth=depth_maps(), camera_from_gripper=transforms(), fingers=st.lists(transforms(), max_size=2),
       focal=st.sampled_from([1e-6, 0.5, 20.0, 1e9]), config=small_item)
def test_segment_item_returns_a_segment_or_a_reason(depth, camera_from_gripper, fingers, focal, config):
    points = backproject(depth, intrinsics_for(depth, focal))
    with np.errstate(all="ignore"):
        gripper_from_camera = np.linalg.pinv(np.nan_to_num(camera_from_gripper, posinf=1e300, neginf=-1e300))
    try:
        segment = segment_item(points, gripper_from_camera, fingers, GRIPPER, config)
    except ValueError:
        return
    assert segment.mask.shape == depth.shape
    assert segment.found or segment.reason
    assert len(segment.points) == len(segment.pixels)


@FUZZ
@given(depth=depth_maps(), camera_from_gripper=transforms(), fingers=st.lists(transforms(), max_size=2),
       focal=st.sampled_from([1e-6, 0.5, 20.0, 1e9]), config=small_item)
def test_view_pipeline_returns_a_result_or_a_reason(depth, camera_from_gripper, fingers, focal, config):
    pipeline = ViewPipeline(GRIPPER, ViewPipelineConfig(segmentation=config))
    try:
        result, _ = pipeline.process(ViewInput(depth, intrinsics_for(depth, focal), camera_from_gripper, fingers))
    except ValueError:
        return
    assert result.found or result.reason
    if result.found:
        assert 0.0 <= result.score <= 1.0


invalid_values = st.sampled_from([math.nan, 0.0, -0.0, math.inf, -math.inf, -0.5, -3e38])


@settings(FUZZ, max_examples=500)
@given(depth=arrays(np.float32, (24, 24), elements=st.one_of(st.floats(0.375, 0.5, width=32), invalid_values)),
       seed=st.integers(0, 2**16), config=small_item)
def test_mixed_invalid_depth_pixels_count_as_no_reading(depth, seed, config):
    """The one rule (``core.image_codec.valid_depth``): whatever garbage a no-reading pixel holds (NaN, 0,
    +-inf, negative), the view pipeline's result is the one it gives with NaN there."""
    valid = valid_depth(depth)
    nan_there = np.where(valid, depth, np.float32(np.nan))
    garbage = np.random.default_rng(seed).choice([0.0, -0.0, np.inf, -np.inf, -1.0, np.nan], depth.shape)
    mixed = np.where(valid, depth, garbage).astype(np.float32)
    pipeline = ViewPipeline(GRIPPER, ViewPipelineConfig(segmentation=config))
    intrinsics = intrinsics_for(depth, 20.0)
    results = [pipeline.process(ViewInput(d, intrinsics, CAMERA_FROM_GRIPPER, []))[0] for d in (nan_there, mixed)]
    assert [(r.found, r.num_points, r.score, r.reason) for r in results].count(
        (results[0].found, results[0].num_points, results[0].score, results[0].reason)) == 2
