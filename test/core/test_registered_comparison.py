import numpy as np
import pytest

from damage_perception.core.registered_comparison import (
    PosedCrop,
    cell_means,
    correspond,
    crop_camera_matrix,
    crop_points,
    hidden_cells,
    misregistration,
    nearest_references,
    refine_with_colour,
    region_max,
)
from damage_perception.core.transforms import make_transform

SIZE = 64


def plane(depth=0.5, color=(120, 160, 90)):
    k = np.array([[100.0, 0, 31.5], [0, 100.0, 31.5], [0, 0, 1]])
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[:] = color
    # texture, so that colour residuals mean something
    image[::8] += 40
    return PosedCrop(image, np.full((SIZE, SIZE), depth, np.float32), np.ones((SIZE, SIZE), bool), k, np.eye(4))


def test_crop_camera_matrix_maps_full_image_pixels_into_the_crop():
    k = crop_camera_matrix(600.0, 600.0, 320.0, 240.0, (100, 300, 200, 400), 100)
    # a point the full camera sees at pixel (col 300, row 200) is at the crop's (50, 50) centre area
    full = np.array([300.0, 200.0])
    scale = 100 / 200
    assert k[0, 0] == pytest.approx(300.0)
    assert k[0, 2] + (full[0] - 320.0) * scale == pytest.approx((full[0] - 200 + 0.5) * scale - 0.5)


def test_crop_points_back_project_the_depth():
    view = plane()
    points = crop_points(view)
    assert np.allclose(points[:, 2], 0.5)
    assert points[:, 0].min() == pytest.approx(-31.5 / 100 * 0.5, abs=1e-6)


def test_identical_views_match_everywhere():
    view = plane()
    result = correspond(view, np.eye(4), [plane()], np.ones((SIZE, SIZE), bool))
    assert result.matched.mean() > 0.99
    assert not result.missing.any() and not result.extra.any()
    assert result.colour_residual.max() < 0.01


def test_dent_reads_as_missing_bump_as_extra_stain_as_colour():
    view = plane()
    view.depth_m[8:32, 8:32] = 0.53       # pushed in (3 x 3 cells of 8 px): the reference's surface is in front
    view.depth_m[40:56, 40:56] = 0.47     # material where the reference has none
    view.color[40:56, 8:24] = (250, 20, 20)   # a stain on the same surface
    result = correspond(view, np.eye(4), [plane()], np.ones((SIZE, SIZE), bool))
    assert result.missing[10:30, 10:30].all() and not result.missing[34:, :].any()
    assert result.extra[42:54, 42:54].all() and not result.extra[:36, :].any()
    assert result.colour_residual[42:54, 10:22].min() > 0.2
    assert result.colour_residual[:32, 34:].max() < 0.01
    cells = cell_means(result.missing.astype(float), np.ones((SIZE, SIZE)), 8)
    assert region_max(cells, np.ones((8, 8), bool)) > 0.5


def test_surface_behind_the_references_finger_is_hidden_not_missing():
    view = plane()
    reference = plane()
    reference.depth_m[16:40, 16:24] = 0.45     # the reference's finger, in front of the item, not on it
    reference.mask[16:40, 16:24] = False
    reference.depth_m[40:56, 40:48] = 0.45     # the reference's item nearer there: the view's surface is dented
    view.depth_m[48:64, 0:16] = 0.55           # and the view's surface where the reference has none nearer
    result = correspond(view, np.eye(4), [reference], np.ones((SIZE, SIZE), bool), coherent_colour=False)
    assert result.hidden[16:40, 16:24].all() and result.hidden.sum() == 24 * 8
    assert not result.missing[16:40, 16:24].any()
    assert result.missing[40:56, 40:48].all()
    # per 8-px cell: the finger's cells (rows 2-4, col 2), grown by one cell on every side
    cells = hidden_cells(result, 8)
    assert cells[1:6, 1:4].all() and cells.sum() == 15
    assert not hidden_cells(result, 8, share=1.01).any()


def test_registration_carries_points_into_a_moved_reference():
    # the same plane, shifted 1 cm in the reference's gripper frame: with that registration nothing departs
    view = plane()
    shifted = plane()
    shifted.camera_from_gripper = make_transform(np.array([0.01, 0.0, 0.0]), np.eye(3))
    reference_from_view = make_transform(np.array([-0.01, 0.0, 0.0]), np.eye(3))
    inner = np.zeros((SIZE, SIZE), bool)
    inner[:, 8:-8] = True
    result = correspond(view, reference_from_view, [shifted], inner)
    assert result.matched[inner].mean() > 0.99


def test_misregistration_is_a_small_rigid_error_of_the_drawn_size():
    rng, center = np.random.default_rng(0), np.array([0.02, -0.01, 0.15])
    for _ in range(20):
        error = misregistration(rng, center, shift_m=(0.002, 0.006), angle_deg=(1.0, 3.0))
        rotation = error[:3, :3]
        assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9) and np.linalg.det(rotation) > 0
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
        assert 1.0 - 1e-6 <= angle <= 3.0 + 1e-6
        # the rotation turns about the centre, so the centre moves by the drawn shift alone
        shift = np.linalg.norm(error[:3, :3] @ center + error[:3, 3] - center)
        assert 0.002 - 1e-9 <= shift <= 0.006 + 1e-9


