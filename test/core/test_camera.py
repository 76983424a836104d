import numpy as np
import pytest

from damage_perception.core.camera import CameraIntrinsics, backproject, project

K = CameraIntrinsics(width=8, height=6, fx=10.0, fy=12.0, cx=3.5, cy=2.5)


def test_backproject_then_project_returns_the_pixels():
    depth = np.full((6, 8), 2.0, dtype=np.float32)
    points = backproject(depth, K)
    uv = project(points.reshape(-1, 3), K)
    vv, uu = np.mgrid[0:6, 0:8]
    np.testing.assert_allclose(uv, np.column_stack([uu.ravel(), vv.ravel()]), atol=1e-4)


def test_backproject_formula_and_invalid_pixels():
    depth = np.zeros((6, 8), dtype=np.float32)
    depth[0, 0], depth[1, 2], depth[2, 3] = 1.5, np.nan, -1.0
    points = backproject(depth, K)
    np.testing.assert_allclose(points[0, 0], [(0 - 3.5) * 1.5 / 10, (0 - 2.5) * 1.5 / 12, 1.5], rtol=1e-6)
    assert np.isnan(points[1, 2]).all() and np.isnan(points[2, 3]).all() and np.isnan(points[5, 5]).all()


def test_size_mismatch_and_bad_focal_length_are_refused():
    with pytest.raises(ValueError, match="camera_info says 8x6"):
        backproject(np.ones((5, 8)), K)
    with pytest.raises(ValueError, match="focal"):
        CameraIntrinsics(8, 6, 0.0, 1.0, 1.0, 1.0)


def test_scaled_keeps_the_principal_point_in_place():
    half = CameraIntrinsics(640, 480, 600, 600, 319.5, 239.5).scaled(0.5)
    assert (half.width, half.height, half.fx) == (320, 240, 300)
    assert half.cx == pytest.approx(159.5)
