"""Catalogue determinism, SKU consistency and item meshes."""
import numpy as np
import pytest

from damage_perception.sim.catalogue import ALL_KINDS, KIND_DAMAGES, ItemSpec, make_catalogue, sku_size
from damage_perception.sim.geometry import TAG_PLAIN
from damage_perception.sim.items import build_item

from .conftest import make_spec


def test_catalogue_is_deterministic_and_seeded():
    assert make_catalogue(30, 0.5, seed=4) == make_catalogue(30, 0.5, seed=4)
    assert make_catalogue(30, 0.5, seed=4) != make_catalogue(30, 0.5, seed=5)


def test_catalogue_statistics():
    catalogue = make_catalogue(300, 0.5, seed=1)
    skus = [spec.sku for spec in catalogue]
    assert len(set(skus)) < len(skus) / 5, "SKUs repeat"
    assert len({spec.item_id for spec in catalogue}) == len(catalogue)
    kinds = {spec.damage for spec in catalogue}
    assert kinds == {"pristine", "crush", "hole", "tear", "deconstruction", "spill", "missing_part"}
    assert {spec.kind for spec in catalogue} == set(ALL_KINDS)
    assert all(spec.damage == "pristine" or spec.damage in KIND_DAMAGES[spec.kind] for spec in catalogue)
    damaged = [spec for spec in catalogue if spec.damage != "pristine"]
    assert 0.4 < len(damaged) / len(catalogue) < 0.6
    assert all(0.3 <= spec.severity <= 1.0 for spec in damaged)
    assert all(spec.severity == 0.0 for spec in catalogue if spec.damage == "pristine")
    assert all(spec.damage == "pristine" for spec in make_catalogue(20, 0.0, seed=2))
    assert all(spec.damage != "pristine" for spec in make_catalogue(20, 1.0, seed=2))


def test_same_sku_same_size_and_artwork(gripper):
    catalogue = make_catalogue(60, 0.5, seed=9)
    by_sku = {}
    for spec in catalogue:
        by_sku.setdefault(spec.sku, []).append(spec)
    sku, specs = max(by_sku.items(), key=lambda kv: len(kv[1]))
    assert len(specs) >= 2 and all(spec.size == sku_size(sku) for spec in specs)
    first, second = build_item(specs[0], gripper), build_item(specs[1], gripper)
    assert np.array_equal(first.textures.atlas, second.textures.atlas)
    other = build_item(make_spec("pristine", sku=next(s.sku for s in catalogue if s.sku != sku)), gripper)
    assert other.spec.size != first.spec.size
    assert other.textures.atlas.shape != first.textures.atlas.shape or \
        not np.array_equal(other.textures.atlas, first.textures.atlas)


def test_sizes_in_range():
    for spec in make_catalogue(100, 0.5, seed=3, kinds=("carton",)):
        x, y, z = spec.size
        assert 0.06 <= x <= 0.25 and 0.06 <= y <= 0.15 and 0.06 <= z <= 0.25


def test_invalid_spec_rejected():
    with pytest.raises(ValueError):
        ItemSpec("a", "SKU-1", (0.1, 0.1, 0.1), damage="dust")
    with pytest.raises(ValueError):
        ItemSpec("a", "SKU-1", (0.1, 0.1, 0.1), damage="hole", severity=1.5)


def test_pristine_item_fills_its_box_in_gripper_frame(items, gripper):
    item = items["pristine"]
    assert item.grip_opening == pytest.approx(item.spec.size[1])
    lo, hi = item.surface.vertices.min(axis=0), item.surface.vertices.max(axis=0)
    assert np.allclose(hi - lo, item.spec.size, atol=1e-9)
    assert np.allclose(item.center[:2], 0) and lo[2] > gripper.palm_clearance
    assert np.allclose(item.surface.vertices, item.surface.rest)
    assert item.damage_center is None and len(item.damaged_triangles) == 0
    edges = np.diff(item.surface.vertices[item.surface.triangles], axis=1)
    assert np.linalg.norm(edges, axis=-1).max() < 0.008, "finely subdivided"


@pytest.mark.parametrize("kind", ["crush", "hole", "tear"])
def test_damage_is_on_a_visible_face(kind, gripper):
    for seed in range(12):
        spec = make_spec(kind, sku="SKU-4128", seed=seed)
        item = build_item(spec, gripper)
        assert len(item.damaged_triangles) > 0
        assert np.all(item.surface.tag[item.damaged_triangles] != TAG_PLAIN)
        local = item.damage_center - item.center
        half = np.asarray(spec.size) / 2
        assert local[2] > -half[2] + 0.01, "not on the top face against the palm"
        on_y_face = np.isclose(abs(local[1]), half[1]) and abs(local[0]) < half[0] - 1e-6
        if on_y_face and kind != "crush":
            finger_half_x = gripper.finger_size[0] / 2
            assert abs(local[0]) > finger_half_x or item.damage_center[2] > gripper.finger_size[2]


def test_crush_moves_vertices_inward(items):
    item = items["crush"]
    moved = np.linalg.norm(item.surface.vertices - item.surface.rest, axis=1)
    assert 0.005 < moved.max() < 0.031
    local = np.abs(item.surface.vertices - item.center) - np.asarray(item.spec.size) / 2
    assert local.max() < 1e-9, "a crush never bulges outward"


def test_tear_flap_sticks_out(items):
    item = items["tear"]
    local = np.abs(item.surface.vertices - item.center) - np.asarray(item.spec.size) / 2
    assert local.max() > 0.005
