import numpy as np
import pytest

from damage_perception.core.geometric_score import GeometricScoreConfig, score_geometry
from test.core.synthetic_boxes import box_surface

CAMERA = np.array([0.45, 0.35, 0.2])  # sees the +x, +y and -z... faces of the box
SIZE = (0.12, 0.09, 0.16)
CENTRE = np.array([0.0, 0.0, 0.12])


def test_pristine_box_scores_low():
    result = score_geometry(box_surface(SIZE, CAMERA, seed=1), CAMERA)
    assert result.num_faces >= 2
    assert result.score < 0.2
    assert result.damaged_area_cm2 < 1.0


@pytest.mark.parametrize("depth", [0.012, 0.025])
def test_dent_scores_high_and_is_located(depth):
    dent = CENTRE + np.array([SIZE[0] / 2, 0.0, 0.01])  # on the +x face
    cloud = box_surface(SIZE, CAMERA, seed=2, dent_center=dent, dent_radius=0.03, dent_depth=depth)
    result = score_geometry(cloud, CAMERA)
    assert result.score > 0.6
    assert result.type_scores["crush"] > result.type_scores["tear"]
    assert np.linalg.norm(result.damage_location - dent) < 0.03


def test_score_grows_with_dent_depth():
    dent = CENTRE + np.array([SIZE[0] / 2, 0.0, 0.0])
    scores = [score_geometry(box_surface(SIZE, CAMERA, seed=3, dent_center=dent, dent_depth=d), CAMERA).score
              for d in (0.0, 0.01, 0.02)]
    assert scores[0] < scores[1] <= scores[2]


def test_outward_flap_is_a_tear():
    cloud = box_surface(SIZE, CAMERA, seed=4)
    # a flap standing 2-4 cm proud of the +x face
    rng = np.random.default_rng(0)
    flap = np.column_stack([SIZE[0] / 2 + rng.uniform(0.02, 0.04, 600), rng.uniform(-0.02, 0.02, 600),
                            CENTRE[2] + rng.uniform(-0.02, 0.02, 600)])
    result = score_geometry(np.concatenate([cloud, flap]), CAMERA)
    assert result.type_scores["tear"] > 0.5


def test_same_input_same_score():
    cloud = box_surface(SIZE, CAMERA, seed=5, dent_center=CENTRE + [SIZE[0] / 2, 0, 0], dent_depth=0.008)
    assert score_geometry(cloud, CAMERA).score == score_geometry(cloud, CAMERA).score


def test_too_few_points_is_no_damage():
    result = score_geometry(np.zeros((5, 3)), CAMERA, GeometricScoreConfig())
    assert result.score == 0.0 and result.damage_location is None


def test_real_undamaged_carton_on_a_realsense_scores_below_the_threshold():
    """A real D4xx frame of an intact cracker box (test/fixtures/real_rgbd): real sensor noise, no damage."""
    import json
    from pathlib import Path

    import cv2
    import open3d as o3d

    from damage_perception.core.camera import CameraIntrinsics, backproject
    from damage_perception.core.verdict import DecisionConfig

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "real_rgbd" / "cheezit"
    depth_mm = cv2.imread(str(folder / "depth_mm.png"), cv2.IMREAD_UNCHANGED)
    camera = json.loads((folder / "camera.json").read_text())
    intrinsics = CameraIntrinsics.from_matrix(np.array(camera["K"]), camera["width"], camera["height"])
    points = backproject(np.where(depth_mm > 0, depth_mm * 0.001, np.nan), intrinsics).reshape(-1, 3)
    points = points[np.isfinite(points[:, 2])].astype(float)
    # The box is the largest cluster standing more than 1 cm above the table plane.
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    o3d.utility.random.seed(0)
    plane, _ = cloud.segment_plane(0.01, 3, 300)
    height = (points @ np.asarray(plane[:3]) + plane[3]) * np.sign(plane[3])  # > 0: camera side
    above = points[height > 0.01]
    labels = np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(above)).cluster_dbscan(0.01, 10))
    box = above[labels == np.argmax(np.bincount(labels[labels >= 0]))]
    assert len(box) > 20000

    result = score_geometry(box, camera_position=np.zeros(3))
    assert result.num_faces >= 2
    assert result.score < DecisionConfig().divert_threshold - DecisionConfig().review_band


def test_depth_edges_flag_jumps_and_missing_readings_only():
    from damage_perception.core.view_pipeline import depth_edges
    depth = np.full((20, 20), 0.6, dtype=np.float32)
    depth[:, 10:] = 0.9             # a 30 cm jump between columns 9 and 10
    depth[5, 3] = 0.0               # one missing reading
    depth[15, 15] = 0.9005          # sensor noise: not an edge
    edges = depth_edges(depth, jump=0.008, jump_per_m=0.01, grow_px=0)
    assert edges[:, 9].all() and edges[:, 10].all()
    assert edges[4, 3] and edges[5, 2] and edges[5, 3]
    assert not edges[15, 15] and not edges[2, 2] and not edges[12, 14]
    assert edges[0, 0]  # the image border has no neighbour to compare with: not trusted either


def test_depth_edges_match_the_four_neighbour_definition_on_noisy_depth():
    """Every pixel against its 4 neighbours, one by one (no reading: NaN, 0, negative, inf; outside the
    image: no reading), on random depth with dropouts: the vectorised version flags the same pixels."""
    from damage_perception.core.image_codec import valid_depth
    from damage_perception.core.view_pipeline import depth_edges
    rng = np.random.default_rng(3)
    depth = (0.5 + 0.02 * rng.random((24, 32))).astype(np.float32)
    depth[:, 20:] += 0.3
    for value, share in ((np.nan, 0.05), (0.0, 0.03), (np.inf, 0.02), (-1.0, 0.02)):
        depth[rng.random(depth.shape) < share] = value
    jump, per_m = 0.008, 0.01
    reading = np.where(valid_depth(depth), depth, np.inf)
    expected = np.zeros(depth.shape, bool)
    for row in range(depth.shape[0]):
        for col in range(depth.shape[1]):
            here = reading[row, col]
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = row + dr, col + dc
                there = reading[r, c] if 0 <= r < depth.shape[0] and 0 <= c < depth.shape[1] else np.inf
                if not (np.isfinite(here) and np.isfinite(there)) or abs(there - here) > jump + per_m * here:
                    expected[row, col] = True
    assert np.array_equal(depth_edges(depth, jump, per_m, grow_px=0), expected)