def test_a_misregistered_plane_departs_from_its_reference_where_the_print_moved():
    # the textured plane against itself: registered right it matches, knocked 2 px off its print no longer does
    view = plane()
    right = correspond(view, np.eye(4), [plane()], np.ones((SIZE, SIZE), bool))
    error = make_transform(np.array([0.0, 0.01, 0.0]), np.eye(3))   # 1 cm at 0.5 m, f = 100 px: 2 px across the stripes
    off = correspond(view, error, [plane()], np.ones((SIZE, SIZE), bool))
    assert off.colour_residual.max() > 0.1 > right.colour_residual.max()


def test_nearest_references_follow_the_camera_direction():
    references = []
    for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        crop = plane()
        position = np.array([np.cos(angle), np.sin(angle), 0.0])
        crop.camera_from_gripper = make_transform(-position, np.eye(3))   # camera at ``position``
        references.append(crop)
    camera = np.array([np.cos(0.6), np.sin(0.6), 0.0])
    assert sorted(nearest_references(camera, np.zeros(3), references)) == [1, 2]


def printed_plane(shift_px=0):
    """A 64 px flat card 0.5 m away (1.25 mm per px) with smooth printed blobs, the print slid by ``shift_px``."""
    import cv2
    rng = np.random.default_rng(3)
    ink = cv2.GaussianBlur(rng.random((SIZE, SIZE + 16)).astype(np.float32), (0, 0), 3)
    ink = (ink - ink.min()) / (ink.max() - ink.min())
    ink = ink[:, 8 + shift_px:8 + shift_px + SIZE]
    image = (np.stack([ink, 1 - ink, 0.5 * ink], -1) * 255).astype(np.uint8)
    k = np.array([[400.0, 0, 31.5], [0, 400.0, 31.5], [0, 0, 1]])
    return PosedCrop(image, np.full((SIZE, SIZE), 0.5, np.float32), np.ones((SIZE, SIZE), bool), k, np.eye(4))


def test_coloured_refinement_finds_a_slide_in_the_plane_of_a_flat_face():
    # Geometry alone cannot tell where a flat card sits in its plane; the print can: the reference's print
    # is 5 px (6.25 mm) to the side, the identity (what shape ICP gives) is refined to that slide.
    view, reference = printed_plane(), printed_plane(shift_px=5)
    refined = refine_with_colour(view, reference, np.eye(4))
    assert refined[0, 3] == pytest.approx(-0.00625, abs=0.002)
    inner = np.zeros((SIZE, SIZE), bool)
    inner[8:-8, 12:-12] = True
    before = correspond(view, np.eye(4), [reference], inner).colour_residual[inner].mean()
    after = correspond(view, refined, [reference], inner).colour_residual[inner].mean()
    assert after < 0.5 * before


@pytest.fixture(scope="module")
def shipped_model():
    from damage_perception.core.damage_model import DamageModel
    from damage_perception.core.station import SHIPPED_MODEL_FILE
    return DamageModel.load(SHIPPED_MODEL_FILE)


@pytest.fixture(scope="module")
def rendered_galleries():
    from damage_perception.data.study import gallery_episode
    return gallery_episode("SKU-C0101", views=12, seed=5), gallery_episode("BK-C0102", views=12, seed=6)


def build(model, episode, swap=None, index=4):
    """The gallery of a rendered episode; with ``swap``, its view ``index`` taken from another item."""
    found = np.flatnonzero(episode.found)
    colors, masks, depths = episode.color[found].copy(), episode.mask[found].copy(), episode.depth_m[found].copy()
    clouds = [episode.clouds[k] for k in found]
    posed = episode.posed_crops(found)
    if swap is not None:
        other = int(np.flatnonzero(swap.found)[index])
        colors[index], masks[index], depths[index] = swap.color[other], swap.mask[other], swap.depth_m[other]
        clouds[index], posed[index] = swap.clouds[other], swap.posed_crops([other])[0]
    return model.build_gallery(episode.meta["sku"], colors, masks, depths, episode.angle[found], clouds,
                               posed=posed), episode.angle[found][index]


def test_clean_gallery_keeps_every_view_and_knows_its_nominal(shipped_model, rendered_galleries):
    gallery, _ = build(shipped_model, rendered_galleries[0])
    assert gallery.metadata["refused_views"] == {}
    assert len(gallery.views) == int(rendered_galleries[0].found.sum())
    assert all(view.posed is not None for view in gallery.views)
    assert 0.3 < gallery.registered_nominal["reg_overlap"] <= 1.0
    assert gallery.registered_nominal["reg_missing"] < 0.1


def test_a_reference_view_of_another_item_is_refused_with_a_reason(shipped_model, rendered_galleries):
    gallery, angle = build(shipped_model, rendered_galleries[0], swap=rendered_galleries[1])
    refused = gallery.metadata["refused_views"]
    assert list(refused) == [f"{np.degrees(angle):.0f} deg"]
    assert "against the other reference views" in next(iter(refused.values()))
    assert len(gallery.views) == int(rendered_galleries[0].found.sum()) - 1


def test_channel_medians_are_numpys_median_of_8_bit_colours():
    from damage_perception.core.registered_comparison import channel_medians
    rng = np.random.default_rng(2)
    for count in (1, 2, 7, 10, 999, 1000):
        colours = rng.integers(0, 256, (count, 3)).astype(np.float32)
        np.testing.assert_array_equal(channel_medians(colours), np.median(colours, axis=0))
