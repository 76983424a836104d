"""Rendered views: determinism, geometry against ground truth, masks and visible damage."""
import numpy as np
import pytest

from damage_perception.core.camera import backproject
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.core.gripper import points_in_box
from damage_perception.core.transforms import apply, invert
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

from .conftest import make_spec, render_item

ANGLES = (0.0, 0.9, 2.0, 3.5)


def gripper_points(view, mask):
    """Clean-depth points of ``mask`` pixels in the gripper frame."""
    points = backproject(view.depth_clean_m, view.intrinsics)[mask]
    return apply(invert(view.T_optical_gripper), points)


def facing_damage(renderer, scene, item, seed=0):
    """The view that turns the damage towards the camera."""
    return render_item(renderer, item, scene.wrist_angle_facing(item.damage_center - item.center), seed)


def test_same_seed_same_bytes(scene, gripper, items):
    first = CellRenderer(scene, gripper)
    second = CellRenderer(scene, gripper)
    a = render_item(first, items["tear"], 1.0, seed=5)
    b = render_item(second, items["tear"], 1.0, seed=5)
    for name in ("color", "depth_m", "depth_clean_m", "item_mask", "damage_mask", "finger_mask"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    c = render_item(second, items["tear"], 1.0, seed=6)
    assert c.color.tobytes() != a.color.tobytes() and c.depth_m.tobytes() != a.depth_m.tobytes()


def test_view_types_and_shapes(renderer, items):
    view = render_item(renderer, items["pristine"], 0.3)
    h, w = view.intrinsics.height, view.intrinsics.width
    assert (h, w) == (480, 640)
    assert view.color.shape == (h, w, 3) and view.color.dtype == np.uint8
    for name in ("depth_m", "depth_clean_m"):
        assert getattr(view, name).shape == (h, w) and getattr(view, name).dtype == np.float32
    for name in ("item_mask", "finger_mask"):
        assert getattr(view, name).shape == (h, w) and getattr(view, name).dtype == bool
    assert view.damage_mask.shape == (h, w) and view.damage_mask.dtype == np.uint8
    valid = view.depth_m > 0
    assert np.allclose(view.depth_m[valid] * 1000, np.round(view.depth_m[valid] * 1000), atol=1e-3)
    assert view.wrist_angle == pytest.approx(0.3)
    assert np.allclose(view.T_optical_gripper, invert(renderer.T_world_optical) @ view.T_world_gripper)


@pytest.mark.parametrize("angle", ANGLES)
def test_pristine_item_points_lie_on_its_box(renderer, items, angle):
    item = items["pristine"]
    view = render_item(renderer, item, angle)
    assert view.item_mask.sum() > 3000
    assert 0.45 < np.median(view.depth_clean_m[view.item_mask]) < 0.75
    noisy = view.depth_m[view.item_mask]
    assert (noisy > 0).mean() > 0.8
    points = gripper_points(view, view.item_mask)
    half = np.asarray(item.spec.size) / 2
    local = np.abs(points - item.center)
    assert np.all(local <= half + 0.002), "inside the box"
    assert np.all((half - local).min(axis=1) < 0.002), "on its surface"
    assert not view.damage_mask.any()


def test_fingers_in_finger_mask(renderer, items, gripper):
    for angle in ANGLES:
        view = render_item(renderer, items["pristine"], angle)
        assert view.finger_mask.sum() > 200
        assert not (view.finger_mask & view.item_mask).any()
        points = gripper_points(view, view.finger_mask)
        inside = np.zeros(len(points), bool)
        for pose in view.finger_transforms:
            inside |= points_in_box(points, invert(pose), gripper.finger_size, margin=0.002)
        assert inside.all()
    left, right = view.finger_transforms
    assert left[1, 3] - right[1, 3] == pytest.approx(items["pristine"].spec.size[1] + gripper.finger_size[1])


def test_empty_gripper(renderer, gripper, scene):
    view = render_item(renderer, None, 0.5)
    assert not view.item_mask.any() and not view.damage_mask.any()
    assert view.finger_mask.sum() > 100
    left, right = view.finger_transforms
    assert left[1, 3] - right[1, 3] == pytest.approx(scene.empty_opening + gripper.finger_size[1])


def test_background_far_behind(renderer, items):
    view = render_item(renderer, items["pristine"], 0.0)
    background = ~view.item_mask & ~view.finger_mask & (view.depth_clean_m > 0)
    assert np.median(view.depth_clean_m[background]) > 1.0
    assert (view.depth_clean_m > 0).mean() > 0.95


@pytest.mark.parametrize("kind", ["crush", "hole", "tear"])
def test_damage_visible_when_facing(renderer, scene, items, kind):
    item = items[kind]
    view = facing_damage(renderer, scene, item)
    assert (view.damage_mask > 0).sum() > 30
    assert not ((view.damage_mask > 0) & ~view.item_mask).any()
    assert set(np.unique(view.damage_mask)) == {0, DAMAGE_LABELS.index(kind)}
    pristine = render_item(renderer, items["pristine"], view.wrist_angle)
    both = view.item_mask & pristine.item_mask
    colour_change = np.abs(view.color.astype(int) - pristine.color.astype(int)).sum(axis=-1)
    assert (colour_change[view.damage_mask > 0] > 40).mean() > 0.2, "damage shows in colour"
    depth_change = np.abs(view.depth_clean_m - pristine.depth_clean_m)[both]
    assert (depth_change > 0.004).sum() > 30, "damage shows in depth"


def test_crush_deviates_inward(renderer, scene, items):
    item = items["crush"]
    view = facing_damage(renderer, scene, item)
    points = gripper_points(view, view.item_mask)
    half = np.asarray(item.spec.size) / 2
    inward = (half - np.abs(points - item.center)).min(axis=1)
    assert inward.max() > 0.005
    assert np.all(inward > -0.002), "nothing outside the box"


def test_rays_through_hole_hit_the_far_wall(renderer, scene, items):
    item = items["hole"]
    view = facing_damage(renderer, scene, item)
    pristine = render_item(renderer, items["pristine"], view.wrist_angle)
    deeper = view.depth_clean_m - pristine.depth_clean_m
    through = view.item_mask & (deeper > 0.02)
    assert through.sum() > 20
    assert (view.damage_mask[through] > 0).all()
    points = gripper_points(view, through)
    half = np.asarray(item.spec.size) / 2
    assert np.all(np.abs(points - item.center) <= half + 0.002), "inside of the carton"
    assert view.color[through].mean() < view.color[view.item_mask & ~view.damage_mask].mean(), "dark inside"


def test_pristine_views_have_no_damage(renderer, items):
    for angle in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        assert not render_item(renderer, items["pristine"], angle).damage_mask.any()


@pytest.mark.parametrize("kind", ["crush", "hole", "tear"])
def test_damage_seen_across_catalogue_items(renderer, scene, gripper, kind):
    for seed, sku in enumerate(("SKU-1041", "SKU-3379", "SKU-6310")):
        item = build_item(make_spec(kind, sku=sku, severity=0.3, seed=seed), gripper)
        view = facing_damage(renderer, scene, item, seed)
        assert (view.damage_mask > 0).sum() > 10, (kind, sku)


def test_region_of_interest_loses_nothing(scene, gripper, items, monkeypatch):
    fast = CellRenderer(scene, gripper)
    full = CellRenderer(scene, gripper)
    monkeypatch.setattr(full, "_roi", lambda T: (slice(0, 480), slice(0, 640)))
    for kind, angle in (("tear", 0.4), ("hole", 2.2), ("pristine", 4.0)):
        a, b = render_item(fast, items[kind], angle), render_item(full, items[kind], angle)
        assert np.array_equal(a.depth_clean_m, b.depth_clean_m) and np.array_equal(a.color, b.color)
        assert np.array_equal(a.damage_mask, b.damage_mask)


def test_gripper_out_of_view(gripper, items):
    away = CellRenderer(SceneConfig(camera_target=(-0.6, 0.5, 0.45)), gripper)
    view = render_item(away, items["hole"], 0.0)
    assert not view.item_mask.any() and not view.finger_mask.any()
    assert (view.depth_m > 0).any()
