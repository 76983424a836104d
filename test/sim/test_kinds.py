"""Item kinds, the new damage types, printed damage-like artwork and packaging versions."""
import numpy as np
import open3d as o3d
import pytest

from damage_perception.core.camera import backproject
from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.core.transforms import apply, invert
from damage_perception.sim.catalogue import ALL_KINDS, KIND_DAMAGES, KIND_POOLS, make_catalogue, sku_kind, sku_spec
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer

from .conftest import render_item

CASES = [(kind, damage) for kind in ALL_KINDS for damage in KIND_DAMAGES[kind]]


def facing(scene, item):
    """Wrist angle that shows the damage (direction scaled by the item size so face damage faces the camera)."""
    face = getattr(item.damage, "face", None)
    if face is not None:
        return scene.wrist_angle_facing(face.normal)
    return scene.wrist_angle_facing((item.damage_center - item.center) / item.size)


def test_catalogue_kinds_from_sku_and_versions():
    catalogue = make_catalogue(200, 0.5, seed=5)
    assert catalogue == make_catalogue(200, 0.5, seed=5)
    assert all(spec.kind == sku_kind(spec.sku) for spec in catalogue)
    by_sku = {}
    for spec in catalogue:
        by_sku.setdefault(spec.sku, []).append(spec.packaging_version)
    changed = [v for v in by_sku.values() if max(v) == 1]
    assert changed and all(v == sorted(v) and v[0] == 0 for v in changed), "version 1 only after the change"
    assert any(spec.printed_damage_art for spec in catalogue)
    assert all(spec.kind == "bottle" for spec in make_catalogue(20, 0.5, seed=1, kinds=("bottle",)))


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_pristine_kind_points_on_its_surface(renderer, gripper, kind):
    item = build_item(sku_spec(KIND_POOLS[kind][0]), gripper)
    view = render_item(renderer, item, 0.8)
    assert view.item_mask.sum() > 1500 and not view.damage_mask.any()
    points = apply(invert(view.T_optical_gripper), backproject(view.depth_clean_m, view.intrinsics)[view.item_mask])
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(item.mesh)
    distance = scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()
    assert np.percentile(distance, 99) < 0.002, "on the item's surface"
    # fingers hold it without cutting in
    assert not (view.finger_mask & view.item_mask).any()
    assert item.grip_opening <= item.size[1] + 1e-9


@pytest.mark.parametrize("kind,damage", CASES)
def test_damage_shows_where_masked(renderer, scene, gripper, kind, damage):
    sku = KIND_POOLS[kind][1]
    item = build_item(sku_spec(sku, damage, 0.8, seed=4, printed_damage_art=""), gripper)
    pristine = build_item(sku_spec(sku, seed=4, printed_damage_art=""), gripper)
    angle = facing(scene, item)
    view, ref = render_item(renderer, item, angle), render_item(renderer, pristine, angle)
    mask = view.damage_mask > 0
    assert set(np.unique(view.damage_mask)) == {0, DAMAGE_LABELS.index(damage)}
    assert mask.sum() > 30, (kind, damage)
    outside = mask & ~view.item_mask
    if damage == "spill":  # the blob on the finger is spill too, but not the item
        assert not (outside & view.finger_mask).any()
    else:
        assert not outside.any()
    colour = np.abs(view.color.astype(int) - ref.color.astype(int)).sum(axis=-1) > 40
    depth = np.abs(view.depth_clean_m - ref.depth_clean_m) > 0.003
    # (a missing part's mask covers its whole empty dome, most of it unchanged card: see the test below)
    share = 0.05 if damage == "missing_part" else 0.3
    assert (colour | depth)[mask].mean() > share, "damage changes colour or depth where masked"
    assert (colour | depth)[view.item_mask & ref.item_mask & ~mask].mean() < 0.1, "and little elsewhere"


