"""core.image_codec: one decoding for live and recorded frames, one rule for "no reading".

Checked on real RealSense frames (test/fixtures/real_rgbd) and on rendered cell views: valid input decodes
exactly as the node's conversion did before the codec existed, and garbage mixed into the pixels that carry
no reading (NaN, +-inf, negative, zero) changes nothing downstream: not the points, not the segmentation, not
the crop, not the model's inputs or scores.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from std_msgs.msg import Header

from damage_perception.core import image_codec
from damage_perception.core.backbone import depth_channels
from damage_perception.core.camera import CameraIntrinsics, backproject
from damage_perception.core.crops import crop_item
from damage_perception.core.station import StationSettings, load_station_model
from damage_perception.core.view_pipeline import ViewInput, ViewPipeline
from damage_perception.data.loaders import ros_messages as rm
from damage_perception.data.synthesize import render_episode, worker_renderer
from damage_perception.ros.conversions import array_to_image, depth_to_meters
from damage_perception.sim.catalogue import make_catalogue

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real_rgbd"
GARBAGE = np.array([np.nan, np.inf, -np.inf, -0.5, -1e30, 0.0, -0.0], np.float32)


def real_frame(name: str) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    folder = FIXTURES / name
    depth_mm = cv2.imread(str(folder / "depth_mm.png"), cv2.IMREAD_UNCHANGED)
    rgb = cv2.cvtColor(cv2.imread(str(folder / "color.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    camera = json.loads((folder / "camera.json").read_text())
    return depth_mm, rgb, CameraIntrinsics.from_matrix(np.array(camera["K"]), camera["width"], camera["height"])


def old_node_depth(pixels: np.ndarray, millimetres: bool) -> np.ndarray:
    """The node's depth conversion before the codec (ros/conversions.depth_to_meters), kept as the reference."""
    if millimetres:
        depth = pixels.astype(np.float32) * np.float32(0.001)
        depth[pixels == 0] = np.nan
        return depth
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(pixels) & (pixels > 0)
    return np.where(valid, pixels, np.float32(np.nan)).astype(np.float32)


def with_garbage(depth_m: np.ndarray, seed: int, fraction: float = 0.0) -> np.ndarray:
    """``depth_m`` with every no-reading pixel (and ``fraction`` of the others) replaced by random garbage."""
    rng = np.random.default_rng(seed)
    out = np.array(depth_m, np.float32)
    bad = ~image_codec.valid_depth(out) | (rng.random(out.shape) < fraction)
    out[bad] = rng.choice(GARBAGE, int(bad.sum()))
    return out


@pytest.mark.parametrize("name", ["cheezit", "mustard"])
def test_real_frames_decode_as_the_node_did_and_the_same_live_and_from_a_bag(name):
    depth_mm, _, _ = real_frame(name)
    metres = old_node_depth(depth_mm, True)
    live16, live32 = (depth_to_meters(array_to_image(depth_mm, "16UC1")),
                      depth_to_meters(array_to_image(metres, "32FC1")))
    np.testing.assert_array_equal(live16, old_node_depth(depth_mm, True))
    np.testing.assert_array_equal(live32, metres)
    ts = rm.default_typestore()
    head = rm.header(0, "camera_color_optical_frame", ts)
    for encoding, pixels in (("16UC1", depth_mm), ("32FC1", metres)):
        from_bag = rm.depth_to_meters(rm.array_to_image(pixels, encoding, head, ts))
        np.testing.assert_array_equal(from_bag, depth_to_meters(array_to_image(pixels, encoding, Header())))


@pytest.mark.parametrize("name", ["cheezit", "mustard"])
def test_garbage_in_real_32fc1_is_no_reading_in_points_crops_and_model_inputs(name):
    depth_mm, rgb, intrinsics = real_frame(name)
    clean = old_node_depth(depth_mm, True)
    dirty = with_garbage(clean, seed=1)
    decoded = depth_to_meters(array_to_image(dirty, "32FC1"))
    np.testing.assert_array_equal(decoded, clean)           # the codec: garbage -> NaN
    np.testing.assert_array_equal(backproject(dirty, intrinsics), backproject(clean, intrinsics))  # without it
    mask = np.zeros(clean.shape, bool)
    mask[100:300, 200:400] = True
    clean_crop, dirty_crop = crop_item(rgb, clean, mask), crop_item(rgb, dirty, mask)
    np.testing.assert_array_equal(dirty_crop.depth_m, clean_crop.depth_m)
    assert image_codec.valid_depth(dirty_crop.depth_m).sum() > 0
    # the models' depth channels, fed garbage directly (an array that never went through a crop)
    raw = with_garbage(clean_crop.depth_m, seed=2)   # 0 = no reading in a crop: garbage there instead
    assert np.isinf(raw).any() and (raw < 0).any()
    np.testing.assert_array_equal(depth_channels(raw[None], clean_crop.mask[None]),
                                  depth_channels(clean_crop.depth_m[None], clean_crop.mask[None]))


def test_the_16uc1_and_32fc1_rules_agree_on_every_value():
    values = np.array([[0.0, np.nan, np.inf], [-np.inf, -2.0, 1.234]], np.float32)
    depth = image_codec.decode_depth("32FC1", 2, 3, 12, values.tobytes())
    np.testing.assert_array_equal(np.isnan(depth), [[True] * 3, [True, True, False]])
    mm = image_codec.decode_depth("16UC1", 1, 2, 4, np.array([[0, 1234]], "<u2").tobytes())
    np.testing.assert_array_equal(np.isnan(mm), [[True, False]])
    assert image_codec.depth_to_mm(values).tolist() == [[0, 0, 0], [0, 0, 1234]]


@pytest.fixture(scope="module")
def rendered_views():
    renderer, gripper = worker_renderer()
    torn, pristine = make_catalogue(3, 0.5, 11, kinds=("carton",))[1:]
    views = []
    for spec, angle in ((torn, 0.0), (pristine, 1.6)):
        view = render_episode(renderer, gripper, spec, [angle], np.random.default_rng(3)).views[0]
        views.append(view)
    return views


@pytest.mark.parametrize("model_path", ["", "shipped"])
def test_garbage_mixed_into_rendered_views_changes_no_score(rendered_views, model_path):
    settings = StationSettings(model_path=model_path)
    pipeline = ViewPipeline(settings.gripper, settings.pipeline, load_station_model(model_path))
    for seed, view in enumerate(rendered_views):
        clean = image_codec.clean_depth(view.depth_m)   # the renderer's 0 -> NaN, as a driver's frame decodes
        dirty = with_garbage(clean, seed)
        assert not image_codec.valid_depth(dirty).all() and np.isinf(dirty).any() and (dirty < 0).any()
        results = []
        for depth in (clean, dirty, depth_to_meters(array_to_image(dirty, "32FC1"))):
            inputs = ViewInput(depth, view.intrinsics, view.camera_from_gripper, list(view.finger_poses), view.color)
            results.append(pipeline.process(inputs)[0])
        reference = results[0]
        assert reference.found, reference.reason
        for result in results[1:]:
            assert (result.found, result.num_points, result.score, result.reason) == \
                   (reference.found, reference.num_points, reference.score, reference.reason)
            assert result.type_scores == reference.type_scores
