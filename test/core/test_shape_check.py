import numpy as np
import pytest
from scipy.spatial import cKDTree

from damage_perception.core.shape_check import TOLERANCE_M, ReferenceShape, build_reference, shape_scores, thin_points

SPACING = 0.003
SIZE = np.array([0.04, 0.08, 0.10])          # a small carton, held with its centre 8 cm out of the palm
CENTRE = np.array([0.0, 0.0, 0.08])
CAMERA = np.array([0.4, 0.15, 0.08])         # sees the +x face (the "front") and the +y face
FRONT, BACK = (0, 1), (0, -1)
FRONT_CENTRE = CENTRE + [SIZE[0] / 2, 0, 0]
BACK_CENTRE = CENTRE - [SIZE[0] / 2, 0, 0]


def face(axis, sign):
    others = [a for a in range(3) if a != axis]
    u, v = np.meshgrid(*[np.arange(-SIZE[a] / 2 + SPACING / 2, SIZE[a] / 2, SPACING) for a in others], indexing="ij")
    points = np.zeros((u.size, 3))
    points[:, axis] = CENTRE[axis] + sign * SIZE[axis] / 2
    points[:, others[0]], points[:, others[1]] = CENTRE[others[0]] + u.ravel(), CENTRE[others[1]] + v.ravel()
    return points


def facing_camera(axis, sign):
    normal = np.eye(3)[axis] * sign
    return normal @ (CAMERA - (CENTRE + normal * SIZE[axis] / 2)) > 0


def box(visible_only=True, cut_face=None, cut_half=0.02, seed=0):
    """Points on the box's faces (only those facing the camera, or all), 3 mm apart, 0.5 mm noise; ``cut_face``
    loses a square of 2 * cut_half around its centre."""
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            if visible_only and not facing_camera(axis, sign):
                continue
            points = face(axis, sign)
            if (axis, sign) == cut_face:
                centre = CENTRE + np.eye(3)[axis] * sign * SIZE[axis] / 2
                points = points[~np.all(np.abs(np.delete(points - centre, axis, axis=1)) < cut_half, axis=1)]
            faces.append(points)
    cloud = np.concatenate(faces)
    return cloud + np.random.default_rng(seed).normal(0, 0.0005, cloud.shape)


def moved(points, shift, degrees):
    a = np.radians(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return (points - CENTRE) @ rotation.T + CENTRE + shift


@pytest.fixture(scope="module")
def reference():
    return build_reference([box(visible_only=False, seed=1)])  # a gallery sees every face


def test_pristine_box_shifted_and_rotated_registers_clean(reference):
    scores = shape_scores(moved(box(), [0.002, -0.001, 0.001], 1.0), CAMERA, reference)
    assert scores.extra < 0.02 and scores.missing < 0.02
    assert scores.fitness > 0.95


def test_icp_absorbs_a_grasp_offset_beyond_the_tolerance(reference):
    view = moved(box(), [0.008, 0.008, 0.004], 2.0)
    unregistered, _ = cKDTree(reference.points).query(view)
    assert np.mean(unregistered > TOLERANCE_M) > 0.5   # without registration most points would be "extra"
    scores = shape_scores(view, CAMERA, reference)
    assert scores.extra < 0.02 and scores.missing < 0.02


def test_a_2cm_bump_is_extra_material(reference):
    view = box()
    on_front = (view[:, 0] > FRONT_CENTRE[0] - 0.002) & (np.linalg.norm(view[:, 1:] - FRONT_CENTRE[1:], axis=1) < 0.03)
    radius = np.linalg.norm(view[on_front, 1:] - FRONT_CENTRE[1:], axis=1)
    view[on_front, 0] += 0.02 * (1 - (radius / 0.03) ** 2)  # a dome 2 cm high, 6 cm across
    scores = shape_scores(view, CAMERA, reference)
    assert scores.extra > 0.05
    assert np.linalg.norm(scores.location - FRONT_CENTRE) < 0.03
    pristine = shape_scores(box(), CAMERA, reference)
    assert pristine.extra < 0.01


@pytest.mark.parametrize("visible_only", [True, False])
def test_a_hole_in_the_face_the_camera_sees_is_missing(reference, visible_only):
    scores = shape_scores(box(visible_only, cut_face=FRONT), CAMERA, reference)
    assert scores.missing > 0.05
    assert scores.extra < 0.01
    assert np.linalg.norm(scores.location - FRONT_CENTRE) < 0.02


def test_a_hole_in_the_far_face_is_not_missing(reference):
    view = box(visible_only=False, cut_face=BACK)
    unseen, _ = cKDTree(view).query(reference.points)
    assert np.mean(unseen > TOLERANCE_M) > 0.02   # counted over every reference point, it would show
    scores = shape_scores(view, CAMERA, reference)
    assert scores.missing < 0.01


def test_a_reference_serving_many_views_scores_each_as_a_fresh_one(reference):
    """The reference caches its search tree and ICP target across views: no view may change them."""
    views = [moved(box(), [0.008, 0.008, 0.004], 2.0), box(cut_face=FRONT), moved(box(), [0.002, 0, 0], -1.0)]
    shared = ReferenceShape(reference.points)
    for view in views:
        cached = shape_scores(view, CAMERA, shared)
        fresh = shape_scores(view, CAMERA, ReferenceShape(reference.points))
        assert (cached.extra, cached.missing, cached.fitness) == (fresh.extra, fresh.missing, fresh.fitness)


def test_too_few_points_score_nothing(reference):
    scores = shape_scores(box()[:10], CAMERA, reference)
    assert (scores.extra, scores.missing, scores.location) == (0.0, 0.0, None)


def test_thin_points_keeps_the_first_point_of_each_voxel():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 0.03, size=(2000, 3))
    thinned = thin_points(points, voxel=0.01)
    cells = np.floor(points / 0.01).astype(int)
    assert len(thinned) == len(np.unique(cells, axis=0)) == 27
    assert len(np.unique(np.floor(thinned / 0.01).astype(int), axis=0)) == len(thinned)
    firsts = [int(np.flatnonzero((cells == c).all(axis=1))[0]) for c in np.floor(thinned / 0.01).astype(int)]
    assert firsts == sorted(firsts)                          # kept in input order
    np.testing.assert_allclose(thinned, points[firsts], atol=1e-7)
    assert thin_points(np.zeros((0, 3))).shape == (0, 3)
    assert thinned.dtype == np.float32
