"""Episode variation: jittered camera and lights, grasp poses, per-episode colour, flying pixels."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from damage_perception.core.camera import backproject
from damage_perception.core.gripper import points_in_box
from damage_perception.core.segmentation import mask_iou, segment_item
from damage_perception.core.transforms import apply, invert, rotation_angle_between
from damage_perception.sim.catalogue import ALL_KINDS, KIND_POOLS, make_catalogue, sku_spec
from damage_perception.sim.grasp import (
    GRASP_MAX_OFFSET_Z,
    GRASP_TILT_DEG,
    GraspPose,
    grasp_offset_x_limit,
    random_grasp,
)
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import NO_JITTER, SceneConfig, SceneJitter
from damage_perception.sim.sensor import ColorModel, DepthModel, apply_depth_model, flying_pixels
from damage_perception.sim.variation import EpisodeVariation, episode_variation

from .conftest import make_spec

FIELDS = ("color", "depth_m", "depth_clean_m", "item_mask", "damage_mask", "finger_mask")


def same_bytes(a, b, fields=FIELDS):
    return all(getattr(a, f).tobytes() == getattr(b, f).tobytes() for f in fields)


@pytest.fixture(scope="module")
def jittered_scene(scene):
    return scene.jittered(np.random.default_rng(4))


# --- defaults --------------------------------------------------------------------------------------------------
def test_no_variation_renders_the_same_bytes(scene, gripper, renderer):
    spec = make_spec("tear")
    plain = build_item(spec, gripper)
    held = build_item(spec, gripper, GraspPose())
    assert np.array_equal(plain.surface.vertices, held.surface.vertices) and plain.grip_opening == held.grip_opening
    assert scene.jittered(np.random.default_rng(1), NO_JITTER) == scene
    renderer.set_item(plain)
    before = renderer.render(0.8, np.random.default_rng(3))
    other = CellRenderer(SceneConfig(), gripper)
    EpisodeVariation.none().apply(other)
    other.set_item(held)
    assert same_bytes(before, other.render(0.8, np.random.default_rng(3)))
    zero = episode_variation(np.random.default_rng(5), spec, scale=0.0, flying_pixel_rate=0.0)
    assert zero == EpisodeVariation.none()


# --- camera and lights -----------------------------------------------------------------------------------------
def test_jittered_scene_stays_in_range_and_is_deterministic(scene):
    rng = np.random.default_rng(0)
    k0, link0 = scene.intrinsics, scene.T_world_camera_link
    configs = [scene.jittered(rng) for _ in range(60)]
    for config in configs:
        k = config.intrinsics
        assert (k.width, k.height) == (k0.width, k0.height)
        assert abs(k.fx / k0.fx - 1) <= 0.05 + 1e-12 and abs(k.fy / k0.fy - 1) <= 0.05 + 1e-12
        assert abs(k.fx / k.fy - 1) < 0.011
        assert abs(k.cx - k0.cx) <= 10 and abs(k.cy - k0.cy) <= 10
        link = config.T_world_camera_link
        assert np.all(np.abs(link[:3, 3] - link0[:3, 3]) <= 0.025 + 1e-12)
        assert np.all(np.abs(config.camera_rpy_offset) <= math.radians(2.5) + 1e-12)
        assert math.degrees(rotation_angle_between(link, link0)) <= 2.5 * math.sqrt(3)
        assert config.light_unit[2] < -0.15 and 0.35 * 0.75 <= config.ambient <= 0.35 * 1.25
        point = apply(invert(config.T_world_optical), np.asarray(config.inspection_position))
        assert 0.1 * k.width < k.fx * point[0] / point[2] + k.cx < 0.9 * k.width  # the item stays in view
    spread = np.array([[c.intrinsics.fx, c.intrinsics.cx, *c.camera_position, *c.camera_rpy_offset] for c in configs])
    assert np.all(spread.std(axis=0) > 0)
    assert spread[:, 0].max() - spread[:, 0].min() > 0.06 * k0.fx  # the ranges are used, not just allowed
    assert np.abs(np.degrees(spread[:, 5:])).max() > 2.0 and np.abs(spread[:, 2:5] - scene.camera_position).max() > 0.02
    again = np.random.default_rng(0)
    assert [scene.jittered(again) for _ in range(60)] == configs
    smaller = scene.jittered(np.random.default_rng(0), SceneJitter(focal=0.01))
    assert abs(smaller.intrinsics.fx / k0.fx - 1) <= 0.01 + 1e-12


def test_set_scene_equals_a_new_renderer_and_geometry_holds(scene, gripper, jittered_scene):
    item = build_item(make_spec("pristine"), gripper)
    fresh = CellRenderer(jittered_scene, gripper)
    fresh.set_item(item)
    reused = CellRenderer(scene, gripper)
    reused.set_item(item)
    reused.set_scene(jittered_scene)
    a, b = fresh.render(1.2, np.random.default_rng(2)), reused.render(1.2, np.random.default_rng(2))
    assert same_bytes(a, b)
    assert a.intrinsics == jittered_scene.intrinsics
    assert np.allclose(a.T_optical_gripper, invert(jittered_scene.T_world_optical) @ a.T_world_gripper)
    points = apply(invert(a.T_optical_gripper), backproject(a.depth_clean_m, a.intrinsics)[a.item_mask])
    outside = np.abs(points - item.center) - np.asarray(item.spec.size) / 2
    assert a.item_mask.sum() > 3000 and np.abs(outside.max(axis=1)).max() < 1e-3  # on the box's surface
    reused.set_scene(scene)  # and back
    assert same_bytes(reused.render(1.2, np.random.default_rng(2)), render_default(scene, gripper, item))


def render_default(scene, gripper, item):
    renderer = CellRenderer(scene, gripper)
    renderer.set_item(item)
    return renderer.render(1.2, np.random.default_rng(2))


def test_lighting_and_colour_change_colour_but_not_depth(scene, gripper, renderer):
    item = build_item(make_spec("pristine"), gripper)
    renderer.set_item(item)
    base = renderer.render(0.5, np.random.default_rng(9))
    lit = CellRenderer(SceneConfig(light_direction=(-0.4, -0.7, -0.5), ambient=0.28, diffuse=0.9), gripper,
                       color_model=ColorModel(exposure=1.3, white_balance=(1.08, 1.0, 0.92)))
    lit.set_item(item)
    view = lit.render(0.5, np.random.default_rng(9))
    assert same_bytes(base, view, ("depth_m", "depth_clean_m", "item_mask", "finger_mask"))
    mask = view.item_mask
    ratio = view.color[mask].mean(axis=0) / base.color[mask].mean(axis=0)
    assert np.abs(ratio - 1).max() > 0.1
    background = ~mask & ~view.finger_mask
    bright = view.color[background].astype(float).mean(axis=0) / base.color[background].astype(float).mean(axis=0)
    assert bright[0] / bright[2] > 1.1  # warmer white balance
    drawn = ColorModel().jittered(np.random.default_rng(3))
    assert drawn == ColorModel().jittered(np.random.default_rng(3)) and drawn != ColorModel()
    assert 2 ** -0.35 <= drawn.exposure <= 2 ** 0.35
    assert drawn.white_balance[0] != drawn.white_balance[2]


# --- grasp -----------------------------------------------------------------------------------------------------
def test_grasp_moves_the_item_in_the_gripper_frame(gripper):
    spec = make_spec("pristine")
    default = build_item(spec, gripper)
    grasp = GraspPose(offset_x=0.02, offset_z=0.012, tilt=math.radians(5))
    held = build_item(spec, gripper, grasp)
    c, s = math.cos(grasp.tilt), math.sin(grasp.tilt)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    moved = (default.surface.vertices - default.center) @ rotation.T + default.center
    shift = held.surface.vertices - moved
    assert np.allclose(shift, shift[0], atol=1e-12)  # a rigid motion: rotation about the centre, then a shift
    assert shift[0][0] == pytest.approx(0.02) and shift[0][1] == 0.0
    assert held.surface.vertices[:, 2].min() == pytest.approx(default.surface.vertices[:, 2].min() + 0.012)
    assert np.array_equal(held.surface.rest, default.surface.rest)  # texture coordinates stay glued
    assert np.allclose(held.T_gripper_item[:3, :3], rotation)
    assert np.allclose(apply(held.T_gripper_item, default.center), held.center)
    assert held.grip_opening == default.grip_opening  # gripped faces stay flat on the pads
    damaged = build_item(make_spec("crush"), gripper, grasp)
    assert np.allclose(damaged.damage_center, apply(damaged.T_gripper_item, damaged.damage.center))
    with pytest.raises(ValueError):
        GraspPose(offset_z=-0.01)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_random_grasps_keep_fingers_on_the_item(gripper, kind):
    spec = sku_spec(KIND_POOLS[kind][1], damage="spill", severity=0.8, seed=3)
    rng = np.random.default_rng(1)
    for _ in range(3):
        grasp = random_grasp(rng, spec, gripper)
        assert abs(grasp.offset_x) <= grasp_offset_x_limit(spec, gripper) and 0 <= grasp.offset_z <= GRASP_MAX_OFFSET_Z
        assert abs(grasp.tilt) <= math.radians(GRASP_TILT_DEG[kind])
        item = build_item(spec, gripper, grasp)
        vertices = item.surface.vertices
        assert vertices[:, 2].min() > gripper.palm_clearance  # clear of the palm
        for finger in gripper.finger_transforms(item.grip_opening):
            to_finger = invert(finger)
            assert not points_in_box(vertices, to_finger, gripper.finger_size, margin=-5e-4).any()
            assert points_in_box(vertices, to_finger, gripper.finger_size, margin=1e-3).sum() > 3  # touching
    assert random_grasp(np.random.default_rng(1), spec, gripper) == random_grasp(np.random.default_rng(1), spec,
                                                                                  gripper)
    assert random_grasp(rng, spec, gripper, scale=0.0).is_default


def test_grasp_changes_finger_occlusion(gripper, renderer):
    spec = make_spec("pristine")
    renderer.set_item(build_item(spec, gripper))
    a = renderer.render(0.3, np.random.default_rng(0))
    renderer.set_item(build_item(spec, gripper, GraspPose(offset_x=-0.025, offset_z=0.015, tilt=0.08)))
    b = renderer.render(0.3, np.random.default_rng(0))
    assert np.array_equal(a.finger_mask, b.finger_mask)  # a box's opening is the same: the fingers stay put
    assert np.logical_xor(a.item_mask, b.item_mask).sum() > 500
    border = [np.sum(v.item_mask[1:] & v.finger_mask[:-1]) + np.sum(v.item_mask[:, 1:] & v.finger_mask[:, :-1]) +
              np.sum(v.item_mask[:-1] & v.finger_mask[1:]) + np.sum(v.item_mask[:, :-1] & v.finger_mask[:, 1:])
              for v in (a, b)]
    assert border[0] != border[1]  # the item meets the fingers' silhouettes elsewhere


# --- flying pixels ---------------------------------------------------------------------------------------------
QUIET = DepthModel(sigma_base=0.0, sigma_quadratic=0.0, grazing_cos=1e-6, edge_drop_far=0.0, edge_drop_near=0.0,
                   speckle=0.0, quantum=1e-6)


def step_image():
    depth = np.full((60, 80), 1.0, np.float32)
    depth[20:40, 30:55] = 0.6
    return depth


def test_flying_pixels_lie_between_the_two_sides_at_edges_only():
    depth = step_image()
    mask, mixed = flying_pixels(depth, np.random.default_rng(0), DepthModel(flying_pixel_rate=0.5))
    edge = np.zeros_like(mask)
    jump = np.abs(np.diff(depth, axis=0)) > 0.02
    edge[:-1] |= jump
    edge[1:] |= jump
    jump = np.abs(np.diff(depth, axis=1)) > 0.02
    edge[:, :-1] |= jump
    edge[:, 1:] |= jump
    assert mask.any() and not (mask & ~edge).any()
    assert 0.3 < mask.sum() / edge.sum() < 0.7
    assert np.all((mixed[mask] > 0.6 + 0.03) & (mixed[mask] < 1.0 - 0.03))
    assert np.array_equal(mixed[~mask], depth[~mask])
    cos = np.ones_like(depth)
    measured = apply_depth_model(depth, cos, np.random.default_rng(1), replace(QUIET, flying_pixel_rate=0.5))
    off = np.abs(measured - depth) > 1e-4
    assert off.any() and not (off & ~edge).any()
    assert np.all((measured[off] > 0.6) & (measured[off] < 1.0))
    none = apply_depth_model(depth, cos, np.random.default_rng(1), DepthModel(flying_pixel_rate=0.0))
    assert none.tobytes() == apply_depth_model(depth, cos, np.random.default_rng(1)).tobytes()


def test_rendered_flying_pixels_sit_at_depth_edges(gripper, renderer):
    renderer.set_item(build_item(make_spec("pristine"), gripper))
    flying = CellRenderer(SceneConfig(), gripper, depth_model=DepthModel(flying_pixel_rate=0.3))
    flying.set_item(renderer.item)
    view = flying.render(0.6, np.random.default_rng(4))
    clean = view.depth_clean_m
    off = (view.depth_m > 0) & (np.abs(view.depth_m - clean) > 0.02)
    assert off.sum() > 50
    near_edge = np.zeros_like(off)
    jump = np.abs(np.diff(clean, axis=0)) > 0.02
    near_edge[:-1] |= jump
    near_edge[1:] |= jump
    jump = np.abs(np.diff(clean, axis=1)) > 0.02
    near_edge[:, :-1] |= jump
    near_edge[:, 1:] |= jump
    assert not (off & ~near_edge).any()
    plain = renderer.render(0.6, np.random.default_rng(4))
    assert same_bytes(plain, view, ("depth_clean_m", "item_mask"))  # (colour noise draws come after: they differ)


# --- episodes --------------------------------------------------------------------------------------------------
def test_episode_variation_is_deterministic_and_recordable(gripper):
    spec = make_spec("hole")
    first = episode_variation(np.random.default_rng([3, 1]), spec)
    assert first == episode_variation(np.random.default_rng([3, 1]), spec)
    assert first != episode_variation(np.random.default_rng([3, 2]), spec)
    assert not first.grasp.is_default and first.depth_model.flying_pixel_rate > 0
    assert first.scene != SceneConfig() and first.color_model != ColorModel()
    no_item = episode_variation(np.random.default_rng([3, 1]))
    assert no_item.grasp.is_default and no_item.scene == first.scene and no_item.color_model == first.color_model
    record = json.loads(json.dumps(first.to_dict()))
    assert record["grasp"]["tilt"] == first.grasp.tilt and record["intrinsics"]["fx"] == first.scene.intrinsics.fx


def test_segmentation_holds_under_moderate_variation(gripper, renderer):
    ious = []
    for i, spec in enumerate(make_catalogue(2, 0.5, 11, kinds=("carton", "bottle"))):
        rng = np.random.default_rng([21, i])
        variation = episode_variation(rng, spec, scale=0.7)
        variation.apply(renderer)
        renderer.set_item(build_item(spec, gripper, variation.grasp))
        for angle in (0.4, 2.2):
            view = renderer.render(angle, rng)
            points = backproject(view.depth_m, view.intrinsics)
            result = segment_item(points, invert(view.T_optical_gripper), list(view.finger_transforms), gripper)
            assert result.found, result.reason
            ious.append(mask_iou(result.mask, view.item_mask))
    EpisodeVariation.none().apply(renderer)  # leave the shared renderer as the other tests expect it
    assert min(ious) >= 0.85 and np.median(ious) >= 0.9, ious