def test_spill_blob_on_the_gripper(renderer, scene, gripper):
    found = 0
    for seed in range(6):
        item = build_item(sku_spec("SKU-2203", "spill", 1.0, seed=seed), gripper)
        assert len(item.extra_parts) == 1
        for angle in np.linspace(0, 2 * np.pi, 4, endpoint=False):
            view = render_item(renderer, item, angle)
            found += ((view.damage_mask > 0) & ~view.item_mask).sum()
    assert found > 50


def test_missing_part_dome_differs_from_full_pack(renderer, scene, gripper):
    sku = KIND_POOLS["blister"][0]
    broken = build_item(sku_spec(sku, "missing_part", 1.0, seed=2), gripper)
    full = build_item(sku_spec(sku), gripper)
    angle = facing(scene, broken)
    view, ref = render_item(renderer, broken, angle), render_item(renderer, full, angle)
    empty = view.damage_mask == DAMAGE_LABELS.index("missing_part")
    assert empty.sum() > 100
    assert np.array_equal(view.item_mask, ref.item_mask), "the pack's mask still covers the empty dome"
    assert ((view.depth_clean_m - ref.depth_clean_m)[empty] > 0.003).mean() > 0.1, "the card behind, not the part"
    assert np.abs(view.color[empty].astype(int) - ref.color[empty].astype(int)).sum(axis=-1).mean() > 30


def test_clear_shell_is_skipped_in_depth_with_a_faint_highlight(renderer, scene, gripper):
    item = build_item(sku_spec(KIND_POOLS["blister"][0]), gripper)
    view = render_item(renderer, item, scene.wrist_angle_facing([0, -1, 0]))
    points = apply(invert(view.T_optical_gripper), backproject(view.depth_clean_m, view.intrinsics)[view.item_mask])
    parts = points[:, 1] < -0.002
    assert parts.any() and points[parts, 1].min() > -(item.size[1] / 2) * 0.7, "no depth on the dome shells"


@pytest.mark.parametrize("art", ["cracked_screen", "splash", "fake_tear"])
def test_printed_damage_art_is_texture_only(renderer, scene, gripper, art):
    sku = "SKU-2203"
    plain = build_item(sku_spec(sku, printed_damage_art=""), gripper)
    printed = build_item(sku_spec(sku, printed_damage_art=art), gripper)
    assert np.array_equal(plain.surface.vertices, printed.surface.vertices)
    angle = scene.wrist_angle_facing([-1, 0, 0])
    a, b = render_item(renderer, plain, angle), render_item(renderer, printed, angle)
    assert not b.damage_mask.any()
    assert np.array_equal(a.depth_clean_m, b.depth_clean_m)
    assert (np.abs(a.color.astype(int) - b.color.astype(int)).sum(axis=-1) > 60).sum() > 200


def test_packaging_version_changes_artwork_not_geometry(gripper):
    v0 = build_item(sku_spec("BK-1203"), gripper)
    v1 = build_item(sku_spec("BK-1203", packaging_version=1), gripper)
    assert np.array_equal(v0.surface.vertices, v1.surface.vertices)
    assert not np.array_equal(v0.textures.atlas, v1.textures.atlas)
    again = build_item(sku_spec("BK-1203", packaging_version=1), gripper)
    assert np.array_equal(v1.textures.atlas, again.textures.atlas)


def test_same_seed_same_bytes_new_kinds(scene, gripper):
    for sku, damage in (("BL-2241", "missing_part"), ("BG-1120", "spill"), ("SKU-3012", "deconstruction")):
        views = []
        for _ in range(2):
            renderer = CellRenderer(scene, gripper)
            views.append(render_item(renderer, build_item(sku_spec(sku, damage, 0.6, seed=9), gripper), 1.1, seed=3))
        for name in ("color", "depth_m", "item_mask", "damage_mask", "finger_mask"):
            assert getattr(views[0], name).tobytes() == getattr(views[1], name).tobytes(), (sku, name)
