"""DBSCAN labels against open3d's ``cluster_dbscan`` on the clouds segmentation clusters, and on made-up
clouds with the cases where the two could part: noise, and a non-core point next to two clusters."""
import numpy as np
import open3d as o3d
import pytest

from damage_perception.core.camera import backproject
from damage_perception.core.clustering import dbscan_labels
from damage_perception.core.gripper import GripperGeometry
from damage_perception.core.segmentation import SegmentationConfig, voxel_centres
from damage_perception.core.transforms import apply, invert
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.sim.items import build_item
from damage_perception.sim.renderer import CellRenderer
from damage_perception.sim.scene import SceneConfig

GRIPPER = GripperGeometry()
CONFIG = SegmentationConfig()


def open3d_labels(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, float)))
    return np.asarray(cloud.cluster_dbscan(eps, min_points))


def view_voxels(kind: str, seed: int) -> list[np.ndarray]:
    """Voxel centres of every point of a few rendered views within 0.6 m of the gripper (the item, the
    fingers, the wall behind), after open3d's outlier removal, as segmentation clusters them."""
    renderer = CellRenderer(SceneConfig(), GRIPPER)
    clouds = []
    for spec in make_catalogue(1, damage_rate=1.0, seed=seed, kinds=(kind,)):
        renderer.set_item(build_item(spec, GRIPPER))
        rng = np.random.default_rng(seed)
        for angle in (0.0, 2.2):
            view = renderer.render(angle, rng)
            flat = backproject(view.depth_m, view.intrinsics).reshape(-1, 3)
            points = apply(invert(view.T_optical_gripper), flat[np.isfinite(flat[:, 2])])
            points = points[np.linalg.norm(points, axis=1) < 0.6]
            _, centres = voxel_centres(points, CONFIG.voxel_size)
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres))
            cloud, _ = cloud.remove_statistical_outlier(CONFIG.outlier_neighbors, CONFIG.outlier_std_ratio)
            clouds.append(np.asarray(cloud.points))
    return clouds


@pytest.mark.parametrize("kind", ["carton", "bag", "blister"])
def test_labels_equal_open3d_on_rendered_views(kind):
    for points in view_voxels(kind, seed=5):
        labels = dbscan_labels(points, CONFIG.cluster_eps, CONFIG.cluster_min_points)
        expected = open3d_labels(points, CONFIG.cluster_eps, CONFIG.cluster_min_points)
        assert len(np.unique(expected)) > 1
        np.testing.assert_array_equal(labels, expected)


def test_labels_equal_open3d_with_noise_and_shared_border_points():
    rng = np.random.default_rng(3)
    blob_a = rng.normal([0.0, 0.0, 0.0], 0.01, size=(200, 3))
    blob_b = rng.normal([0.1, 0.0, 0.0], 0.01, size=(200, 3))
    noise = rng.uniform(-0.2, 0.3, size=(60, 3))
    # a point with one neighbour in each blob's rim only: not core, next to both clusters
    rim_a, rim_b = np.array([0.03, 0.0, 0.0]), np.array([0.07, 0.0, 0.0])
    bridge = np.array([[0.05, 0.0, 0.0]])
    points = np.concatenate([noise[:30], bridge, blob_b, rim_b[None], blob_a, rim_a[None], noise[30:]])
    for eps, min_points in ((0.021, 6), (0.03, 12), (0.015, 4)):   # the bridge: border, border, noise
        expected = open3d_labels(points, eps, min_points)
        np.testing.assert_array_equal(dbscan_labels(points, eps, min_points), expected)
    assert -1 in expected


def test_no_points_and_no_core_points_are_noise():
    assert dbscan_labels(np.zeros((0, 3)), 0.01, 3).shape == (0,)
    sparse = np.arange(12, dtype=float).reshape(4, 3)
    np.testing.assert_array_equal(dbscan_labels(sparse, 0.01, 2), [-1, -1, -1, -1])
